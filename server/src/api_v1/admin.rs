//! The admin endpoints of the JSON API, for an admin's token: reading needs the `read` scope,
//! acting needs `workspaces`. Anyone else's token is told they do not exist (`404`), as the
//! admin pages and server functions answer members.

use super::{Caller, V1Error};
use app::api::admin::server;
use axum::{
    extract::{rejection::JsonRejection, Path, Query, State},
    http::StatusCode,
    Json,
};
use qingting_core::{
    accounts::{self, Quota, Role},
    api_tokens::Scope,
    AppState,
};
use serde::Deserialize;
use serde_json::{json, Value};

type Answer = Result<Json<Value>, V1Error>;

/// An admin's token with `scope`; anyone else's is a 404.
async fn admin(caller: &Caller, state: &AppState, scope: Scope) -> Result<(), V1Error> {
    let role = accounts::role_of(&state.db, caller.bearer.account.id)
        .await
        .map_err(V1Error::internal)?;
    if role != Some(Role::Admin) {
        return Err(V1Error::not_found("No such endpoint."));
    }
    caller.needs(scope)
}

/// The account named `name`, or a 404 naming it.
async fn account(state: &AppState, name: &str) -> Result<accounts::Account, V1Error> {
    accounts::find_by_username(&state.db, name)
        .await
        .map_err(V1Error::internal)?
        .ok_or_else(|| V1Error::not_found(format!("There is no account named {name}.")))
}

/// A workspace id from the path (`/admin/workspaces` lists them).
fn workspace_id(s: &str) -> Result<i64, V1Error> {
    s.parse()
        .map_err(|_| V1Error::not_found("No such workspace (they are named by id here)."))
}

pub async fn instance(caller: Caller, State(state): State<AppState>) -> Answer {
    admin(&caller, &state, Scope::Read).await?;
    Ok(Json(json!(server::instance(&state).await?)))
}

#[derive(Deserialize, Default)]
pub struct UserQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    sort: String,
}

pub async fn users(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<UserQuery>,
) -> Answer {
    admin(&caller, &state, Scope::Read).await?;
    let me = &caller.bearer.account;
    let list = server::users(&state, me, &q.search, &q.sort).await?;
    Ok(Json(json!({ "users": list })))
}

/// `suspend`, `resume`, `make-admin` or `make-member`.
pub async fn user_action(
    caller: Caller,
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<StatusCode, V1Error> {
    admin(&caller, &state, Scope::Workspaces).await?;
    let action =
        match action.as_str() {
            "suspend" | "resume" => action.clone(),
            "make-admin" => "make_admin".into(),
            "make-member" => "make_member".into(),
            _ => return Err(V1Error::not_found(
                "User actions are suspend, resume, make-admin and make-member (DELETE deletes).",
            )),
        };
    let target = account(&state, &name).await?;
    let me = &caller.bearer.account;
    server::user_action(&state, me, &caller.actor(), target.id, &action).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_user(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, V1Error> {
    admin(&caller, &state, Scope::Workspaces).await?;
    let target = account(&state, &name).await?;
    let me = &caller.bearer.account;
    server::user_action(&state, me, &caller.actor(), target.id, "delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"workspaces": n | null, "running": n | null, "memory_mb": n | null}`; `null` or absent:
/// the instance's default.
pub async fn set_quota(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<Quota>, JsonRejection>,
) -> Result<StatusCode, V1Error> {
    admin(&caller, &state, Scope::Workspaces).await?;
    let quota = super::workspaces::body(b)?;
    let target = account(&state, &name).await?;
    server::set_quota(&state, &caller.actor(), target.id, quota).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn workspaces(caller: Caller, State(state): State<AppState>) -> Answer {
    admin(&caller, &state, Scope::Read).await?;
    Ok(Json(
        json!({ "workspaces": server::workspaces(&state).await? }),
    ))
}

/// `start`, `stop` or `restart` any user's workspace, by its id.
pub async fn workspace_action(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<StatusCode, V1Error> {
    admin(&caller, &state, Scope::Workspaces).await?;
    let id = workspace_id(&id)?;
    if !matches!(action.as_str(), "start" | "stop" | "restart") {
        return Err(V1Error::not_found(
            "Workspace actions are start, stop and restart (DELETE deletes).",
        ));
    }
    server::workspace_action(&state, &caller.actor(), id, &action).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn delete_workspace(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, V1Error> {
    admin(&caller, &state, Scope::Workspaces).await?;
    let id = workspace_id(&id)?;
    server::workspace_action(&state, &caller.actor(), id, "delete").await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    outcome: String,
    before: Option<i64>,
}

pub async fn audit(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Answer {
    admin(&caller, &state, Scope::Read).await?;
    let page = server::audit(&state, &q.action, &q.user, &q.outcome, q.before).await?;
    Ok(Json(json!(page)))
}
