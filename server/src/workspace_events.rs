//! `GET /api/workspaces/events`: the signed-in user's workspace list as server-sent events,
//! once on connect and again whenever one of their workspaces changes state (on this replica
//! or, through the change feed, on another), or every few
//! seconds when what the runtime sees changed without an event (the ports a workspace
//! listens on). The dashboard listens with gloo-net's `EventSource`, so the list is live
//! without polling from the browser.

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
use qingting_core::{accounts, auth_session, workspaces::Changed, AppState};
use std::{convert::Infallible, time::Duration};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

/// The data of the last event when the session has ended (signed out elsewhere, suspended,
/// deleted); the dashboard goes to the sign-in page.
pub const ENDED: &str = app::api::workspaces::SESSION_ENDED;

/// How often the list is compared with what the runtime sees, without a change event.
const RECHECK: Duration = Duration::from_secs(3);

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
    let counted = state.metrics.sse_client();
    let ended = live.ended();
    let rx = state.workspaces.subscribe();
    let start = (rx, None, tokio::time::Instant::now());
    let stream = futures_util::stream::unfold(start, move |(mut rx, last, mut recheck)| {
        let (state, account) = (state.clone(), account.clone());
        async move {
            let mut last: Option<String> = last;
            loop {
                if last.is_some() {
                    // A deadline, not a fresh sleep per wake-up: other users' changes must
                    // not keep postponing the recheck.
                    tokio::select! {
                        got = rx.recv() => match got {
                            Ok(Changed::User(uid)) if uid != account.id => continue,
                            // Ours, or missed some: a fresh snapshot covers them.
                            Ok(_) | Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => return None,
                        },
                        _ = tokio::time::sleep_until(recheck) => {}
                    }
                }
                recheck = tokio::time::Instant::now() + RECHECK;
                let rows = rows(&state, &account).await.ok()?;
                let json = serde_json::to_string(&rows).ok()?;
                if last.as_deref() == Some(json.as_str()) {
                    continue;
                }
                let event = Event::default().event("workspaces").data(&json);
                last = Some(json);
                return Some((Ok::<_, Infallible>(event), (rx, last, recheck)));
            }
        }
    });
    // Its last event says so when the session ended, so the page can leave at once (the
    // browser would otherwise wait seconds before reconnecting to find out).
    let live = std::sync::Arc::new(live);
    let check = live.clone();
    let farewell = futures_util::stream::once(async move { check.has_ended() }).filter_map(
        |gone| async move { gone.then(|| Ok(Event::default().event("workspaces").data(ENDED))) },
    );
    let stream = stream.take_until(ended).chain(farewell).map(move |event| {
        // Registered (and counted) for as long as the stream is open.
        let _ = (&live, &counted);
        event
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
