//! `POST /_qingting/tokens/consume` on the dashboard: gateways that cannot reach the database
//! (`qingting-shell` inside a Function Compute instance) record a token's single use here, so
//! a token is good once across every instance and replica.
//!
//! The body is the token itself: presenting a valid token is the only credential, and using it
//! up is all this does (a holder could as well redeem it). Answers: `204` first use, `409`
//! used before, `400` not a valid token of ours, `503` the database cannot say.

use axum::{body::Bytes, http::StatusCode, response::IntoResponse, Extension};
use qingting_core::{gateway::now_unix, AppState};

/// The path every gateway that asks the dashboard uses.
pub const PATH: &str = "/_qingting/tokens/consume";

pub async fn consume(Extension(state): Extension<AppState>, body: Bytes) -> impl IntoResponse {
    let now = now_unix();
    let token = String::from_utf8_lossy(&body);
    let guard = &state.access.guard;
    let Ok(claims) = guard.tokens().verify_any(token.trim(), now) else {
        return (StatusCode::BAD_REQUEST, "not a valid workspace token\n");
    };
    match guard.first_use(token.trim(), &claims, now).await {
        Ok(true) => (StatusCode::NO_CONTENT, ""),
        Ok(false) => (StatusCode::CONFLICT, "token already used\n"),
        Err(e) => {
            tracing::error!("cannot record a used workspace token: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n")
        }
    }
}
