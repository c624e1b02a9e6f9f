//! What operators see over HTTP, on SQLite, Postgres and MariaDB: the audit log of sign-ins
//! (with the client address) and workspace requests, a suspension that ends a signed-in
//! member's dashboard and workspace access at once, and Prometheus `/metrics` (its token, its
//! separate address, its format, and a start histogram that moves).

use qingting_core::{
    accounts,
    audit::{self, Actor, Entry, Filter},
    testing::{sandbox_available, Backend, TestDatabase},
};
mod common;

use common::{register, Browser};
use reqwest::{header, Client, StatusCode};
use std::{collections::BTreeMap, time::Duration};

qingting_core::on_every_backend!(
    sign_ins_and_workspace_requests_are_audited_with_the_address,
    a_suspended_member_loses_the_dashboard_and_the_workspace_at_once,
    metrics_need_their_token_parse_and_follow_a_start,
    a_full_host_queues_a_create_and_starts_it_when_room_frees_up,
);

const METRICS_TOKEN: &str = "metrics-token-for-tests";

struct Harness {
    port: u16,
    client: Client,
    server: common::TestServer,
    metrics_port: u16,
    tdb: TestDatabase,
}

impl Harness {
    fn dash(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    async fn log(&self) -> Vec<Entry> {
        let mut all = Vec::new();
        audit::for_each(&self.server.state().db, &Filter::default(), |e| {
            all.push(e);
            Ok(())
        })
        .await
        .unwrap();
        all
    }

    async fn stop(self) {
        drop(self.server);
        self.tdb.drop_database().await;
    }
}

async fn start(backend: Backend) -> Option<Harness> {
    start_with(backend, |_| {}).await
}

async fn start_with(
    backend: Backend,
    tweak: impl FnOnce(&mut qingting_core::Config),
) -> Option<Harness> {
    let tdb = TestDatabase::create(backend).await?;
    let metrics_port = qingting_core::testing::free_port();
    let url = tdb.url.clone();
    let server = common::start_server(|config| {
        config.database_url = Some(url);
        config.metrics.token = Some(METRICS_TOKEN.into());
        config.metrics.listen = Some(format!("127.0.0.1:{metrics_port}"));
        tweak(config);
    })
    .await;
    let port = server.port;
    Some(Harness {
        port,
        client: common::client(port, &["bob-demo.localhost"]),
        server,
        metrics_port,
        tdb,
    })
}

async fn sign_ins_and_workspace_requests_are_audited_with_the_address(backend: Backend) {
    if !sandbox_available() {
        return;
    }
    let Some(h) = start(backend).await else {
        return;
    };
    let mut alice = register(&h.client, h.port, "alice").await;
    let (s, body) = alice
        .api(
            "/api/login",
            &[("username", "alice"), ("password", "wrong horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, _) = alice
        .api(
            "/api/login",
            &[("username", "alice"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    alice.create_running("demo").await;
    let (s, _) = alice.api("/api/logout", &[]).await;
    assert_eq!(s, StatusCode::OK);

    let log: Vec<(String, String, String, Option<String>)> = h
        .log()
        .await
        .into_iter()
        .map(|e| (e.action, e.actor, e.outcome, e.address))
        .collect();
    let local = Some("127.0.0.1".to_string());
    let row = |a: &str, who: &str, outcome: &str| {
        (
            a.to_string(),
            who.to_string(),
            outcome.to_string(),
            local.clone(),
        )
    };
    assert_eq!(
        log,
        [
            row("sign_in", "anonymous", "refused"),
            row("sign_in", "alice", "ok"),
            row("workspace_create", "alice", "ok"),
            row("sign_out", "alice", "ok"),
        ]
    );
    h.stop().await;
}

async fn a_suspended_member_loses_the_dashboard_and_the_workspace_at_once(backend: Backend) {
    if !sandbox_available() {
        return;
    }
    let Some(h) = start(backend).await else {
        return;
    };
    let _admin = register(&h.client, h.port, "alice").await;
    let mut bob = register(&h.client, h.port, "bob").await;
    bob.create_running("demo").await;
    let ws = format!("http://bob-demo.localhost:{}/", h.port);
    let (res, _) = bob.follow(&ws).await;
    assert_eq!(res.status(), StatusCode::OK, "bob's IDE answers");
    let cookie = bob.cookie_header(&ws).unwrap();

    let db = &h.server.state().db;
    let alice = accounts::find_by_username(db, "alice")
        .await
        .unwrap()
        .unwrap();
    let bob_account = accounts::find_by_username(db, "bob")
        .await
        .unwrap()
        .unwrap();
    accounts::set_suspended(db, &Actor::user(&alice, None), bob_account.id, true)
        .await
        .unwrap();

    // Within a second: the dashboard has no user, and the workspace sends him away.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let (me, gone) = loop {
        let (_, me) = bob.api("/api/me", &[]).await;
        let res = h
            .client
            .get(&ws)
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let gone = res.status() == StatusCode::FOUND;
        if (me.is_null() && gone) || std::time::Instant::now() > deadline {
            break (me, gone);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        me.is_null() && gone,
        "still in: me={me} workspace_gone={gone}"
    );
    // The right password says why; a wrong one says nothing more.
    let mut again = Browser::new(&h.client, h.port);
    let (s, body) = again
        .api(
            "/api/login",
            &[("username", "bob"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body, "Suspended",
        "the login form shows the suspension's message"
    );
    let (s, _) = again
        .api(
            "/api/login",
            &[("username", "bob"), ("password", "wrong horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let suspended = h
        .log()
        .await
        .into_iter()
        .find(|e| e.action == "suspend")
        .unwrap();
    assert_eq!(
        (suspended.actor.as_str(), suspended.subject.as_deref()),
        ("alice", Some("bob"))
    );
    h.stop().await;
}

async fn metrics_need_their_token_parse_and_follow_a_start(backend: Backend) {
    if !sandbox_available() {
        return;
    }
    let Some(h) = start(backend).await else {
        return;
    };
    let url = h.dash("/metrics");
    for auth in [None, Some("Bearer wrong-token-of-some-length")] {
        let mut req = h.client.get(&url);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // A cookie is no token.
    let mut alice = register(&h.client, h.port, "alice").await;
    let res = alice.get(&url).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let before = scrape(&h).await;
    let started = |m: &Samples| {
        m.get("qingting_workspace_start_duration_seconds_count{template=\"test-ide\",outcome=\"running\"}")
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(started(&before), 0.0);
    let (s, _) = alice
        .api(
            "/api/login",
            &[("username", "alice"), ("password", "not her password")],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut bob = register(&h.client, h.port, "bob").await;
    bob.create_running("demo").await;
    let (res, _) = bob
        .follow(&format!("http://bob-demo.localhost:{}/", h.port))
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let after = scrape(&h).await;
    assert_eq!(started(&after), 1.0, "the start histogram moved");
    assert_eq!(
        after["qingting_workspaces{template=\"test-ide\",state=\"running\"}"],
        1.0
    );
    assert_eq!(
        after["qingting_sign_in_failures_total{reason=\"bad_credentials\"}"],
        1.0
    );
    assert!(after["qingting_gateway_request_duration_seconds_count{class=\"2xx\"}"] >= 1.0);
    assert!(after["qingting_db_pool_max_connections"] >= 1.0);
    assert_eq!(after["qingting_database_up"], 1.0);
    h.stop().await;
}

/// Metric samples by series (`name{labels}`).
type Samples = BTreeMap<String, f64>;

/// Scrapes both ways (token on the main address, the separate address without one), checks
/// the text (and with `promtool` when it is installed) and returns the main one's samples.
async fn scrape(h: &Harness) -> Samples {
    let res = h
        .client
        .get(h.dash("/metrics"))
        .header(header::AUTHORIZATION, format!("Bearer {METRICS_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let separate = h
        .client
        .get(format!("http://127.0.0.1:{}/metrics", h.metrics_port))
        .send()
        .await
        .unwrap();
    assert_eq!(separate.status(), StatusCode::OK);
    assert!(separate
        .text()
        .await
        .unwrap()
        .contains("qingting_build_info"));
    promtool_check(&text);
    common::metrics_text::parse(&text)
}

/// `promtool check metrics` (Debian's `prometheus` package), required when
/// `QINGTING_TEST_REQUIRE_PROMTOOL` is set (the test command installs it).
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("QINGTING_TEST_REQUIRE_PROMTOOL").is_none(),
                "promtool is required here: {e}"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {said}\n{text}");
    assert!(
        said.trim().is_empty(),
        "promtool found problems: {said}\n{text}"
    );
}

async fn a_full_host_queues_a_create_and_starts_it_when_room_frees_up(backend: Backend) {
    if !sandbox_available() {
        return;
    }
    let Some(h) = start_with(backend, |c| c.workspaces.max_running = 1).await else {
        return;
    };
    let mut alice = register(&h.client, h.port, "alice").await;
    let mut bob = register(&h.client, h.port, "bob").await;
    let first = alice.create_running("demo").await;
    let (s, row) = bob
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "test-ide")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    assert_eq!(row["state"], "queued", "{row}");
    assert_eq!(row["queue_position"], 1);
    assert_eq!(row["controls"]["can_cancel"], true);
    // Alice stops hers: the leader starts bob's within a few seconds, by itself.
    let id = first["id"].as_i64().unwrap().to_string();
    let (s, _) = alice
        .api("/api/workspaces/action", &[("id", &id), ("action", "stop")])
        .await;
    assert_eq!(s, StatusCode::OK);
    let running = bob.wait_state("demo", "running").await;
    assert_eq!(running["queue_position"], serde_json::Value::Null);
    // Now alice waits; she cancels.
    let (s, again) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &id), ("action", "start")],
        )
        .await;
    assert_eq!(
        (s, again["state"].as_str()),
        (StatusCode::OK, Some("queued"))
    );
    let (_, cancelled) = alice
        .api("/api/workspaces/action", &[("id", &id), ("action", "stop")])
        .await;
    assert_eq!(cancelled["state"], "stopped");
    h.stop().await;
}
