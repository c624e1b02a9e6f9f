//! `qingting-shell -- <IDE command>`: the entrypoint of every workspace image.
//!
//! - `POST /initialize` (Function Compute's Initializer hook): starts the IDE, answers once it
//!   is healthy;
//! - `GET /pre-stop` (the PreStop hook): stops the IDE's process group so it can save state;
//! - `GET /_qingting/health` (the container health check): 200 when the IDE answers;
//! - everything else: the in-process gateway's rules (`qingting_gateway::access`), with the
//!   dashboard's Ed25519 **public** key only, then proxied to the IDE's local socket.
//!
//! The cookie key is random per process: a new instance asks the browser to go through the
//! dashboard once more, which is invisible to the user.

mod config;
mod ide;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, Method, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use config::ShellConfig;
use ide::Ide;
use qingting_gateway::{
    access::{self, Decision, Guard, Target},
    cookie::{self, CookieCodec},
    now_unix,
    proxy::{self, Forwarded},
    token::TokenVerifier,
};
use std::{net::SocketAddr, sync::Arc};

struct Shell {
    cfg: Arc<ShellConfig>,
    guard: Guard,
    ide: Ide,
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
    let guard = Guard::new(
        verifier,
        CookieCodec::new(rand::random()),
        cfg.proto == "https",
        cfg.cookie_hours * 3600,
    );
    let shell = Arc::new(Shell {
        ide: Ide::new(cfg.clone()),
        cfg: cfg.clone(),
        guard,
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
        let _ = tokio::signal::ctrl_c().await;
        stop.ide.stop().await;
    })
    .await?;
    Ok(())
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
            shell.ide.stop().await;
            return (StatusCode::OK, "stopped\n").into_response();
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
        origin: format!("{}://{host}", cfg.proto),
    };
    match shell
        .guard
        .decide(&target, req.method(), req.uri(), req.headers(), now_unix())
    {
        Decision::Exchanged {
            set_cookie,
            location,
            ..
        } => {
            let mut res: Response = access::found(&location);
            access::append_cookie(&mut res, &set_cookie);
            res
        }
        Decision::SignIn { clear_cookie, next } => {
            let mut res: Response = access::found(&format!(
                "{}/open/{}/{}?next={}",
                cfg.dashboard_url,
                cfg.owner,
                cfg.workspace,
                access::percent_encode(&next)
            ));
            if clear_cookie {
                access::append_cookie(&mut res, &cookie::clear_header(shell.guard.secure()));
            }
            res
        }
        Decision::Refuse {
            status,
            message,
            clear_cookie,
        } => {
            let mut res = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                format!("{message}\n"),
            )
                .into_response();
            if clear_cookie {
                access::append_cookie(&mut res, &cookie::clear_header(shell.guard.secure()));
            }
            res
        }
        Decision::Forward { .. } => {
            // A request that arrives before the Initializer (or after a crash) starts the IDE.
            if !shell.ide.healthy().await {
                if let Err(e) = shell.ide.ensure_started().await {
                    return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response();
                }
            }
            let fwd = Forwarded {
                client_ip: String::new(),
                proto: cfg.proto,
            };
            match proxy::forward(req, &shell.ide.upstream(), &fwd, ()).await {
                Ok(res) => res.map(Body::new),
                Err(e) => (StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response(),
            }
        }
    }
}
