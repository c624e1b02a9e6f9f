//! qingting-shell with a real JupyterLab behind it, no container: the token exchange (public
//! key only, single use kept by the dashboard), refusals, HTTP through the guard, and a kernel
//! WebSocket that runs `6*7`.
//! Needs JupyterLab in `QINGTING_EDITORS_DIR` (`qingting editors install jupyter`); skipped
//! without it unless `QINGTING_TEST_REQUIRE_EDITORS=1`.

mod common;

use common::{free_port, stand_in_dashboard, wait_until_serving, Kill};
use futures_util::{SinkExt, StreamExt};
use qingting_gateway::token::TokenSigner;
use reqwest::{header, redirect::Policy, StatusCode};
use serde_json::{json, Value};
use std::{path::PathBuf, process::Command, time::Duration};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

fn jupyter() -> Option<PathBuf> {
    let dir = std::env::var("QINGTING_EDITORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/qingting/editors")
        });
    let bin = dir.join("jupyter/bin/jupyter");
    if dir.join("jupyter/.installed").is_file() {
        return Some(bin);
    }
    assert!(
        std::env::var("QINGTING_TEST_REQUIRE_EDITORS").as_deref() != Ok("1"),
        "JupyterLab is required but not installed in {}",
        dir.display()
    );
    eprintln!("SKIPPED: JupyterLab is not installed in {}", dir.display());
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_guards_a_real_jupyterlab() {
    let Some(jupyter) = jupyter() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let signer = TokenSigner::from_seed(&[42; 32]);
    let dashboard = stand_in_dashboard(signer.public_key()).await.url;
    let shell = Command::new(env!("CARGO_BIN_EXE_qingting-shell"))
        .env("QINGTING_LISTEN", format!("127.0.0.1:{port}"))
        .env("QINGTING_WORKSPACE_ID", "7")
        .env("QINGTING_OWNER_ID", "3")
        .env("QINGTING_OWNER", "alice")
        .env("QINGTING_WORKSPACE", "nb")
        .env("QINGTING_DASHBOARD_URL", &dashboard)
        .env("QINGTING_PUBLIC_SCHEME", "http")
        .env(
            "QINGTING_TOKEN_PUBLIC_KEY",
            hex::encode(signer.public_key()),
        )
        .env("QINGTING_FILES_DIR", dir.path().join("workspace"))
        .env("QINGTING_IDE_DIR", dir.path().join("ide"))
        .env("QINGTING_RUN_DIR", dir.path().join("run"))
        .env("QINGTING_HEALTH_PATH", "/api/status")
        .arg("--")
        .arg(&jupyter)
        .args([
            "lab",
            "--no-browser",
            "--ServerApp.root_dir={files}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.allow_remote_access=True",
            "--ServerApp.sock={socket}",
            "--ServerApp.sock_mode=0600",
            // The images run as an unprivileged user; test machines may run as root.
            "--ServerApp.allow_root=True",
        ])
        .spawn()
        .unwrap();
    let _shell = Kill(shell);
    let host = format!("alice-nb.localhost:{port}");
    let base = format!("http://{host}");
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .resolve(
            "alice-nb.localhost",
            format!("127.0.0.1:{port}").parse().unwrap(),
        )
        .build()
        .unwrap();
    wait_until_serving(&client, &base).await;

    // FC's Initializer starts the IDE; its health check then passes.
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
    assert_eq!(
        client
            .get(format!("{base}/_qingting/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // No cookie: to the dashboard's open flow, never to the IDE.
    let res = client
        .get(format!("{base}/api/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let to = res.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        to.starts_with(&format!(
            "{dashboard}/open/alice/nb?next=/api/status&state="
        )),
        "{to}"
    );

    // Tokens: for another workspace or another user, or minted by another key: refused.
    let now = qingting_gateway::now_unix();
    let stranger = TokenSigner::from_seed(&[1; 32]);
    for tok in [
        signer.mint(8, 3, "s", None, now, 60),
        signer.mint(7, 4, "s", None, now, 60),
        stranger.mint(7, 3, "s", None, now, 60),
    ] {
        let res = client
            .get(format!("{base}/_qingting/auth?token={tok}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let tok = signer.mint(7, 3, "s", None, now, 60);
    let res = client
        .get(format!(
            "{base}/_qingting/auth?token={tok}&next=/api/status"
        ))
        .header(header::REFERER, format!("{dashboard}/workspaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/api/status");
    let set = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.contains("HttpOnly") && !set.to_lowercase().contains("domain="));
    let cookie = set.split(';').next().unwrap().to_string();

    // HTTP through the guard.
    let status: Value = client
        .get(format!("{base}/api/status"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["started"].is_string(), "{status}");
    // Jupyter's XSRF cookie, then a kernel.
    let lab = client
        .get(format!("{base}/lab"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(lab.status(), StatusCode::OK);
    let xsrf = lab
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix("_xsrf=")
                .map(|r| r.split(';').next().unwrap().to_string())
        })
        .expect("an _xsrf cookie");
    let cookies = format!("{cookie}; _xsrf={xsrf}");
    let kernel: Value = client
        .post(format!("{base}/api/kernels"))
        .header(header::COOKIE, &cookies)
        .header("X-XSRFToken", &xsrf)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = kernel["id"].as_str().unwrap_or_else(|| panic!("{kernel}"));

    // The kernel's WebSocket through the guard: run 6*7.
    let mut req = format!("ws://127.0.0.1:{port}/api/kernels/{kid}/channels")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("host", host.parse().unwrap());
    req.headers_mut().insert("origin", base.parse().unwrap());
    req.headers_mut().insert("cookie", cookies.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("kernel WebSocket through the shell");
    let msg = json!({
        "header": {"msg_id": "m1", "msg_type": "execute_request", "session": "s1", "username": "t", "version": "5.3", "date": "2026-01-01T00:00:00Z"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": "print(6*7)", "silent": false, "store_history": false, "user_expressions": {}, "allow_stdin": false, "stop_on_error": true}
    });
    ws.send(Message::text(msg.to_string())).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Ok(text) = m.to_text() {
                let v: Value = serde_json::from_str(text).unwrap_or_default();
                if v["msg_type"] == "stream" {
                    return v["content"]["text"].as_str().unwrap_or("").to_string();
                }
            }
        }
        String::new()
    })
    .await
    .expect("an answer from the kernel");
    assert_eq!(out, "42\n");

    // A WebSocket from another origin is refused.
    let mut bad = format!("ws://127.0.0.1:{port}/api/kernels/{kid}/channels")
        .into_client_request()
        .unwrap();
    bad.headers_mut().insert("host", host.parse().unwrap());
    bad.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    bad.headers_mut().insert("cookie", cookies.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(bad).await.is_err());

    // FC's PreStop hook flushes data and leaves the IDE running (anyone can call it).
    assert_eq!(
        client
            .get(format!("{base}/pre-stop"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(format!("{base}/_qingting/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
