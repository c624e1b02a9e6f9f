//! The `qingting` binary killed with SIGKILL and started again: running workspaces are
//! adopted (same IDE process, files and workspace cookie still good), an IDE killed with
//! SIGKILL comes back by itself, and what belongs to no workspace (a stray IDE process, the
//! directory of a deleted workspace) is cleaned up.

mod common;

use common::{register, Browser};
use qingting_core::testing::{free_port, install_test_ide, sandbox_available, IdeReaper};
use reqwest::{header, StatusCode};
use std::{
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_qingting");

fn spawn_server(data: &Path, port: u16) -> Child {
    Command::new(BIN)
        .args([
            "--config",
            &data.join("config.toml").display().to_string(),
            "serve",
        ])
        .env("QINGTING_DATA_DIR", data)
        // The stand-in IDE lives in the data dir's editors/, not the machine's.
        .env_remove("QINGTING_EDITORS_DIR")
        .env("QINGTING_LISTEN", format!("127.0.0.1:{port}"))
        .env("QINGTING_PUBLIC_URL", format!("http://localhost:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &reqwest::Client, port: u16) {
    // Up to 30 s: start-up includes adopting and recovering workspaces.
    for _ in 0..600 {
        if let Ok(r) = client
            .get(format!("http://localhost:{port}/healthz"))
            .send()
            .await
        {
            if r.status() == StatusCode::OK {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not come up");
}

fn pid_of(data: &Path, id: i64) -> i32 {
    let text = std::fs::read_to_string(data.join(format!("run/{id}.pid"))).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_survive_server_and_ide_crashes() {
    if !sandbox_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let _reaper = IdeReaper(data.to_path_buf());
    install_test_ide(&data.join("editors"));
    std::fs::write(data.join("templates.toml"), common::TEST_TEMPLATES).unwrap();
    let port = free_port();
    std::fs::write(
        data.join("config.toml"),
        format!(
            "templates_file = \"{}\"\n[workspaces.local]\nuid_base = {}\n",
            data.join("templates.toml").display(),
            qingting_core::testing::unique_uid_base()
        ),
    )
    .unwrap();
    let client = common::client(port, &["alice-demo.localhost"]);
    let mut server = spawn_server(data, port);
    wait_healthy(&client, port).await;

    let mut alice = register(&client, port, "alice").await;
    alice
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "test-ide")],
        )
        .await;
    let ws = alice.wait_state("demo", "running").await;
    let id = ws["id"].as_i64().unwrap();
    let (res, _) = alice
        .follow(&alice.dash("/open/alice/demo?next=/healthz"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let ws_url = |p: &str| format!("http://alice-demo.localhost:{port}{p}");
    let cookie = alice.cookie_header(&ws_url("/")).unwrap();
    let put = client
        .put(ws_url("/files/note.txt"))
        .header(header::COOKIE, &cookie)
        .body("survives")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let ide = pid_of(data, id);

    // The server dies hard. A stray IDE and a deleted workspace's files are left around too.
    server.kill().unwrap();
    server.wait().unwrap();
    let mut stray = Command::new("sleep")
        .arg("600")
        .process_group(0)
        .spawn()
        .unwrap();
    let stray_pid = stray.id() as i32;
    let start = std::fs::read_to_string(format!("/proc/{stray_pid}/stat")).unwrap();
    let start: u64 = start
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    std::fs::write(data.join("run/999.pid"), format!("{stray_pid} {start}\n")).unwrap();
    std::fs::create_dir_all(data.join("workspaces/999/files")).unwrap();
    assert!(alive(ide), "the IDE outlives the server");

    let mut server = spawn_server(data, port);
    wait_healthy(&client, port).await;
    alice.wait_state("demo", "running").await;
    assert_eq!(pid_of(data, id), ide, "adopted, not restarted");
    let body = client
        .get(ws_url("/files/note.txt"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        body.status(),
        StatusCode::OK,
        "the workspace cookie still works"
    );
    assert_eq!(body.text().await.unwrap(), "survives");
    let _ = stray.wait();
    assert!(!alive(stray_pid), "the stray IDE was stopped");
    assert!(!data.join("run/999.pid").exists() && !data.join("workspaces/999").exists());

    // The IDE dies hard: the adopted workspace's supervisor brings it back.
    unsafe { libc::kill(-ide, libc::SIGKILL) };
    let mut back = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = client
            .get(ws_url("/files/note.txt"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK
            && std::fs::read_to_string(data.join(format!("run/{id}.pid"))).is_ok()
            && pid_of(data, id) != ide
        {
            assert_eq!(r.text().await.unwrap(), "survives");
            back = true;
            break;
        }
    }
    assert!(back, "the IDE came back by itself");
    alice.wait_state("demo", "running").await;

    // Leave nothing running.
    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &id.to_string()), ("action", "delete")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..100 {
        if !data.join(format!("workspaces/{id}")).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!data.join(format!("workspaces/{id}")).exists());
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    server.wait().unwrap();
    let _ = Browser::new(&client, port);
}
