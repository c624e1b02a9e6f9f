//! What gateways without a database (`qingting-shell` in Function Compute instances) ask the
//! dashboard, so they keep the same rules as the in-process gateway:
//!
//! - `POST /_qingting/tokens/consume`: records a token's single use, so a token is good once
//!   across every instance and replica. The body is the token itself: presenting a valid
//!   token is the only credential, and using it up is all this does (a holder could as well
//!   redeem it). `204` first use, `409` used before, `400` not a valid token of ours, `503` the
//!   database cannot say.
//! - `POST /_qingting/sessions/alive`: which of the given dashboard sessions (a JSON array of
//!   `[session id, user id]`, at most [`MAX_SESSIONS`]) are still alive, as the same kind of
//!   array. Session ids are unguessable secrets; this says nothing to whoever lacks them.

use axum::{body::Bytes, http::StatusCode, response::IntoResponse, Extension, Json};
use qingting_core::{store::session_store::DbSessionProbe, AppState};
use qingting_gateway::{live::SessionKey, now_unix};

/// The paths every gateway that asks the dashboard uses.
pub const CONSUME_PATH: &str = "/_qingting/tokens/consume";
pub const ALIVE_PATH: &str = "/_qingting/sessions/alive";
/// The most sessions one question may name.
pub const MAX_SESSIONS: usize = 500;

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

pub async fn alive(Extension(state): Extension<AppState>, body: Bytes) -> axum::response::Response {
    let Ok(sessions) = serde_json::from_slice::<Vec<SessionKey>>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected a JSON array of [session id, user id]\n",
        )
            .into_response();
    };
    if sessions.len() > MAX_SESSIONS {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too many sessions at once\n").into_response();
    }
    match DbSessionProbe::new(state.db.clone())
        .alive_among(&sessions)
        .await
    {
        Ok(alive) => Json(alive.into_iter().collect::<Vec<_>>()).into_response(),
        Err(e) => {
            tracing::error!("session check failed: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
        }
    }
}
