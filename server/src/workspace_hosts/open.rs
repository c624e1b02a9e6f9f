//! `GET /open/{user}/{workspace}` on the dashboard: the dashboard half of opening a
//! workspace. Checks the session and ownership, mints a one-time token for that workspace
//! and sends the browser to the workspace host's token exchange.
//!
//! With `port`, the same for that port's preview host; a port its owner shared opens this
//! way for other signed-in users too. Not signed in: to the login page, with `next` back
//! here. Signed in as someone else (and no shared port), or no such workspace: to the user's
//! own list (never saying whether it exists).

use axum::{
    extract::{Path, Query},
    http::{header, HeaderValue},
    response::Response,
    Extension,
};
use qingting_core::{
    accounts, auth_session, redirect,
    workspaces::{sharing_of, PortSharing},
    AppState,
};
use qingting_gateway::{
    access, names, now_unix,
    token::{self, MAX_TTL_SECS},
    url,
};
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Deserialize)]
pub struct OpenQuery {
    next: Option<String>,
    /// The workspace host's round-trip state, carried into the token (see
    /// `qingting_gateway::token::Claims::state`).
    state: Option<String>,
    /// A port of the workspace to open (its preview host) instead of the IDE.
    port: Option<u16>,
}

pub async fn open(
    Extension(state): Extension<AppState>,
    session: Session,
    Path((user, name)): Path<(String, String)>,
    Query(q): Query<OpenQuery>,
) -> Response {
    let next = q
        .next
        .as_deref()
        .and_then(redirect::safe_next)
        .unwrap_or("/");
    let state_param = q.state.as_deref().filter(|s| token::is_state(s));
    let port = q.port.filter(|p| *p > 0);
    let here = format!(
        "/open/{user}/{name}?next={}{}{}",
        url::percent_encode(next),
        state_param
            .map(|st| format!("&state={st}"))
            .unwrap_or_default(),
        port.map(|p| format!("&port={p}")).unwrap_or_default(),
    );
    let uid = match auth_session::user_id(&session).await {
        Ok(Some(uid)) => uid,
        Ok(None) => return to(&format!("/login?next={}", url::percent_encode(&here))),
        Err(e) => {
            tracing::error!("session read failed: {e}");
            return to("/login");
        }
    };
    let account = match accounts::find_by_id(&state.db, uid).await {
        Ok(Some(a)) => a,
        _ => return to(&format!("/login?next={}", url::percent_encode(&here))),
    };
    // Names exactly as hosts spell them (a lenient database collation matches more).
    if !(names::is_username(&user) && names::is_workspace_name(&name)) {
        return to(redirect::HOME);
    }
    // The owner opens any of it; someone else only a port its owner shared.
    let ws_id = if account.username == user {
        match state.workspaces.find_by_name(&account, &name).await {
            Ok(Some(ws)) if ws.name == name => ws.id,
            _ => return to(redirect::HOME),
        }
    } else {
        match (port, state.workspaces.resolve(&user, &name).await) {
            (Some(p), Ok(Some(t))) if sharing_of(&t.shared_ports, p) != PortSharing::Private => {
                t.id
            }
            _ => return to(redirect::HOME),
        }
    };
    let Some(sid) = session.id() else {
        return to(&format!("/login?next={}", url::percent_encode(&here)));
    };
    let token = state.access.signer.mint(
        ws_id,
        account.id,
        &sid.to_string(),
        state_param,
        now_unix(),
        MAX_TTL_SECS,
    );
    let origin = state.config.workspace_origin(&user, &name, port);
    to(&format!(
        "{origin}{}?token={token}&next={}",
        access::AUTH_PATH,
        url::percent_encode(next)
    ))
}

fn to(location: &str) -> Response {
    let mut res = qingting_gateway::access::found(location);
    // The token is single-use: never let a cache replay this answer.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
