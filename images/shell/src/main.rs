//! `qingting-shell -- <IDE command>`: the entrypoint of every workspace image.
//!
//! - `POST /initialize` (Function Compute's Initializer hook): starts the IDE if it is not
//!   running, answers once it is healthy;
//! - `GET /pre-stop` (the PreStop hook): flushes written data to the NAS;
//!
//! Both hooks answer on the same port as the public custom domain, and nothing in a request
//! proves it came from Function Compute, so both are inert for anyone else: starting an IDE
//! that runs is a no-op, and a flush harms nobody. The IDE is stopped on `SIGTERM`, which only
//! the platform can send, when the instance is destroyed.
//! - `GET /_qingting/health` (the container health check): 200 when the IDE answers;
//! - everything else: the in-process gateway's rules (`qingting_gateway::access`), with the
//!   dashboard's Ed25519 **public** key only, then proxied to the IDE's local socket.
//!
//! The cookie key is random per process: a new instance asks the browser to go through the
//! dashboard once more, which is invisible to the user.

mod config;
mod dashboard;
mod ide;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, Method, StatusCode},
    response::{Html, IntoResponse, Response},
    Router,
};
use config::ShellConfig;
use dashboard::Dashboard;
use ide::Ide;
use qingting_gateway::{
    access::{self, Decision, Guard, Incoming, Target},
    cookie::{self, CookieCodec},
    live::{self, LiveSessions},
    now_unix,
    proxy::{self, Forwarded},
    token::TokenVerifier,
};
use std::{net::SocketAddr, sync::Arc};

struct Shell {
    cfg: Arc<ShellConfig>,
    guard: Guard,
    ide: Ide,
    dashboard: Arc<Dashboard>,
    live: Arc<LiveSessions>,
    pool: qingting_gateway::pool::UpstreamPool<Body>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let command: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let cfg = Arc::new(ShellConfig::from_env(command)?);
    let verifier =
        TokenVerifier::new(&cfg.public_key).map_err(|e| anyhow::anyhow!("public key: {e}"))?;
    let dashboard = Arc::new(Dashboard::new(&cfg.dashboard_url)?);
    let guard = Guard::new(
        verifier,
        dashboard.clone(),
        CookieCodec::new(rand::random()),
        cfg.proto == "https",
        cfg.cookie_hours * 3600,
        &cfg.dashboard_url,
    );
    let shell = Arc::new(Shell {
        ide: Ide::new(cfg.clone()),
        cfg: cfg.clone(),
        guard,
        live: LiveSessions::new(dashboard.clone()),
        dashboard,
        pool: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, workspace = cfg.workspace_id, "qingting-shell is listening");
    let app = Router::new().fallback(handle).with_state(shell.clone());
    let stop = shell.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        terminated().await;
        stop.ide.stop().await;
    })
    .await?;
    Ok(())
}

/// The headers of every page the shell answers itself (never framed, never cached).
fn with_page_headers(mut res: Response) -> Response {
    for (name, value) in access::PAGE_HEADERS {
        res.headers_mut()
            .insert(name, axum::http::HeaderValue::from_static(value));
    }
    res
}

/// SIGTERM (the platform destroying the instance) or SIGINT.
async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn handle(State(shell): State<Arc<Shell>>, req: Request) -> Response {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/initialize") => {
            return match shell.ide.ensure_started().await {
                Ok(()) => (StatusCode::OK, "ready\n").into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
            };
        }
        (&Method::GET, "/pre-stop") => {
            // Whatever the IDE wrote reaches the NAS before the instance goes.
            tokio::task::spawn_blocking(|| unsafe { libc::sync() })
                .await
                .ok();
            return (StatusCode::OK, "flushed\n").into_response();
        }
        (&Method::GET, "/_qingting/health") => {
            return if shell.ide.healthy().await {
                (StatusCode::OK, "ok\n").into_response()
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the IDE is not answering\n",
                )
                    .into_response()
            };
        }
        _ => {}
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let cfg = &shell.cfg;
    let target = Target {
        workspace_id: cfg.workspace_id,
        owner_id: cfg.owner_id,
        user: cfg.owner.clone(),
        workspace: cfg.workspace.clone(),
        origin: format!("{}://{host}", cfg.proto),
        port: None,
        open_to_signed_in: false,
    };
    let (parts, body) = req.into_parts();
    // The token exchange's answer form is read here; every other body streams to the IDE.
    let Ok((form, body)) = access::take_form(&parts, body).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "Request too large.\n").into_response();
    };
    let body = body.unwrap_or_else(Body::empty);
    let incoming = Incoming {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        form: form.as_deref(),
    };
    let decision = shell.guard.decide(&target, incoming, now_unix()).await;
    let req = Request::from_parts(parts, body);
    match decision {
        Decision::Exchanged {
            set_cookies,
            location,
            ..
        }
        | Decision::SignIn {
            set_cookies,
            location,
        } => access::found_with_cookies(&location, &set_cookies),
        Decision::Confirm { token, next } => {
            with_page_headers(Html(access::confirm_page(&target, &token, &next)).into_response())
        }
        Decision::Refuse {
            status,
            message,
            clear_cookie,
        } => {
            let mut res = with_page_headers(
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                    format!("{message}\n"),
                )
                    .into_response(),
            );
            if clear_cookie {
                access::append_cookie(&mut res, &cookie::clear_header(shell.guard.secure()));
            }
            res
        }
        Decision::Forward { claims } => {
            let session = (claims.sid.clone(), claims.sub);
            if !shell.dashboard.session_alive(&session).await {
                // Signed out of the dashboard (or deleted): workspace access ends too.
                let headers = axum::http::HeaderMap::new();
                return match shell.guard.sign_in(&target, &headers, "/", true) {
                    Decision::SignIn {
                        set_cookies,
                        location,
                    } => access::found_with_cookies(&location, &set_cookies),
                    _ => (StatusCode::FORBIDDEN, "Please sign in again.\n").into_response(),
                };
            }
            // A request that arrives before the Initializer (or after a crash) starts the IDE.
            if !shell.ide.is_ready() {
                if let Err(e) = shell.ide.ensure_started().await {
                    return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response();
                }
            }
            let fwd = Forwarded {
                client_ip: String::new(),
                proto: cfg.proto,
            };
            // A WebSocket outlives this check: it is closed when its session ends.
            let live = access::is_websocket(req.headers())
                .then(|| shell.live.register(&session.0, session.1));
            let revoked = live::ended(live.as_ref());
            match proxy::forward(req, &shell.ide.upstream(), &shell.pool, &fwd, live, revoked).await
            {
                Ok(res) => res.map(Body::new),
                Err(e) => (StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response(),
            }
        }
    }
}
