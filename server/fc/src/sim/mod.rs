//! An FC 3.0 simulator for tests and for trying the `fc` runtime on a laptop
//! (`qingting fc-sim --listen ADDR`). It checks what FC checks (headers, credential, date
//! window, body hash, signature over the named headers, nonce reuse; required fields, name
//! grammars, enum values, ranges), answers with FC's JSON shapes and error codes, keeps
//! state, moves new functions from `Pending` to `Active` and updates from `InProgress` to
//! `Successful` after a delay (longer when there is an image to cache), and can
//! inject latency, throttling and failures ([`SimControl`]).

mod ops;
mod reply;
mod verify;

use axum::{
    body::Bytes,
    extract::{Request, State as AxState},
    http::Method,
    response::Response,
    Router,
};
use reply::Reject;
use serde_json::Value;
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub region: String,
    pub account_id: String,
    /// How long a created function stays `Pending` (FC caches its image), and an update that
    /// changes the image stays `InProgress`.
    pub pending: Duration,
    /// How long any other update stays `InProgress` (its configuration rolling out).
    pub pending_update: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            access_key_id: "sim-key".into(),
            access_key_secret: "sim-secret".into(),
            region: "cn-hangzhou".into(),
            account_id: "1234567890".into(),
            pending: Duration::from_millis(300),
            pending_update: Duration::from_millis(100),
        }
    }
}

/// Knobs tests turn while the simulator runs, and what it saw.
#[derive(Debug, Default)]
pub struct SimControl {
    /// Added before every answer.
    pub latency_ms: AtomicU64,
    /// The next N signed requests answer `429 Throttling.User`.
    pub throttle_next: AtomicU32,
    /// One-shot failures by action: (status, code).
    pub fail_next: Mutex<HashMap<String, (u16, String)>>,
    /// Every accepted action, in order (also those answered with an injected failure).
    pub calls: Mutex<Vec<String>>,
    /// Requests refused by the checks (code), in order.
    pub refused: Mutex<Vec<String>>,
}

impl SimControl {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn count(&self, action: &str) -> usize {
        self.calls().iter().filter(|a| *a == action).count()
    }

    pub fn fail(&self, action: &str, status: u16, code: &str) {
        self.fail_next
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(action.into(), (status, code.into()));
    }
}

pub struct State {
    functions: HashMap<String, ops::FunctionRecord>,
    domains: HashMap<String, Value>,
    nonces: HashSet<String>,
    pending: Duration,
    pending_update: Duration,
    region: String,
    account: String,
}

#[derive(Clone)]
struct Sim {
    cfg: Arc<SimConfig>,
    control: Arc<SimControl>,
    state: Arc<Mutex<State>>,
}

/// The simulator as a router (serve it on any listener).
pub fn router(cfg: SimConfig, control: Arc<SimControl>) -> Router {
    let state = State {
        functions: HashMap::new(),
        domains: HashMap::new(),
        nonces: HashSet::new(),
        pending: cfg.pending,
        pending_update: cfg.pending_update,
        region: cfg.region.clone(),
        account: cfg.account_id.clone(),
    };
    Router::new().fallback(handle).with_state(Sim {
        cfg: Arc::new(cfg),
        control,
        state: Arc::new(Mutex::new(state)),
    })
}

/// Serves the simulator until the listener closes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: SimConfig,
    control: Arc<SimControl>,
) -> std::io::Result<()> {
    axum::serve(listener, router(cfg, control)).await
}

async fn handle(AxState(sim): AxState<Sim>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 8 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return reply::error(&Reject::new(
                413,
                "EntityTooLarge",
                "the request body is too large".into(),
            ))
        }
    };
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in parts.headers.iter() {
        if let Ok(v) = v.to_str() {
            headers
                .entry(k.as_str().to_ascii_lowercase())
                .or_default()
                .push(v.to_string());
        }
    }
    let latency = sim.control.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let checked = match verify::check(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &headers,
        &body,
        &sim.cfg.access_key_id,
        &sim.cfg.access_key_secret,
    ) {
        Ok(c) => c,
        Err(r) => {
            sim.control
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r.code.clone());
            return reply::error(&r);
        }
    };
    {
        let mut st = sim.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.nonces.insert(checked.nonce.clone()) {
            sim.control
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push("SignatureNonceUsed".into());
            return reply::error(&Reject::new(
                403,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.".into(),
            ));
        }
    }
    let Some((action, route)) = route(&parts.method, parts.uri.path()) else {
        return reply::error(&Reject::new(
            404,
            "PathNotSupported",
            format!("{} {} is not supported", parts.method, parts.uri.path()),
        ));
    };
    if checked.action != action {
        return reply::error(&Reject::new(
            400,
            "InvalidAction",
            format!("x-acs-action {} does not match {action}", checked.action),
        ));
    }
    sim.control
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(action.to_string());
    if sim.control.throttle_next.load(Ordering::SeqCst) > 0 {
        sim.control.throttle_next.fetch_sub(1, Ordering::SeqCst);
        return reply::error(&Reject::new(
            429,
            "Throttling.User",
            "Request was denied due to user flow control.".into(),
        ));
    }
    if let Some((status, code)) = sim
        .control
        .fail_next
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(action)
    {
        return reply::error(&Reject::new(
            status,
            &code,
            format!("injected failure of {action}"),
        ));
    }
    let json: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return reply::error(&Reject::invalid("the request body is not valid JSON")),
        }
    };
    let mut st = sim.state.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = match route {
        Route::Functions => st.create_function(&json),
        Route::Function(f) => match parts.method {
            Method::GET => st.get_function(&f),
            Method::PUT => st.update_function(&f, &json),
            _ => st.delete_function(&f),
        },
        Route::Triggers(f) => match parts.method {
            Method::POST => st.create_trigger(&f, &json),
            _ => st.list_triggers(&f),
        },
        Route::Trigger(f, t) => st.delete_trigger(&f, &t),
        Route::Domains => st.create_custom_domain(&json),
        Route::Domain(d) => match parts.method {
            Method::GET => st.get_custom_domain(&d),
            _ => st.delete_custom_domain(&d),
        },
        Route::Provision(f) => match parts.method {
            Method::PUT => st.put_provision_config(&f, &json),
            Method::GET => st.get_provision_config(&f),
            _ => st.delete_provision_config(&f),
        },
        Route::Instances(f) => st.list_instances(&f),
        Route::Invocation(f, disable) => st.set_invocation(&f, disable, &json),
    };
    match outcome {
        Ok((status, body)) => reply::ok(status, body),
        Err(r) => reply::error(&r),
    }
}

enum Route {
    Functions,
    Function(String),
    Triggers(String),
    Trigger(String, String),
    Domains,
    Domain(String),
    Provision(String),
    Instances(String),
    Invocation(String, bool),
}

fn route(method: &Method, path: &str) -> Option<(&'static str, Route)> {
    let rest = path.strip_prefix("/2023-03-30/")?;
    let seg: Vec<String> = rest
        .split('/')
        .map(|s| verify::percent_decode(s, false))
        .collect();
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let m = method.as_str();
    Some(match (m, s.as_slice()) {
        ("POST", ["functions"]) => ("CreateFunction", Route::Functions),
        ("GET", ["functions", f]) => ("GetFunction", Route::Function(f.to_string())),
        ("PUT", ["functions", f]) => ("UpdateFunction", Route::Function(f.to_string())),
        ("DELETE", ["functions", f]) => ("DeleteFunction", Route::Function(f.to_string())),
        ("POST", ["functions", f, "triggers"]) => ("CreateTrigger", Route::Triggers(f.to_string())),
        ("GET", ["functions", f, "triggers"]) => ("ListTriggers", Route::Triggers(f.to_string())),
        ("DELETE", ["functions", f, "triggers", t]) => (
            "DeleteTrigger",
            Route::Trigger(f.to_string(), t.to_string()),
        ),
        ("POST", ["custom-domains"]) => ("CreateCustomDomain", Route::Domains),
        ("GET", ["custom-domains", d]) => ("GetCustomDomain", Route::Domain(d.to_string())),
        ("DELETE", ["custom-domains", d]) => ("DeleteCustomDomain", Route::Domain(d.to_string())),
        ("PUT", ["functions", f, "provision-config"]) => {
            ("PutProvisionConfig", Route::Provision(f.to_string()))
        }
        ("GET", ["functions", f, "provision-config"]) => {
            ("GetProvisionConfig", Route::Provision(f.to_string()))
        }
        ("DELETE", ["functions", f, "provision-config"]) => {
            ("DeleteProvisionConfig", Route::Provision(f.to_string()))
        }
        ("GET", ["functions", f, "instances"]) => {
            ("ListInstances", Route::Instances(f.to_string()))
        }
        ("POST", ["functions", f, "invoke", "disable"]) => (
            "DisableFunctionInvocation",
            Route::Invocation(f.to_string(), true),
        ),
        ("POST", ["functions", f, "invoke", "enable"]) => (
            "EnableFunctionInvocation",
            Route::Invocation(f.to_string(), false),
        ),
        _ => return None,
    })
}
