//! Prometheus `/metrics`: this process's counters (`qingting_core::metrics`) and the figures
//! read at scrape time (workspaces by template and state, the database pool). Served on the
//! main address to requests bearing `metrics.token`, and without a token on `metrics.listen`
//! when set; neither set, `/metrics` is a 404 like any unknown path.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use qingting_core::{metrics::Exposition, store, workspaces::Census, AppState};
use subtle::ConstantTimeEq;

pub const PATH: &str = "/metrics";
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/metrics` on the main address: the token, or nothing there.
pub async fn guarded(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.config.metrics.token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "A valid metrics token is needed.\n",
        )
            .into_response();
    }
    scrape(&state).await
}

/// The router of the separate metrics address (`metrics.listen`).
pub fn separate(state: AppState) -> Router {
    Router::new()
        .route(
            PATH,
            get(|State(s): State<AppState>| async move { scrape(&s).await }),
        )
        .with_state(state)
}

type Samples<'a> = Vec<(Vec<(&'a str, &'a str)>, f64)>;

fn samples(c: &Census) -> Samples<'_> {
    c.iter()
        .map(|(t, s, n)| {
            (
                vec![("template", t.as_str()), ("state", s.as_str())],
                *n as f64,
            )
        })
        .collect()
}

async fn scrape(state: &AppState) -> Response {
    let mut x = Exposition::default();
    let version = env!("CARGO_PKG_VERSION");
    x.gauge(
        "qingting_build_info",
        "The version of QingTing Studio this process runs.",
        [(vec![("version", version)], 1.0)],
    );
    let census = state.workspaces.census().await;
    x.gauge(
        "qingting_database_up",
        "Whether the database answered this scrape's queries.",
        [(vec![], if census.is_ok() { 1.0 } else { 0.0 })],
    );
    if let Ok((users, pooled)) = &census {
        x.gauge(
            "qingting_workspaces",
            "Users' workspaces, by template and state (every replica counts the same).",
            samples(users),
        );
        x.gauge(
            "qingting_pooled_workspaces",
            "Workspaces prepared ahead in the warm pool, by template and state.",
            samples(pooled),
        );
    }
    let (in_use, idle, max) = store::pool_use(&state.db);
    x.gauge(
        "qingting_db_pool_connections",
        "Database connections of this process, in use or idle.",
        [
            (vec![("state", "in_use")], in_use as f64),
            (vec![("state", "idle")], idle as f64),
        ],
    );
    x.gauge(
        "qingting_db_pool_max_connections",
        "The most database connections this process may open.",
        [(vec![], max as f64)],
    );
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(&x),
    )
        .into_response()
}
