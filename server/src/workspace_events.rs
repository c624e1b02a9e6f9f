//! `GET /api/workspaces/events`: the signed-in user's workspace list as server-sent events,
//! once on connect and again whenever one of their workspaces changes state. The dashboard
//! listens with gloo-net's `EventSource`, so the list is live without polling.

use app::api::workspaces::server::rows;
use axum::{
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Extension,
};
use futures_util::StreamExt;
use qingting_core::{accounts, auth_session, AppState};
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

pub async fn events(Extension(state): Extension<AppState>, session: Session) -> Response {
    let account = match auth_session::user_id(&session).await {
        Ok(Some(uid)) => accounts::find_by_id(&state.db, uid).await.ok().flatten(),
        _ => None,
    };
    let (Some(account), Some(sid)) = (account, session.id()) else {
        return (StatusCode::UNAUTHORIZED, "Please sign in to continue.").into_response();
    };
    // The stream ends with the session (sign-out, password change, deletion).
    let live = state.live.register(&sid.to_string(), account.id);
    let ended = live.ended();
    let rx = state.workspaces.subscribe();
    let stream = futures_util::stream::unfold((rx, true), move |(mut rx, first)| {
        let (state, account) = (state.clone(), account.clone());
        async move {
            if !first {
                loop {
                    match rx.recv().await {
                        Ok(uid) if uid == account.id => break,
                        Ok(_) => continue,
                        // Missed some: a fresh snapshot covers them.
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
            let rows = rows(&state, &account).await.ok()?;
            let event = Event::default().event("workspaces").json_data(rows).ok()?;
            Some((Ok::<_, Infallible>(event), (rx, false)))
        }
    });
    let stream = stream.take_until(ended).map(move |event| {
        // Registered for as long as the stream is open.
        let _ = &live;
        event
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
