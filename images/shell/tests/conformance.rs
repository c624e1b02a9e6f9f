//! `qingting-shell` held to the gateway conformance suite (the same cases the server's
//! in-process gateway passes), in front of the stand-in IDE, with a stand-in dashboard that
//! answers the used-token endpoint; and its lifecycle hooks, which anyone on the public
//! domain can call, doing no harm.

mod common;

use common::{free_port, stand_in_dashboard, wait_until_serving, Kill, TEST_IDE};
use qingting_gateway::{
    conformance,
    token::{BoxFuture, TokenSigner},
};
use reqwest::{header, redirect::Policy, StatusCode};
use serde_json::Value;
use std::{
    process::Command,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

struct Shell {
    _process: Kill,
    _dir: tempfile::TempDir,
    port: u16,
    client: reqwest::Client,
    dashboard: common::StandInDashboard,
    signer: Arc<TokenSigner>,
}

async fn start_shell() -> Shell {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let signer = Arc::new(TokenSigner::from_seed(&[42; 32]));
    let dashboard = stand_in_dashboard(signer.public_key()).await;
    let process = Command::new(env!("CARGO_BIN_EXE_qingting-shell"))
        .env("QINGTING_LISTEN", format!("127.0.0.1:{port}"))
        .env("QINGTING_WORKSPACE_ID", "7")
        .env("QINGTING_OWNER_ID", "3")
        .env("QINGTING_OWNER", "alice")
        .env("QINGTING_WORKSPACE", "demo")
        .env("QINGTING_DASHBOARD_URL", &dashboard.url)
        .env("QINGTING_PUBLIC_SCHEME", "http")
        .env(
            "QINGTING_TOKEN_PUBLIC_KEY",
            hex::encode(signer.public_key()),
        )
        .env("QINGTING_FILES_DIR", dir.path().join("workspace"))
        .env("QINGTING_IDE_DIR", dir.path().join("ide"))
        .env("QINGTING_RUN_DIR", dir.path().join("run"))
        .env("QINGTING_HEALTH_PATH", "/healthz")
        .args(["--", "/usr/bin/python3", TEST_IDE, "{socket}", "{files}"])
        .spawn()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("workspace")).unwrap();
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .resolve(
            "alice-demo.localhost",
            format!("127.0.0.1:{port}").parse().unwrap(),
        )
        .build()
        .unwrap();
    let base = format!("http://alice-demo.localhost:{port}");
    wait_until_serving(&client, &base).await;
    let init = client
        .post(format!("{base}/initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        init.status(),
        StatusCode::OK,
        "{}",
        init.text().await.unwrap()
    );
    Shell {
        _process: Kill(process),
        _dir: dir,
        port,
        client,
        dashboard,
        signer,
    }
}

fn minter(signer: &Arc<TokenSigner>, workspace: i64) -> conformance::Minter {
    let signer = signer.clone();
    Arc::new(move |state: Option<String>| -> BoxFuture<'static, String> {
        let token = signer.mint(
            workspace,
            3,
            "session",
            state.as_deref(),
            qingting_gateway::now_unix(),
            60,
        );
        Box::pin(async move { token })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_passes_the_conformance_suite() {
    let shell = start_shell().await;
    let subject = conformance::Subject {
        name: "qingting-shell",
        client: shell.client.clone(),
        addr: format!("127.0.0.1:{}", shell.port).parse().unwrap(),
        origin: format!("http://alice-demo.localhost:{}", shell.port),
        dashboard: shell.dashboard.url.clone(),
        user: "alice".into(),
        workspace: "demo".into(),
        mint: minter(&shell.signer, 7),
        mint_foreign: minter(&shell.signer, 8),
        made_up_origin: None,
    };
    conformance::run(&subject).await;
    // Every redemption asked the dashboard: single use holds across instances.
    assert!(shell.dashboard.consumed.load(Ordering::SeqCst) >= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_hooks_called_by_anyone_do_no_harm() {
    let shell = start_shell().await;
    let base = format!("http://alice-demo.localhost:{}", shell.port);
    let token = shell
        .signer
        .mint(7, 3, "s", None, qingting_gateway::now_unix(), 60);
    let res = shell
        .client
        .get(format!("{base}/_qingting/auth?token={token}"))
        .header(
            header::REFERER,
            format!("{}/workspaces", shell.dashboard.url),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let pid = || async {
        let res = shell
            .client
            .get(format!("{base}/whoami"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["pid"].clone()
    };
    let before = pid().await;
    // A stranger on the public domain calls both hooks, several times.
    for _ in 0..3 {
        let stop = shell
            .client
            .get(format!("{base}/pre-stop"))
            .send()
            .await
            .unwrap();
        assert_eq!(stop.status(), StatusCode::OK);
        let init = shell
            .client
            .post(format!("{base}/initialize"))
            .send()
            .await
            .unwrap();
        assert_eq!(init.status(), StatusCode::OK);
    }
    // The IDE kept running: same process, still answering.
    assert_eq!(pid().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_of_the_dashboard_ends_access_and_closes_websockets() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let shell = start_shell().await;
    let host = format!("alice-demo.localhost:{}", shell.port);
    let base = format!("http://{host}");
    let token = shell
        .signer
        .mint(7, 3, "s-out", None, qingting_gateway::now_unix(), 60);
    let res = shell
        .client
        .get(format!("{base}/_qingting/auth?token={token}"))
        .header(
            header::REFERER,
            format!("{}/workspaces", shell.dashboard.url),
        )
        .send()
        .await
        .unwrap();
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let addr = format!("127.0.0.1:{}", shell.port).parse().unwrap();
    let (head, mut ws) = conformance::websocket_handshake(addr, &base, "/ws", &cookie).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.write_all(b"hi").await.unwrap();
    let mut echo = [0u8; 2];
    ws.read_exact(&mut echo).await.unwrap();

    // The session ends on the dashboard.
    shell.dashboard.ended.lock().unwrap().insert("s-out".into());
    let started = std::time::Instant::now();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), ws.read(&mut buf))
        .await
        .expect("the WebSocket is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The next sweep (0.4 s) on a quiet machine; loose for a loaded one.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // And plain requests go back through the dashboard, the cookie cleared.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = shell
        .client
        .get(format!("{base}/whoami"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("qingting_ws=;")));
}
