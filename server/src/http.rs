//! The HTTP stack: Leptos pages and server functions, health, sessions, client address,
//! CSRF guard, request ids and access logs; binding and graceful shutdown. What the router
//! serves is assembled in `wiring`.

use crate::{
    api_v1, avatar_http, client_ip_layer, csrf, github_oauth,
    healthz::healthz,
    metrics_http,
    site::{self, Site},
    wiring::{self, Assembled},
    workspace_events, workspace_hosts,
};
use anyhow::Context;
use app::{shell, App};
use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderName, HeaderValue},
    middleware,
    routing::{get, post},
    serve::ListenerExt,
    Extension, Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use qingting_core::{replicas::lease, store, AppState, Config};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower_http::{
    compression::{CompressionLayer, CompressionLevel},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::{DefaultOnResponse, TraceLayer},
    LatencyUnit,
};
use tower_sessions::{
    cookie::{Key, SameSite},
    Expiry, SessionManagerLayer,
};
use tracing::Level;

/// Name of the dashboard session cookie (host-only; never sent to workspace hosts).
pub const SESSION_COOKIE: &str = "qingting_session";
/// Its name on https: with the `__Host-` prefix browsers accept it only host-only, `Secure`
/// and on `/`, so no neighbouring host (a workspace) can toss in one of its own.
pub const SECURE_SESSION_COOKIE: &str = "__Host-qingting_session";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The app's routes, generated once per process. Generating them raises a process-wide flag
/// that keeps every `Resource` from loading meanwhile (leptos' `SuppressResourceLoad`), so a
/// page rendering at that moment in another server of the same process (tests run several)
/// would wait forever; generated once, before any server here renders, it cannot catch one.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// Builds the full application router over `state`.
pub fn router(state: AppState, session_key: &[u8]) -> anyhow::Result<Router> {
    let config = state.config.clone();
    let site =
        Arc::new(Site::load(config.site_root.as_deref()).context("cannot read the site files")?);
    if site.has_bundle() {
        tracing::info!(site = %site.source(), bundle = site.output_name(), "serving site files");
    } else {
        tracing::error!(
            site = %site.source(),
            "compiled site files not found (no pkg/qingting.js); pages will render without \
             interactivity. Build with `cargo leptos build` or set --site-root."
        );
    }
    let options = LeptosOptions::builder()
        .output_name(site.output_name())
        .site_pkg_dir(site::PKG_DIR)
        .site_addr(
            config
                .listen
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 3000))),
        )
        .build();
    let routes = route_list();

    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_context(app::api::server_ctx::RequestUser::default());
        }
    };
    let sessions = SessionManagerLayer::new(store::DbSessionStore::new(state.db.clone()))
        .with_name(if config.is_https() {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        })
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.is_https())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::days(
            config.session_days,
        )))
        .with_signed(Key::try_from(session_key).context("session key")?);

    let health = Router::new()
        .route("/healthz", get(healthz))
        .layer(Extension(site.clone()))
        .route(metrics_http::PATH, get(metrics_http::guarded))
        .with_state(state.clone());
    let app = Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .route(
            "/api/avatar",
            // The handler enforces the real limit while streaming; this cap bounds how much of
            // an oversized upload it drains before giving up on the connection.
            post(avatar_http::upload)
                .layer(DefaultBodyLimit::max(avatar_http::transport_cap(config.avatar_max_bytes))),
        )
        .route("/avatars/{file}", get(avatar_http::serve))
        .nest(api_v1::PREFIX, api_v1::router(state.clone()))
        .route("/open/{user}/{workspace}", get(workspace_hosts::open))
        .route(
            workspace_hosts::shell_api::CONSUME_PATH,
            post(workspace_hosts::shell_api::consume).layer(DefaultBodyLimit::max(4096)),
        )
        .route(
            workspace_hosts::shell_api::ALIVE_PATH,
            post(workspace_hosts::shell_api::alive).layer(DefaultBodyLimit::max(64 * 1024)),
        )
        .route("/api/workspaces/events", get(workspace_events::events))
        .route("/auth/github/start", get(github_oauth::start).post(github_oauth::start_post))
        .route("/auth/github/callback", get(github_oauth::callback))
        .route("/auth/github/delete", post(github_oauth::delete_account))
        // Site files are answered by the `site::serve` layer below; anything else is a page.
        .fallback(leptos_axum::render_app_async_with_context(context, {
            let options = options.clone();
            move || shell(options.clone())
        }))
        .with_state(options)
        .layer(middleware::from_fn_with_state(Arc::<str>::from(config.public_origin()), csrf::guard))
        .layer(sessions)
        // Pages and JSON on the fly (not event streams, images, or what is already encoded).
        // Brotli's default (quality 11) is for compressing ahead of time: on the fly it cost a
        // 50-card dashboard more than rendering it. 4 is fast and still beats gzip's best.
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)))
        .layer(middleware::from_fn_with_state(site, site::serve))
        .layer(Extension(state.clone()))
        // No page of the dashboard may be framed (clickjacking its buttons from a workspace or
        // anywhere else), and cross-origin navigations carry our origin as `Referer`, which
        // the token exchange on workspace hosts relies on.
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .merge(health)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", id, method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Millis)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Workspace hosts are answered by the gateway before any dashboard route, cookie or
        // per-request log line (it logs proxied traffic itself, see `workspace_hosts`).
        .layer(middleware::from_fn_with_state(
            workspace_hosts::Gateway::new(state.clone()),
            workspace_hosts::route,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(config.trusted_proxies.clone()),
            client_ip_layer::client_ip,
        ));
    Ok(app)
}

/// A server that is accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Runs until SIGINT/SIGTERM, then finishes in-flight requests.
    pub async fn wait(self) -> anyhow::Result<()> {
        Ok(self.task.await??)
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        Ok(self.task.await??)
    }
}

/// Binds, assembles the application (see [`wiring`]) and starts serving in the background.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url.clone();
    let idle = config.workspaces.idle_stop_secs;
    let Assembled { state, session_key } = wiring::assemble(config).await?;
    let workspaces = state.workspaces.clone();
    let app = router(state.clone(), &session_key)?;

    // The leading replica (a lone one always) adopts IDEs that outlived the previous server
    // and finishes what it left half done before this one serves.
    let leads = lease::hold(
        state.db.clone(),
        lease::BACKGROUND,
        workspaces.replica().into(),
    )
    .await;
    qingting_core::audit::prune_while_leading(
        state.db.clone(),
        state.config.audit.retention_days,
        leads.clone(),
    );
    workspaces
        .run_background(leads, (idle > 0).then(|| Duration::from_secs(idle)))
        .await;

    let metrics = match &state.config.metrics.listen {
        Some(addr) => Some(serve_metrics(addr, state.clone()).await?),
        None => None,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let (db, replica) = (state.db.clone(), workspaces.replica().to_string());
    let task = tokio::spawn(async move {
        // Small request/response exchanges (an IDE's many little requests) go out at once.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = rx => {}
            }
            tracing::info!("shutting down: finishing in-flight requests");
        })
        .await;
        if let Some(m) = metrics {
            m.abort();
        }
        // Another replica need not wait for the lease to lapse.
        if let Err(e) = lease::release(&db, lease::BACKGROUND, &replica).await {
            tracing::warn!("cannot give up the lease: {e}");
        }
        served
    });
    tracing::info!(%addr, %public_url, "QingTing Studio is listening");
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}

/// Serves `/metrics` alone on `addr` (no token: the address is the guard).
async fn serve_metrics(addr: &str, state: AppState) -> anyhow::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics served");
    let app = metrics_http::separate(state);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics address failed: {e}");
        }
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
