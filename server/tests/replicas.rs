//! Two `qingting` processes on one Postgres (and once on MariaDB), with the `fc` runtime
//! against `qingting fc-sim`, as replicas behind a load balancer run: a change made through
//! one reaches the other's live list within a second; a token is good once whichever replica
//! redeems it; a sign-out through one ends access through the other; sign-in attempts count
//! across both; exactly one leads, and when it is killed mid-create the other finishes the
//! create.

mod common;

use common::Browser;
use qingting_core::testing::{free_port, Backend, TestDatabase};
use qingting_gateway::token::{TokenSigner, TokenVerifier};
use reqwest::{header, StatusCode};
use serde_json::Value;
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_qingting");
const FC_KEY: (&str, &str) = ("replicas-key", "replicas-secret");
/// What "at once" may take across replicas in these tests: the feed's poll and the session
/// sweep take well under a second, and the bound leaves room for a loaded test machine. It
/// still fails a change that waits for a page refresh or a cache to lapse (minutes).
const AT_ONCE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres() {
    two_replicas(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_mariadb() {
    two_replicas(Backend::MySql).await
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], log: &std::path::Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    Process(
        Command::new(BIN)
            .args(args)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", FC_KEY.0)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", FC_KEY.1)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

async fn health(client: &reqwest::Client, port: u16) -> Option<Value> {
    let res = client
        .get(format!("http://localhost:{port}/healthz"))
        .send()
        .await
        .ok()?;
    res.json().await.ok()
}

async fn wait_healthy(client: &reqwest::Client, port: u16, log: &std::path::Path) -> Value {
    for _ in 0..300 {
        if let Some(h) = health(client, port).await {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "replica on {port} never answered:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The next server-sent event's data, or `None` when the stream ended.
async fn next_event(res: &mut reqwest::Response, buf: &mut String) -> Option<String> {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                return Some(data.join("\n"));
            }
            continue;
        }
        match res.chunk().await {
            Ok(Some(bytes)) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return None,
        }
    }
}

async fn events(b: &mut Browser) -> reqwest::Response {
    let url = b.dash("/api/workspaces/events");
    let req = b
        .client
        .get(&url)
        .header(header::ACCEPT, "text/event-stream");
    let res = b.send(req, &url).await;
    assert_eq!(res.status(), StatusCode::OK);
    res
}

async fn two_replicas(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let sim_log = dir.path().join("fc-sim.log");
    // Functions stay Pending for 3 s: long enough to kill a replica mid-create.
    let _sim = spawn(
        &[
            "fc-sim",
            "--listen",
            &format!("127.0.0.1:{sim_port}"),
            "--pending-ms",
            "3000",
        ],
        &sim_log,
    );
    let (pa, pb) = (free_port(), free_port());
    let token_seed: [u8; 32] = rand::random();
    let config = format!(
        r#"database_url = "{db}"
session_secret = "{session}"

[rate_limits]
login_per_ip = {{ max = 4, per_seconds = 60 }}
login_per_account = {{ max = 100, per_seconds = 60 }}

[workspaces]
runtime = "fc"
domain = "ws.example.com"
token_secret = "{token}"
cookie_secret = "{cookie}"

[workspaces.fc]
endpoint = "http://127.0.0.1:{sim_port}"
protocol = "HTTP"
image_registry = "registry.example.com/qingting"
"#,
        db = tdb.url,
        session = hex::encode(rand::random::<[u8; 32]>().repeat(2)),
        token = hex::encode(token_seed),
        cookie = hex::encode(rand::random::<[u8; 32]>()),
    );
    let config_path = dir.path().join("replicas.toml");
    std::fs::write(&config_path, config).unwrap();
    let replica = |name: &str, port: u16| {
        let data = dir.path().join(name);
        let log = dir.path().join(format!("{name}.log"));
        let args = [
            "--config".to_string(),
            config_path.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            // Both answer for the one address behind the load balancer.
            "--public-url".into(),
            format!("http://localhost:{pa}"),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (spawn(&args, &log), log)
    };
    let client = common::client(pa, &[]);
    let client_b = common::client(pb, &[]);

    // A starts first and leads; B follows.
    let (mut a, log_a) = replica("a", pa);
    let ha = wait_healthy(&client, pa, &log_a).await;
    let (_b, log_b) = replica("b", pb);
    let hb = wait_healthy(&client_b, pb, &log_b).await;
    let feed = match backend {
        Backend::Postgres => "postgres notify",
        _ => "changes table",
    };
    assert_eq!(ha["replica"]["change_feed"], feed, "{ha}");
    assert_eq!(ha["replica"]["leads"], true, "{ha}");
    assert_eq!(hb["replica"]["leads"], false, "{hb}");
    assert_ne!(ha["replica"]["id"], hb["replica"]["id"]);

    // Signed in through A; the same cookies reach B (as through a load balancer).
    let mut on_a = common::register(&client, pa, "alice").await;
    let mut on_b = Browser::new(&client_b, pb);
    on_b.jar = on_a.jar.clone();

    // A workspace created through A shows in B's live list at once: well under a second on a
    // quiet machine (the change feed's poll); the bound is loose for a loaded one, and still
    // far below anything a page refresh or a poll by the browser would give.
    let mut stream = events(&mut on_b).await;
    let mut buf = String::new();
    let first = next_event(&mut stream, &mut buf).await.unwrap();
    assert!(!first.contains("\"demo\""), "{first}");
    let asked = Instant::now();
    let (s, row) = on_a
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "jupyter-python")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    loop {
        let ev = tokio::time::timeout(AT_ONCE, next_event(&mut stream, &mut buf))
            .await
            .expect("B's stream heard of A's change at once")
            .expect("stream open");
        if ev.contains("\"demo\"") {
            break;
        }
    }
    let seen_after = asked.elapsed();
    assert!(seen_after < AT_ONCE, "{seen_after:?}");
    eprintln!(
        "{}: B's stream showed A's create after {seen_after:?}",
        backend.name()
    );
    let ws = on_b.wait_state("demo", "running").await;
    assert_eq!(ws["name"], "demo");

    // A token minted through A is redeemed through B, and refused a second time through A.
    let open = on_a.dash("/open/alice/demo");
    let res = on_a
        .send(
            client
                .get(&open)
                .header(header::REFERER, on_a.dash("/workspaces")),
            &open,
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let token = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no token in {location}"));
    let consume = |port: u16, c: &reqwest::Client| {
        c.post(format!("http://localhost:{port}/_qingting/tokens/consume"))
            .body(token.clone())
            .send()
    };
    assert_eq!(
        consume(pb, &client_b).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        consume(pa, &client).await.unwrap().status(),
        StatusCode::CONFLICT
    );

    // The session the token carries is alive, as B tells a workspace's shell; signing out
    // through A ends it through B: B says so, and B's live stream closes, within a second.
    let verifier = TokenVerifier::new(&TokenSigner::from_seed(&token_seed).public_key()).unwrap();
    let claims = verifier
        .verify_any(&token, qingting_gateway::now_unix())
        .unwrap();
    let session = serde_json::json!([[claims.sid, claims.sub]]);
    let alive = |c: &reqwest::Client, port: u16| {
        let body = session.to_string();
        let c = c.clone();
        async move {
            let res = c
                .post(format!("http://localhost:{port}/_qingting/sessions/alive"))
                .body(body)
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(alive(&client_b, pb).await, session);
    let (s, _) = on_a.api("/api/logout", &[]).await;
    assert_eq!(s, StatusCode::OK);
    let out = Instant::now();
    assert_eq!(alive(&client_b, pb).await, serde_json::json!([]));
    let closed = tokio::time::timeout(AT_ONCE, async {
        while next_event(&mut stream, &mut buf).await.is_some() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "B's stream outlived the session by {:?}",
        out.elapsed()
    );

    // Sign-in attempts count across both (4 per address per minute).
    let mut guesser_a = Browser::new(&client, pa);
    let mut guesser_b = Browser::new(&client_b, pb);
    let login = [("username", "alice"), ("password", "not the password")];
    for i in 0..4 {
        let g = if i % 2 == 0 {
            &mut guesser_a
        } else {
            &mut guesser_b
        };
        let (s, _) = g.api("/api/login", &login).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    for g in [&mut guesser_a, &mut guesser_b] {
        let (s, body) = g.api("/api/login", &login).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }

    // Killing the leader mid-create: B takes the lead and finishes the create.
    let mut carol = common::register(&client, pa, "carol").await;
    let (s, row) = carol
        .api(
            "/api/workspaces/create",
            &[("name", "second"), ("template", "jupyter-python")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    assert_eq!(row["state"], "creating", "{row}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let killed = Instant::now();
    let mut carol_b = Browser::new(&client_b, pb);
    carol_b.jar = carol.jar.clone();
    let (_, page) = carol_b.api("/api/workspaces/list", &[]).await;
    assert_eq!(page["workspaces"][0]["state"], "creating", "{page}");
    loop {
        let (_, page) = carol_b.api("/api/workspaces/list", &[]).await;
        let state = page["workspaces"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if state == "running" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60) && state != "failed",
            "{page}\n{}",
            std::fs::read_to_string(&log_b).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = killed.elapsed();
    let hb = health(&client_b, pb).await.unwrap();
    assert_eq!(hb["replica"]["leads"], true, "{hb}");
    let log = std::fs::read_to_string(&log_b).unwrap();
    assert!(log.contains("finishing an interrupted operation"), "{log}");
    eprintln!(
        "{}: the follower finished the create {took:?} after the leader died",
        backend.name()
    );
    tdb.drop_database().await;
}
