//! `GET /healthz`: 200 with the version when the database answers, 503 otherwise; also which
//! replica answered and whether it leads the background work.

use crate::site::Site;
use axum::{extract::State, http::StatusCode, Extension, Json};
use qingting_core::AppState;
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn healthz(
    State(state): State<AppState>,
    Extension(site): Extension<Arc<Site>>,
) -> (StatusCode, Json<Value>) {
    let version = env!("CARGO_PKG_VERSION");
    let ws = &state.workspaces;
    match qingting_core::store::ping(&state.db).await {
        Ok(()) => {
            let pool = ws.pool_status().await.unwrap_or_default();
            (
                StatusCode::OK,
                Json(json!({
                    "status": "ok",
                    "version": version,
                    "database": "ok",
                    "runtime": state.workspaces.runtime().name(),
                    "isolation": state.workspaces.runtime().isolation(),
                    "site": site.source().kind(),
                    "replica": {
                        "id": ws.replica(),
                        "leads": ws.leads(),
                        "change_feed": ws.feed().map_or("in-process", |f| f.describe()),
                    },
                    "pool": pool,
                })),
            )
        }
        Err(e) => {
            tracing::error!("health check: database unreachable: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"status": "unavailable", "version": version, "database": "unreachable"}),
                ),
            )
        }
    }
}
