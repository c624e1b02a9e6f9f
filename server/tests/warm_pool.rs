//! The warm pool with the real binary, the local runtime and sandboxed stand-in IDEs: a create
//! hands over an IDE that was already running (same process, no user's name in it), the pool
//! refills, pooled IDEs are adopted after the server is killed, and a server started without
//! the pool removes them.

mod common;

use common::register;
use qingting_core::testing::{free_port, install_test_ide, sandbox_available, IdeReaper};
use reqwest::{header, StatusCode};
use serde_json::Value;
use std::{
    collections::BTreeSet,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_qingting");

fn write_config(data: &Path, uid_base: u32, pool: &str) {
    std::fs::write(
        data.join("config.toml"),
        format!(
            "templates_file = \"{}\"\n[workspaces]\npool = [{pool}]\n[workspaces.local]\nuid_base = {uid_base}\n",
            data.join("templates.toml").display(),
        ),
    )
    .unwrap();
}

/// The server process, killed if a failed assertion leaves it behind.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_server(data: &Path, port: u16) -> Server {
    Server(Some(
        Command::new(BIN)
            .args([
                "--config",
                &data.join("config.toml").display().to_string(),
                "serve",
            ])
            .env("QINGTING_DATA_DIR", data)
            .env_remove("QINGTING_EDITORS_DIR")
            .env_remove("QINGTING_WORKSPACES_POOL")
            .env("QINGTING_LISTEN", format!("127.0.0.1:{port}"))
            .env("QINGTING_PUBLIC_URL", format!("http://localhost:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    ))
}

/// `/healthz`'s pool entry of the test template, once the server answers.
async fn pool(client: &reqwest::Client, port: u16) -> Option<Value> {
    let r = client
        .get(format!("http://localhost:{port}/healthz"))
        .send()
        .await
        .ok()?;
    let body: Value = r.json().await.ok()?;
    Some(body["pool"].get(0).cloned().unwrap_or(Value::Null))
}

async fn wait_pool_ready(client: &reqwest::Client, port: u16, ready: u64) {
    for _ in 0..300 {
        if let Some(p) = pool(client, port).await {
            if p["ready"] == ready && p["starting"] == 0 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the pool never had {ready} ready: {:?}",
        pool(client, port).await
    );
}

/// The workspaces whose IDE runs (by their pid files), with the IDE's pid.
fn running(data: &Path) -> BTreeSet<(i64, i32)> {
    std::fs::read_dir(data.join("run"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let id = name.strip_suffix(".pid")?.parse().ok()?;
            let text = std::fs::read_to_string(data.join("run").join(&name)).ok()?;
            Some((id, text.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

fn stop(mut server: Server) {
    let mut child = server.0.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_hands_over_a_running_sandboxed_ide_and_the_pool_survives_restarts() {
    if !sandbox_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let _reaper = IdeReaper(data.to_path_buf());
    install_test_ide(&data.join("editors"));
    std::fs::write(data.join("templates.toml"), common::TEST_TEMPLATES).unwrap();
    let uid_base = qingting_core::testing::unique_uid_base();
    write_config(data, uid_base, "\"test-ide=2\"");
    let port = free_port();
    let client = common::client(port, &["alice-demo.localhost"]);
    let server = spawn_server(data, port);
    wait_pool_ready(&client, port, 2).await;
    let pooled = running(data);
    assert_eq!(pooled.len(), 2);

    let mut alice = register(&client, port, "alice").await;
    let (s, row) = alice
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "test-ide")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    assert_eq!(row["state"], "running", "answered running: {row}");
    let id = row["id"].as_i64().unwrap();
    let (_, pid) = *pooled
        .iter()
        .find(|(ws, _)| *ws == id)
        .expect("the workspace is one of the pooled IDEs");
    // The IDE that was started ahead carries nobody's name.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    for what in [&environ, &cmdline] {
        assert!(!String::from_utf8_lossy(what).contains("alice"));
    }

    // It is alice's now: opened through the gateway at once, her files in it.
    let (res, _) = alice
        .follow(&alice.dash("/open/alice/demo?next=/healthz"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let url = format!("http://alice-demo.localhost:{port}/files/note.txt");
    let cookie = alice.cookie_header(&url).unwrap();
    let put = client
        .put(&url)
        .header(header::COOKIE, &cookie)
        .body("mine")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert!(data
        .join(format!("workspaces/{id}/files/note.txt"))
        .exists());
    // Nobody else sees the pool; it refills behind alice.
    let mut bob = register(&client, port, "bob").await;
    let (_, list) = bob.api("/api/workspaces/list", &[]).await;
    assert_eq!(list["workspaces"], serde_json::json!([]));
    wait_pool_ready(&client, port, 2).await;
    let before = running(data);
    assert_eq!(before.len(), 3);

    // Killed hard and started again: every IDE is adopted, none started anew.
    drop(server);
    let server = spawn_server(data, port);
    wait_pool_ready(&client, port, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(running(data), before, "adopted, not restarted");
    let r = client
        .get(&url)
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "mine");

    // Without the pool: its IDEs go, alice's stays.
    stop(server);
    write_config(data, uid_base, "");
    let server = spawn_server(data, port);
    let mut gone = false;
    for _ in 0..200 {
        if running(data).iter().map(|(ws, _)| *ws).collect::<Vec<_>>() == [id] {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "pooled IDEs left: {:?}", running(data));
    assert_eq!(pool(&client, port).await, Some(Value::Null));

    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &id.to_string()), ("action", "delete")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..100 {
        if running(data).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(server);
}
