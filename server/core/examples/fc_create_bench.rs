//! Create time of an `fc` workspace against the FC simulator with latency injected into every
//! API call, and the API calls on the critical path (bench/fc-create.sh runs this).
//!
//! usage: fc_create_bench [LATENCY_MS=50] [RUNS=10] [PENDING_MS=0]

use qingting_core::{
    accounts,
    config::{FcProtocol, FcRuntimeConfig},
    store, templates,
    workspaces::{
        fc::{FcRuntime, FcSite},
        WorkspaceLimits, WorkspaceService, WorkspaceState,
    },
};
use qingting_fc::{
    sim::{self, SimConfig, SimControl},
    Credentials, FcClient,
};
use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let latency = *args.first().unwrap_or(&50);
    let runs = *args.get(1).unwrap_or(&10) as usize;
    let pending = *args.get(2).unwrap_or(&0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let control = Arc::new(SimControl::default());
    control.latency_ms.store(latency, Ordering::SeqCst);
    let simcfg = SimConfig {
        pending: Duration::from_millis(pending),
        ..SimConfig::default()
    };
    tokio::spawn(sim::serve(listener, simcfg.clone(), control.clone()));

    let dir = tempfile_dir();
    let db = store::connect(&format!("sqlite://{dir}/bench.db?mode=rwc"))
        .await
        .unwrap();
    store::migrate(&db).await.unwrap();
    let alice = accounts::register(&db, "bench", "correct horse battery")
        .await
        .unwrap();
    let client = FcClient::new(
        &format!("http://{addr}"),
        Credentials {
            access_key_id: simcfg.access_key_id.clone(),
            access_key_secret: simcfg.access_key_secret.clone(),
            security_token: None,
        },
    );
    let cfg = FcRuntimeConfig {
        protocol: FcProtocol::Http,
        ..FcRuntimeConfig::default()
    };
    let site = FcSite {
        domain: "ws.example.com".into(),
        dashboard_url: "https://studio.example.com".into(),
        token_public_key: "00".repeat(32),
        cert: None,
    };
    let mut rt = FcRuntime::new(client, cfg, site);
    rt.poll = Duration::from_millis(20);
    let limits = WorkspaceLimits {
        max_per_user: 1000,
        max_running_per_user: 1000,
    };
    let svc = WorkspaceService::new(db, Arc::new(rt), templates::builtin(), limits, None);

    let mut times = Vec::new();
    let mut calls_per_create = Vec::new();
    for i in 0..runs {
        let before = control.calls().len();
        let t = Instant::now();
        let ws = svc
            .create(&alice, &format!("b{i}"), "jupyter-python")
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(ws.state, WorkspaceState::Running, "{:?}", ws.reason);
        calls_per_create.push(control.calls()[before..].to_vec());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let calls = &calls_per_create[0];
    // Serial round trips before waiting for readiness: CreateFunction, then the concurrent pair.
    let before_wait: Vec<&String> = calls.iter().take_while(|c| *c != "GetFunction").collect();
    println!("FC simulator, {latency} ms injected per API call, function Pending for {pending} ms, {runs} creates");
    println!(
        "create -> running: p50 {:.0} ms, p95 {:.0} ms, min {:.0} ms, max {:.0} ms",
        p(0.5),
        p(0.95),
        times[0],
        times[times.len() - 1]
    );
    println!(
        "API calls per create: {} ({})",
        calls.len(),
        calls.join(", ")
    );
    println!(
        "before waiting for readiness: {} calls in 2 serial round trips ({} then {} concurrently)",
        before_wait.len(),
        before_wait[0],
        before_wait[1..]
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    );
    println!(
        "lower bound at this latency: {} ms for those two round trips",
        2 * latency
    );
}

fn tempfile_dir() -> String {
    let d = std::env::temp_dir().join(format!("qingting-fc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.display().to_string()
}
