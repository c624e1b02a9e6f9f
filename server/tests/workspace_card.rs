//! What a running workspace's card tells its owner beyond its state: its memory, CPU and
//! disk, and when idle stop will take it, with "Keep running". Work inside the workspace
//! (CPU use with nobody connected) keeps it running; idleness stops it.

use qingting_core::testing::sandbox_available;
mod common;

use common::{register, Browser};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn card(b: &mut Browser) -> Value {
    let (s, page) = b.api("/api/workspaces/list", &[]).await;
    assert_eq!(s, StatusCode::OK);
    page["workspaces"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_shows_use_and_idle_stop_and_work_keeps_a_workspace_running() {
    if !sandbox_available() {
        return;
    }
    // Idle stop after 10 s: the countdown shows from 5 s, which leaves a loaded machine time to
    // see it and press "Keep running" before the stop.
    let server = common::start_server(|c| c.workspaces.idle_stop_secs = 10).await;
    let port = server.port;
    let client = common::client(port, &["alice-demo.localhost"]);
    let mut alice = register(&client, port, "alice").await;
    let row = alice.create_running("demo").await;
    let id = row["id"].to_string();

    let c = card(&mut alice).await;
    let usage = &c["usage"];
    assert!(usage["memory_bytes"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(usage["memory_limit_bytes"], 256u64 << 20);

    // Left alone for half its idle time: the card counts down, and "Keep running" resets it.
    let mut c = card(&mut alice).await;
    let t0 = Instant::now();
    while c["idle_stop_in_minutes"].is_null() && t0.elapsed() < Duration::from_secs(9) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c = card(&mut alice).await;
    }
    assert_eq!(c["idle_stop_in_minutes"], 1, "{c}");
    let (s, kept) = alice
        .api("/api/workspaces/keep-running", &[("id", &id)])
        .await;
    assert_eq!(s, StatusCode::OK, "{kept}");
    assert!(kept["idle_stop_in_minutes"].is_null(), "{kept}");
    let (s, _) = alice
        .api("/api/workspaces/keep-running", &[("id", "999")])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = alice
        .api("/api/workspaces/keep-running", &[("id", "x")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A build with nobody connected: sixteen seconds of CPU. It outlives the idle time.
    alice.follow(&alice.dash("/open/alice/demo?next=/")).await;
    let res = alice
        .get(&format!(
            "http://alice-demo.localhost:{port}/burn?secs=16&background=1"
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(13)).await;
    let c = card(&mut alice).await;
    assert_eq!(c["state"], "running", "stopped while working: {c}");
    assert!(c["usage"]["cpu_percent"].as_u64().unwrap() > 10, "{c}");

    // Once the work ends, idleness stops it, and says why.
    let c = alice.wait_state("demo", "stopped").await;
    assert!(
        c["reason"].as_str().unwrap().contains("without activity"),
        "{c}"
    );
    assert!(c["usage"].is_null() && c["idle_stop_in_minutes"].is_null());
}
