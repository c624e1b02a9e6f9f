//! The dashboard's API with the `fc` runtime selected, against the FC simulator: create,
//! stop, start, delete work as with the local runtime; the function carries what the in-image
//! shell needs (the token public key, never a secret); throttling is retried.

mod common;

use common::register;
use qingting_core::{
    config::{FcProtocol, RuntimeKind},
    testing::free_port,
    Config,
};
use qingting_fc::sim::{self, SimConfig, SimControl};
use reqwest::StatusCode;
use std::sync::{atomic::Ordering, Arc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_api_with_the_fc_runtime() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_addr = listener.local_addr().unwrap();
    let control = Arc::new(SimControl::default());
    let simcfg = SimConfig::default();
    tokio::spawn(sim::serve(listener, simcfg.clone(), control.clone()));

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = Config {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://localhost:{port}"),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.workspaces.runtime = RuntimeKind::Fc;
    config.workspaces.domain = Some("ws.example.com".into());
    let fc = &mut config.workspaces.fc;
    fc.endpoint = Some(format!("http://{sim_addr}"));
    fc.access_key_id = Some(simcfg.access_key_id.clone());
    fc.access_key_secret = Some(simcfg.access_key_secret.clone());
    fc.protocol = FcProtocol::Http;
    fc.image_registry = Some("registry-vpc.cn-hangzhou.aliyuncs.com/qingting".into());
    let _server = qingting_server::start(config)
        .await
        .expect("server starts with the fc runtime");
    let client = common::client(port, &[]);

    let health: serde_json::Value = client
        .get(format!("http://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["runtime"], "fc");

    let mut alice = register(&client, port, "alice").await;
    let (_, page) = alice.api("/api/workspaces/list", &[]).await;
    assert!(
        page["templates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["ready"] == true),
        "no local editors needed"
    );
    control.throttle_next.store(2, Ordering::SeqCst);
    let (s, row) = alice
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "jupyter-python")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    let ws = alice.wait_state("demo", "running").await;
    let id = ws["id"].as_i64().unwrap().to_string();
    // Two throttled answers, then the retry that went through.
    assert_eq!(control.count("CreateFunction"), 3);

    for (action, want) in [("stop", "stopped"), ("start", "running")] {
        let (s, _) = alice
            .api("/api/workspaces/action", &[("id", &id), ("action", action)])
            .await;
        assert_eq!(s, StatusCode::OK);
        alice.wait_state("demo", want).await;
    }
    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &id), ("action", "delete")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..100 {
        if control.count("DeleteFunction") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(control.count("DeleteFunction"), 1);
    assert!(control.refused.lock().unwrap().is_empty());
}
