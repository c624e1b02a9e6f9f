//! Create time of an `fc` workspace against the FC simulator with latency injected into every
//! API call: a new function (cold) and one created ahead by the pool (`workspaces.pool`), in
//! one run, with the API calls on each critical path (bench/fc-create.sh runs this).
//!
//! usage: fc_create_bench [LATENCY_MS=50] [RUNS=10] [PENDING_MS=0] [UPDATE_MS=0]
//! PENDING_MS: how long a new function stays `Pending` (FC caching its image);
//! UPDATE_MS: how long an update that keeps the image stays `InProgress`.

use qingting_core::{
    accounts::{self, Account},
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

const TEMPLATE: &str = "jupyter-python";

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let latency = *args.first().unwrap_or(&50);
    let runs = *args.get(1).unwrap_or(&10) as usize;
    let pending = *args.get(2).unwrap_or(&0);
    let update = *args.get(3).unwrap_or(&0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let control = Arc::new(SimControl::default());
    control.latency_ms.store(latency, Ordering::SeqCst);
    let simcfg = SimConfig {
        pending: Duration::from_millis(pending),
        pending_update: Duration::from_millis(update),
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
    let service = |pool: Vec<(String, u32)>| {
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
        WorkspaceService::new(db.clone(), Arc::new(rt), templates::builtin(), limits, None)
            .with_pool(pool)
            .unwrap()
    };

    let cold = service(Vec::new());
    let cold = measure(&cold, &alice, &control, runs, "cold", |_| async {}).await;
    let pooled = service(vec![(TEMPLATE.into(), 1)]);
    let pooled = measure(
        &pooled,
        &alice,
        &control,
        runs,
        "pooled",
        |svc| async move {
            svc.fill_pool().await.unwrap();
        },
    )
    .await;

    println!(
        "FC simulator: {latency} ms per API call; a new function Pending for {pending} ms \
         (its image cached), an update InProgress for {update} ms; {runs} creates each"
    );
    println!("| create -> running | p50 | p95 | min | max | API calls on the critical path |");
    println!("|---|---|---|---|---|---|");
    for (what, m) in [
        ("a new function (cold)", &cold),
        ("from the pool (function created ahead)", &pooled),
    ] {
        println!(
            "| {what} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
            m.p(0.5),
            m.p(0.95),
            m.times[0],
            m.times[m.times.len() - 1],
            m.calls.join(", ")
        );
    }
}

struct Measured {
    /// Milliseconds, ascending.
    times: Vec<f64>,
    /// The first create's API calls, in order.
    calls: Vec<String>,
}

impl Measured {
    fn p(&self, q: f64) -> f64 {
        self.times[((self.times.len() - 1) as f64 * q).round() as usize]
    }
}

/// `runs` creates, each after `before` (untimed), each deleted after.
async fn measure<'a, F, Fut>(
    svc: &'a WorkspaceService,
    who: &Account,
    control: &SimControl,
    runs: usize,
    prefix: &str,
    before: F,
) -> Measured
where
    F: Fn(&'a WorkspaceService) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::new();
    let mut calls = Vec::new();
    for i in 0..runs {
        before(svc).await;
        let first = control.calls().len();
        let t = Instant::now();
        let ws = svc
            .create(who, &format!("{prefix}{i}"), TEMPLATE)
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(ws.state, WorkspaceState::Running, "{:?}", ws.reason);
        if i == 0 {
            calls = collapse(&control.calls()[first..]);
        }
        svc.delete(who, ws.id).await.unwrap();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Measured { times, calls }
}

/// Repeated polls shown once with a count (`GetFunction ×3`).
fn collapse(calls: &[String]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for c in calls {
        match out.last_mut() {
            Some((last, n)) if last == c => *n += 1,
            _ => out.push((c.clone(), 1)),
        }
    }
    out.into_iter()
        .map(|(c, n)| if n == 1 { c } else { format!("{c} ×{n}") })
        .collect()
}

fn tempfile_dir() -> String {
    let d = std::env::temp_dir().join(format!("qingting-fc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.display().to_string()
}
