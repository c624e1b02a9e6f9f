//! The in-process workspace gateway: requests whose `Host` names a workspace
//! (`<user>-<ws>.<domain>`) never reach the dashboard's routes; they are authorized by the
//! shared [`qingting_gateway::access`] rules and proxied to the workspace's IDE.

mod open;
mod pages;
pub mod shell_api;
mod traffic;

pub use open::open;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use qingting_core::{
    accounts::Account,
    client_ip::ClientIp,
    store::session_store::session_alive,
    workspaces::{sharing_of, Action, GatewayTarget, PortSharing, WorkspaceState},
    AppState,
};
use qingting_gateway::{
    access::{self, Decision, Incoming, Target},
    cookie, host,
    live::{self, LiveGuard},
    now_unix,
    pool::UpstreamPool,
    proxy::{self, Forwarded},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Path of the Start button on a stopped workspace's page.
const START_PATH: &str = "/_qingting/start";
/// How long a positive session check is trusted before asking the database again: a
/// sign-out on any replica ends access through every gateway within a second.
const SESSION_CACHE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Gateway {
    state: AppState,
    domain: String,
    dashboard: String,
    proto: &'static str,
    /// Session id → (its user, when the database last said it is alive).
    sessions: Arc<Mutex<HashMap<String, (i64, Instant)>>>,
    pool: Arc<UpstreamPool<Body>>,
    traffic: Arc<traffic::Traffic>,
}

impl Gateway {
    pub fn new(state: AppState) -> Self {
        let domain = state.config.workspace_domain();
        let dashboard = state.config.public_origin();
        let proto = if state.config.is_https() {
            "https"
        } else {
            "http"
        };
        Self {
            state,
            domain,
            dashboard,
            proto,
            sessions: Arc::default(),
            pool: Arc::default(),
            traffic: traffic::Traffic::new(),
        }
    }

    async fn session_ok(&self, sid: &str, user: i64) -> bool {
        if let Some((u, t)) = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sid)
        {
            if *u == user && t.elapsed() < SESSION_CACHE {
                return true;
            }
        }
        let ok = session_alive(&self.state.db, sid, user)
            .await
            .unwrap_or_else(|e| {
                tracing::error!("session check failed: {e}");
                false
            });
        let mut cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (_, t)| t.elapsed() < SESSION_CACHE);
        if ok {
            cache.insert(sid.to_string(), (user, Instant::now()));
        }
        ok
    }
}

/// Middleware: workspace hosts are served here; everything else goes on to the dashboard.
pub async fn route(State(gw): State<Gateway>, req: Request, next: Next) -> Response {
    // Only the Host the client connected with; never X-Forwarded-Host (GHSA-5g4w-3vw9-478w).
    let host_header = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_ascii_lowercase();
    let Some(wh) = host::parse(&host_header, &gw.domain) else {
        return next.run(req).await;
    };
    let origin = format!("{}://{host_header}", gw.proto);
    let started = Instant::now();
    let traffic = gw.traffic.clone();
    let metrics = gw.state.metrics.clone();
    let (workspace, res) = serve(gw, wh, origin, req).await;
    traffic.record(workspace, res.status().as_u16(), started);
    metrics.gateway_request(res.status().as_u16(), started.elapsed());
    res
}

/// Answers one request to a workspace host; also says which workspace it was for (-1: none).
async fn serve(
    gw: Gateway,
    wh: host::WorkspaceHost,
    origin: String,
    req: Request,
) -> (i64, Response) {
    let target = match gw.state.workspaces.resolve(&wh.user, &wh.workspace).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("workspace lookup failed: {e}");
            return (-1, StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    let workspace = target.as_ref().map_or(-1, |t| t.id);
    (
        workspace,
        decide_and_answer(gw, wh, origin, target, req).await,
    )
}

async fn decide_and_answer(
    gw: Gateway,
    wh: host::WorkspaceHost,
    origin: String,
    target: Option<GatewayTarget>,
    req: Request,
) -> Response {
    // How the previewed port is shared (the IDE itself never is).
    let sharing = match (&target, wh.port) {
        (Some(t), Some(port)) => sharing_of(&t.shared_ports, port),
        _ => PortSharing::Private,
    };
    // A made-up name is decided as a workspace nobody can open: strangers get the same
    // answers for it as for someone else's real workspace.
    let rules = match &target {
        Some(t) => Target {
            workspace_id: t.id,
            owner_id: t.owner_id,
            user: wh.user.clone(),
            workspace: wh.workspace.clone(),
            origin: origin.clone(),
            port: wh.port,
            open_to_signed_in: sharing != PortSharing::Private,
        },
        None => Target {
            port: wh.port,
            ..Target::nobody(&wh.user, &wh.workspace, &origin)
        },
    };
    let (parts, body) = req.into_parts();
    // The token exchange's answer form is read here; every other body streams to the IDE.
    let Ok((form, body)) = access::take_form(&parts, body).await else {
        return pages::refused(413, "Request too large.", &gw.dashboard);
    };
    let body = body.unwrap_or_else(Body::empty);
    if let (Some(target), PortSharing::Public) = (&target, sharing) {
        // Anyone, signed in or not; the token exchange still works for those who come
        // through the dashboard (they get a cookie nobody needs).
        if parts.uri.path() != access::AUTH_PATH {
            let owner = Account {
                id: target.owner_id,
                username: wh.user.clone(),
            };
            let req = Request::from_parts(parts, body);
            let target = target.clone();
            return forward(&gw, &wh, &owner, target, &origin, None, Who::Anyone, req).await;
        }
    }
    let guard = &gw.state.access.guard;
    let incoming = Incoming {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        form: form.as_deref(),
    };
    let decision = guard.decide(&rules, incoming, now_unix()).await;
    let req = Request::from_parts(parts, body);
    match decision {
        Decision::Exchanged {
            set_cookies,
            location,
            claims,
        } => {
            if !gw.session_ok(&claims.sid, claims.sub).await {
                return sign_in_again(&gw, &rules, &location);
            }
            access::found_with_cookies(&location, &set_cookies)
        }
        Decision::Confirm { token, next } => pages::with_page_headers(
            Html(access::confirm_page(&rules, &token, &next)).into_response(),
        ),
        Decision::SignIn {
            set_cookies,
            location,
        } => access::found_with_cookies(&location, &set_cookies),
        Decision::Refuse {
            status,
            message,
            clear_cookie,
        } => {
            let mut res = pages::refused(status, message, &gw.dashboard);
            if clear_cookie {
                access::append_cookie(&mut res, &cookie::clear_header(guard.secure()));
            }
            res
        }
        Decision::Forward { claims } => {
            // Forward is only ever decided for a workspace that exists.
            let Some(target) = target else {
                return sign_in_again(&gw, &rules, "/");
            };
            if !gw.session_ok(&claims.sid, claims.sub).await {
                // Signed out of the dashboard (or deleted): workspace access ends too.
                return sign_in_again(&gw, &rules, "/");
            }
            let owner = Account {
                id: target.owner_id,
                username: wh.user.clone(),
            };
            // Only a WebSocket outlives the session check made here; it is closed when the
            // session ends.
            let live = access::is_websocket(req.headers())
                .then(|| gw.state.live.register(&claims.sid, claims.sub));
            let who = if claims.sub == target.owner_id {
                Who::Owner
            } else {
                Who::SignedIn
            };
            forward(&gw, &wh, &owner, target, &origin, live, who, req).await
        }
    }
}

/// A workspace cookie whose session has ended: cleared, and back through the dashboard.
fn sign_in_again(gw: &Gateway, rules: &Target, next: &str) -> Response {
    let guard = &gw.state.access.guard;
    match guard.sign_in(rules, &axum::http::HeaderMap::new(), next, true) {
        Decision::SignIn {
            set_cookies,
            location,
        } => access::found_with_cookies(&location, &set_cookies),
        _ => pages::refused(403, "Please sign in again.", &gw.dashboard),
    }
}

/// Who is asking, on a host the gateway let them through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    /// Someone signed in whom the owner shared this port with.
    SignedIn,
    /// Anyone, on a public port: their traffic does not keep the workspace from idle stop
    /// (or a stranger could keep it running for ever).
    Anyone,
}

/// Proxies one request to the workspace (its IDE, or the previewed port). Only the owner may
/// start it or see why it failed.
#[allow(clippy::too_many_arguments)]
async fn forward(
    gw: &Gateway,
    wh: &host::WorkspaceHost,
    owner: &Account,
    target: GatewayTarget,
    origin: &str,
    live: Option<LiveGuard>,
    who: Who,
    req: Request,
) -> Response {
    let is_owner = who == Who::Owner;
    let service = &gw.state.workspaces;
    let name = wh.workspace.as_str();
    if req.uri().path() == START_PATH && req.method() == Method::POST {
        if !is_owner {
            return pages::refused(
                403,
                "Only its owner can start this workspace.",
                &gw.dashboard,
            );
        }
        // A form post from the workspace's own page only (CSRF).
        let same_origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| o.eq_ignore_ascii_case(origin));
        if !same_origin {
            return pages::refused(403, "Cross-site request refused.", &gw.dashboard);
        }
        let address = req
            .extensions()
            .get::<ClientIp>()
            .map(|ClientIp(ip)| ip.to_string());
        let by = qingting_core::audit::Actor::user(owner, address);
        return match service.begin(&by, owner, target.id, Action::Start).await {
            Ok(_) => access::found::<Body>("/"),
            Err(e) => pages::refused(409, &e.to_string(), &gw.dashboard),
        };
    }
    if target.state != WorkspaceState::Running {
        if let Some(upstream) = &target.endpoint {
            gw.pool.forget(upstream);
        }
    }
    match target.state {
        WorkspaceState::Running => {}
        WorkspaceState::Stopped => return pages::stopped(name, None, &gw.dashboard, is_owner),
        WorkspaceState::Failed if !is_owner => {
            return pages::stopped(name, None, &gw.dashboard, false)
        }
        WorkspaceState::Failed => {
            let reason = service
                .get(owner, target.id)
                .await
                .ok()
                .and_then(|v| v.reason);
            return pages::stopped(
                name,
                Some(reason.as_deref().unwrap_or("unknown")),
                &gw.dashboard,
                true,
            );
        }
        other => return pages::busy(name, other.as_str()),
    }
    let upstream = match wh.port {
        None => target.endpoint,
        Some(port) => match service.runtime().port_endpoint(target.id, port) {
            Ok(e) => Some(e),
            Err(why) => return pages::refused(501, &why, &gw.dashboard),
        },
    };
    let Some(upstream) = upstream else {
        return pages::unreachable(name);
    };
    let fwd = Forwarded {
        client_ip: req
            .extensions()
            .get::<ClientIp>()
            .map(|ClientIp(ip)| ip.to_string())
            .unwrap_or_default(),
        proto: gw.proto,
    };
    let activity = service.activity();
    let counts = who != Who::Anyone;
    let keep_alive = live.map(|live| {
        let counted = gw.state.metrics.websocket();
        (activity.open_socket(target.id), live, counted)
    });
    if counts {
        activity.touch(target.id);
    }
    let revoked = live::ended(keep_alive.as_ref().map(|(_, live, _)| live));
    match proxy::forward(req, &upstream, &gw.pool, &fwd, keep_alive, revoked).await {
        Ok(res) => res.map(Body::new),
        Err(e) => {
            tracing::warn!(workspace = target.id, port = wh.port, "proxy: {e}");
            match wh.port {
                Some(port) => pages::nothing_on_port(name, port),
                None => pages::unreachable(name),
            }
        }
    }
}
