//! The Rust client against the simulator: every operation the runtime uses, typed errors,
//! retries of throttling and 5xx with fresh signatures, and the simulator's refusals of stale
//! dates, replayed nonces, tampered bodies and wrong keys.

use qingting_fc::{
    model::*,
    signer,
    sim::{self, SimConfig, SimControl},
    Credentials, FcClient, FcErrorKind, RetryPolicy,
};
use std::{sync::atomic::Ordering, sync::Arc, time::Duration};

async fn start() -> (String, Arc<SimControl>, SimConfig) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let control = Arc::new(SimControl::default());
    let cfg = SimConfig {
        pending: Duration::from_millis(100),
        ..SimConfig::default()
    };
    tokio::spawn(sim::serve(listener, cfg.clone(), control.clone()));
    (format!("http://{addr}"), control, cfg)
}

fn client(endpoint: &str, cfg: &SimConfig) -> FcClient {
    let mut c = FcClient::new(
        endpoint,
        Credentials {
            access_key_id: cfg.access_key_id.clone(),
            access_key_secret: cfg.access_key_secret.clone(),
            security_token: None,
        },
    );
    c.retry = RetryPolicy {
        first_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    c
}

fn function(name: &str) -> CreateFunctionInput {
    CreateFunctionInput {
        function_name: name.into(),
        runtime: "custom-container".into(),
        handler: "index.handler".into(),
        custom_container_config: Some(CustomContainerConfig {
            image: "registry.example.com/ns/vscode-python:1".into(),
            port: Some(9000),
            ..Default::default()
        }),
        memory_size: Some(2048),
        cpu: Some(1.0),
        timeout: Some(86400),
        ..Default::default()
    }
}

#[tokio::test]
async fn operations_errors_and_retries() {
    let (endpoint, control, cfg) = start().await;
    let c = client(&endpoint, &cfg);

    let f = c.create_function(&function("qt-ws-1")).await.unwrap();
    assert_eq!(f.state, "Pending");
    assert!(!f.settled());
    let err = c.create_function(&function("qt-ws-1")).await.unwrap_err();
    assert_eq!(err.kind, FcErrorKind::AlreadyExists, "{err}");
    assert!(err.request_id.is_some());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(c.get_function("qt-ws-1").await.unwrap().settled());

    // An update rolls out (`InProgress`) while the function stays `Active`; NAS without the
    // VPC it needs is refused.
    let update = UpdateFunctionInput {
        environment_variables: Some([("A".to_string(), "1".to_string())].into()),
        ..Default::default()
    };
    let f = c.update_function("qt-ws-1", &update).await.unwrap();
    assert_eq!(
        (f.state.as_str(), f.last_update_status.as_str()),
        ("Active", "InProgress")
    );
    assert_eq!(f.environment_variables["A"], "1");
    let nas = UpdateFunctionInput {
        nas_config: Some(NasConfig {
            user_id: 1,
            group_id: 1,
            mount_points: vec![NasMountConfig {
                server_addr: "nas:/x".into(),
                mount_dir: "/x".into(),
                enable_tls: false,
            }],
        }),
        ..Default::default()
    };
    let err = c.update_function("qt-ws-1", &nas).await.unwrap_err();
    assert!(err.to_string().contains("vpcConfig"), "{err}");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(c.get_function("qt-ws-1").await.unwrap().settled());

    let t = c
        .create_trigger(
            "qt-ws-1",
            &CreateTriggerInput {
                trigger_name: "http".into(),
                trigger_type: "http".into(),
                trigger_config: serde_json::to_string(&HttpTriggerConfig {
                    auth_type: "anonymous".into(),
                    methods: vec!["GET".into()],
                    disable_url_internet: true,
                })
                .unwrap(),
                qualifier: None,
            },
        )
        .await
        .unwrap();
    assert!(t.http_trigger.unwrap().url_internet.starts_with("https://"));
    let d = c
        .create_custom_domain(&CreateCustomDomainInput {
            domain_name: "alice-demo.ws.example.com".into(),
            protocol: "HTTP".into(),
            route_config: RouteConfig {
                routes: vec![PathConfig {
                    path: "/*".into(),
                    function_name: "qt-ws-1".into(),
                    ..Default::default()
                }],
            },
            cert_config: None,
        })
        .await
        .unwrap();
    assert_eq!(d.domain_name, "alice-demo.ws.example.com");
    c.put_provision_config(
        "qt-ws-1",
        "LATEST",
        &PutProvisionConfigInput {
            default_target: 1,
            always_allocate_cpu: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        c.list_instances("qt-ws-1").await.unwrap().instances.len(),
        1
    );
    c.disable_function_invocation(
        "qt-ws-1",
        &DisableFunctionInvocationInput {
            abort_ongoing_request: true,
            reason: None,
        },
    )
    .await
    .unwrap();
    assert!(c
        .list_instances("qt-ws-1")
        .await
        .unwrap()
        .instances
        .is_empty());
    c.enable_function_invocation("qt-ws-1").await.unwrap();

    // Typed refusals.
    assert_eq!(
        c.delete_function("qt-ws-1").await.unwrap_err().kind,
        FcErrorKind::NotEmpty
    );
    assert_eq!(
        c.get_function("nope").await.unwrap_err().kind,
        FcErrorKind::NotFound
    );
    let mut bad = function("qt-ws-2");
    bad.runtime = "cobol".into();
    let err = c.create_function(&bad).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (FcErrorKind::Invalid, "InvalidArgument")
    );
    let mut bad = function("qt-ws-2");
    bad.memory_size = Some(100);
    assert_eq!(
        c.create_function(&bad).await.unwrap_err().kind,
        FcErrorKind::Invalid
    );
    let wrong = FcClient::new(
        &endpoint,
        Credentials {
            access_key_id: cfg.access_key_id.clone(),
            access_key_secret: "wrong".into(),
            security_token: None,
        },
    );
    assert_eq!(
        wrong.get_function("qt-ws-1").await.unwrap_err().kind,
        FcErrorKind::Auth
    );

    // Throttling and 5xx are retried, each time freshly signed (a reused nonce would be refused).
    let before = control.count("GetFunction");
    control.throttle_next.store(2, Ordering::SeqCst);
    c.get_function("qt-ws-1").await.unwrap();
    assert_eq!(control.count("GetFunction"), before + 3);
    control.fail("ListInstances", 500, "InternalServerError");
    c.list_instances("qt-ws-1").await.unwrap();
    // Not retried: a 4xx that retrying cannot fix.
    control.fail("GetProvisionConfig", 400, "InvalidArgument");
    let before = control.count("GetProvisionConfig");
    assert!(c.get_provision_config("qt-ws-1", "LATEST").await.is_err());
    assert_eq!(control.count("GetProvisionConfig"), before + 1);
    assert!(!control
        .refused
        .lock()
        .unwrap()
        .contains(&"SignatureNonceUsed".to_string()));

    // Clean-up in FC's order: domain, triggers, function; then they are gone.
    c.delete_custom_domain("alice-demo.ws.example.com")
        .await
        .unwrap();
    c.delete_trigger("qt-ws-1", "http").await.unwrap();
    c.delete_function("qt-ws-1").await.unwrap();
    assert_eq!(
        c.delete_function("qt-ws-1").await.unwrap_err().kind,
        FcErrorKind::NotFound
    );
}

/// A hand-made request signed like the client signs, with a chosen date and nonce.
async fn raw(
    endpoint: &str,
    cfg: &SimConfig,
    date: &str,
    nonce: &str,
    body: &str,
    sent_body: &str,
) -> (u16, String) {
    let host = endpoint.trim_start_matches("http://").to_string();
    let path = "/2023-03-30/functions";
    let headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        ("x-acs-action".into(), "CreateFunction".into()),
        ("x-acs-version".into(), "2023-03-30".into()),
        ("x-acs-date".into(), date.into()),
        ("x-acs-signature-nonce".into(), nonce.into()),
        (
            "x-acs-content-sha256".into(),
            signer::sha256_hex(body.as_bytes()),
        ),
        ("content-type".into(), "application/json".into()),
    ];
    let req = signer::Request {
        method: "POST",
        canonical_uri: path.into(),
        query: vec![],
        headers: headers.clone(),
        signed_headers: signer::signed_headers_of(&headers),
        payload_hash: signer::sha256_hex(body.as_bytes()),
    };
    let mut b = reqwest::Client::new()
        .post(format!("{endpoint}{path}"))
        .body(sent_body.to_string());
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        b = b.header(k, v);
    }
    let res = b
        .header(
            "authorization",
            req.authorization(&cfg.access_key_id, &cfg.access_key_secret),
        )
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

fn now_iso() -> String {
    qingting_fc::now_iso8601()
}

#[tokio::test]
async fn the_simulator_refuses_what_fc_refuses() {
    let (endpoint, _control, cfg) = start().await;
    let body = r#"{"functionName":"f1","runtime":"custom-container","handler":"h","customContainerConfig":{"image":"i"}}"#;
    let (s, text) = raw(&endpoint, &cfg, "2020-01-01T00:00:00Z", "n1", body, body).await;
    assert_eq!(s, 403, "{text}");
    assert!(text.contains("InvalidTimeStamp.Expired"), "{text}");
    let (s, text) = raw(&endpoint, &cfg, &now_iso(), "n2", body, body).await;
    assert_eq!(s, 200, "{text}");
    let (s, text) = raw(&endpoint, &cfg, &now_iso(), "n2", body, body).await;
    assert_eq!(s, 403, "{text}");
    assert!(text.contains("SignatureNonceUsed"), "{text}");
    // The body changed after signing.
    let (s, text) = raw(
        &endpoint,
        &cfg,
        &now_iso(),
        "n3",
        body,
        &body.replace("f1", "f9"),
    )
    .await;
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("ContentSHA256Mismatch"), "{text}");
    // Missing required field, with FC's error shape.
    let no_handler = r#"{"functionName":"f2","runtime":"custom-container","customContainerConfig":{"image":"i"}}"#;
    let (s, text) = raw(&endpoint, &cfg, &now_iso(), "n4", no_handler, no_handler).await;
    assert_eq!(s, 400);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["Code"], "InvalidArgument");
    assert!(v["Message"].as_str().unwrap().contains("handler"));
    assert!(v["RequestId"].is_string());
}
