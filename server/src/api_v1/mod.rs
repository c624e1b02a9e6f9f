//! The JSON API for scripts and the `qingting` CLI, under `/api/v1/`: everything the dashboard
//! does with workspaces, with a personal API token as `Authorization: Bearer`. It never reads
//! a cookie, so a browser's ambient credentials cannot drive it and the dashboard's CSRF rule
//! does not apply. Every error is `{"code": "...", "message": "..."}` (docs/api.md).

mod admin;
mod error;
mod workspaces;

pub use error::V1Error;

use axum::{
    extract::{FromRequestParts, State},
    http::{header, request::Parts},
    routing::{delete, get, post, put},
    Json, Router,
};
use qingting_core::{
    api_tokens::{self, Bearer, Scope, TokenError},
    audit::Actor,
    client_ip::ClientIp,
    AppState,
};
use serde_json::{json, Value};

pub const PREFIX: &str = "/api/v1";

/// The API's routes, to nest under [`PREFIX`].
pub fn router<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    Router::new()
        .route("/me", get(me))
        .route("/templates", get(workspaces::templates))
        .route(
            "/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route(
            "/workspaces/{name}",
            get(workspaces::get).delete(workspaces::delete),
        )
        .route("/workspaces/{name}/{action}", post(workspaces::act))
        .route(
            "/workspaces/{name}/ports/{port}",
            put(workspaces::share_port),
        )
        .route("/tokens", get(tokens))
        .route("/admin/instance", get(admin::instance))
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{name}", delete(admin::delete_user))
        .route("/admin/users/{name}/quota", put(admin::set_quota))
        .route("/admin/users/{name}/{action}", post(admin::user_action))
        .route("/admin/workspaces", get(admin::workspaces))
        .route("/admin/workspaces/{id}", delete(admin::delete_workspace))
        .route(
            "/admin/workspaces/{id}/{action}",
            post(admin::workspace_action),
        )
        .route("/admin/audit", get(admin::audit))
        .route("/tokens/current", delete(revoke_current))
        .fallback(|| async { V1Error::not_found("No such endpoint.") })
        .method_not_allowed_fallback(|| async { V1Error::method_not_allowed() })
        .with_state(state)
}

/// The caller: a valid token's account, from the client's address. Only the
/// `Authorization` header counts.
pub struct Caller {
    pub bearer: Bearer,
    pub address: Option<String>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::user(&self.bearer.account, self.address.clone())
    }

    /// Refuses a token without `scope` (403, naming it).
    pub fn needs(&self, scope: Scope) -> Result<(), V1Error> {
        match scope.allowed_by(&self.bearer.scopes) {
            true => Ok(()),
            false => Err(V1Error::forbidden(format!(
                "This token may not do that: it needs the \"{}\" scope.",
                scope.as_str()
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, V1Error> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                V1Error::unauthorized(
                    "Send a personal API token as `Authorization: Bearer <token>` (create one \
                     under Settings → API tokens).",
                )
            })?;
        let bearer = match api_tokens::authenticate(&state.db, secret).await {
            Ok(b) => b,
            Err(TokenError::Store(e)) => return Err(V1Error::internal(e)),
            Err(e) => return Err(V1Error::unauthorized(e.to_string())),
        };
        let address = parts
            .extensions
            .get::<ClientIp>()
            .map(|ClientIp(ip)| ip.to_string());
        Ok(Caller { bearer, address })
    }
}

async fn me(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, V1Error> {
    caller.needs(Scope::Read)?;
    let a = &caller.bearer.account;
    let role = qingting_core::accounts::role_of(&state.db, a.id)
        .await
        .map_err(V1Error::internal)?
        .map(|r| r.as_str());
    Ok(Json(json!({
        "id": a.id,
        "username": a.username,
        "role": role,
        "scopes": caller.bearer.scopes,
    })))
}

async fn tokens(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, V1Error> {
    caller.needs(Scope::Read)?;
    let list = api_tokens::list(&state.db, &caller.bearer.account)
        .await
        .map_err(V1Error::internal)?;
    Ok(Json(
        json!({ "tokens": list, "current": caller.bearer.token_id }),
    ))
}

/// The token revokes itself (`qingting logout`).
async fn revoke_current(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<axum::http::StatusCode, V1Error> {
    let by = caller.actor();
    api_tokens::revoke(
        &state.db,
        &by,
        &caller.bearer.account,
        caller.bearer.token_id,
    )
    .await
    .map_err(V1Error::from)?;
    // The browser sessions it opened ended with it.
    state.live.recheck();
    Ok(axum::http::StatusCode::NO_CONTENT)
}
