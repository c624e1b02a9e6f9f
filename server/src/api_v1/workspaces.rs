//! Workspaces over the JSON API, by name: list, create, get, start/stop/restart,
//! keep-running, open, share a port, delete. Rows are the dashboard's (docs/api.md).

use super::{Caller, V1Error};
use app::api::workspaces::server::{api_error, row, rows, templates as template_list};
use axum::{
    extract::{rejection::JsonRejection, Path, State},
    http::StatusCode,
    Json,
};
use qingting_core::{
    api_tokens::{self, Scope},
    workspaces::{Action, PortSharing, WorkspaceView},
    AppState,
};
use qingting_gateway::{access, now_unix, token::MAX_TTL_SECS, url};
use serde::Deserialize;
use serde_json::{json, Value};

type Answer = Result<Json<Value>, V1Error>;

/// A JSON body, or the API's error naming what is wrong with it.
pub(super) fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, V1Error> {
    b.map(|Json(t)| t)
        .map_err(|e| V1Error::invalid(None, format!("The body must be JSON: {}", e.body_text())))
}

async fn find(state: &AppState, caller: &Caller, name: &str) -> Result<WorkspaceView, V1Error> {
    state
        .workspaces
        .find_by_name(&caller.bearer.account, name)
        .await
        .map_err(|e| V1Error::from(api_error(e)))?
        .ok_or_else(|| V1Error::not_found("No such workspace."))
}

async fn answer(state: &AppState, caller: &Caller, v: &WorkspaceView) -> Answer {
    let r = row(state, &caller.bearer.account, v).await?;
    Ok(Json(json!(r)))
}

pub async fn templates(caller: Caller, State(state): State<AppState>) -> Answer {
    caller.needs(Scope::Read)?;
    Ok(Json(json!({ "templates": template_list(&state) })))
}

pub async fn list(caller: Caller, State(state): State<AppState>) -> Answer {
    caller.needs(Scope::Read)?;
    let rows = rows(&state, &caller.bearer.account).await?;
    Ok(Json(json!({ "workspaces": rows })))
}

pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Answer {
    caller.needs(Scope::Read)?;
    let v = find(&state, &caller, &name).await?;
    answer(&state, &caller, &v).await
}

#[derive(Deserialize)]
pub struct Create {
    name: String,
    template: String,
}

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    b: Result<Json<Create>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), V1Error> {
    caller.needs(Scope::Workspaces)?;
    let Create { name, template } = body(b)?;
    let account = &caller.bearer.account;
    let v = state
        .workspaces
        .create_in_background(&caller.actor(), account, name.trim(), &template)
        .await
        .map_err(|e| V1Error::from(api_error(e)))?;
    Ok((StatusCode::CREATED, answer(&state, &caller, &v).await?))
}

pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), V1Error> {
    caller.needs(Scope::Workspaces)?;
    let v = find(&state, &caller, &name).await?;
    let v = state
        .workspaces
        .begin(
            &caller.actor(),
            &caller.bearer.account,
            v.id,
            Action::Delete,
        )
        .await
        .map_err(|e| V1Error::from(api_error(e)))?;
    Ok((StatusCode::ACCEPTED, answer(&state, &caller, &v).await?))
}

/// `start`, `stop`, `restart`, `keep-running` or `open`.
pub async fn act(
    caller: Caller,
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
) -> Answer {
    caller.needs(Scope::Workspaces)?;
    let v = find(&state, &caller, &name).await?;
    let account = &caller.bearer.account;
    let v = match action.as_str() {
        "open" => return open(&state, &caller, &v).await,
        "keep-running" => state.workspaces.keep_running(account, v.id).await,
        a => match Action::parse(a).filter(|a| *a != Action::Delete) {
            Some(a) => {
                state
                    .workspaces
                    .begin(&caller.actor(), account, v.id, a)
                    .await
            }
            None => {
                return Err(V1Error::not_found(
                    "Actions are start, stop, restart, keep-running and open (DELETE deletes).",
                ))
            }
        },
    }
    .map_err(|e| V1Error::from(api_error(e)))?;
    answer(&state, &caller, &v).await
}

/// A URL that opens the workspace in a browser through the token exchange: its one-time
/// token lasts a minute, and the workspace host asks the person to confirm (it did not come
/// from a dashboard page).
async fn open(state: &AppState, caller: &Caller, v: &WorkspaceView) -> Answer {
    let sid = api_tokens::open_session(&state.db, &caller.bearer)
        .await
        .map_err(V1Error::from)?;
    let account = &caller.bearer.account;
    let token = state
        .access
        .signer
        .mint(v.id, account.id, &sid, None, now_unix(), MAX_TTL_SECS);
    let origin = state
        .config
        .workspace_origin(&account.username, &v.name, None);
    let url = format!(
        "{origin}{}?token={token}&next={}",
        access::AUTH_PATH,
        url::percent_encode("/")
    );
    Ok(Json(json!({ "url": url, "expires_in": MAX_TTL_SECS })))
}

#[derive(Deserialize)]
pub struct Share {
    sharing: String,
}

pub async fn share_port(
    caller: Caller,
    State(state): State<AppState>,
    Path((name, port)): Path<(String, String)>,
    b: Result<Json<Share>, JsonRejection>,
) -> Answer {
    caller.needs(Scope::Workspaces)?;
    let Share { sharing } = body(b)?;
    let Some(sharing) = PortSharing::parse(&sharing) else {
        return Err(V1Error::invalid(
            Some("sharing"),
            "Sharing must be private, users or public.",
        ));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| V1Error::invalid(Some("port"), "A port is a number from 1 to 65535."))?;
    let v = find(&state, &caller, &name).await?;
    let account = &caller.bearer.account;
    state
        .workspaces
        .share_port(account, v.id, port, sharing)
        .await
        .map_err(|e| V1Error::from(api_error(e)))?;
    let v = find(&state, &caller, &name).await?;
    answer(&state, &caller, &v).await
}
