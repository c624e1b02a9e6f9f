//! The simulator against Alibaba's official Python SDK (`alibabacloud-fc20230330` from PyPI):
//! what the real SDK sends must pass the simulator's checks, so the simulator (and the Rust
//! client tested against it) agree with the real wire format.
//!
//! The SDK lives in a venv at `QINGTING_TEST_FC_SDK_PYTHON` (the test command installs it);
//! skipped without it unless `QINGTING_TEST_REQUIRE_FC_SDK=1`.

use qingting_fc::sim::{self, SimConfig, SimControl};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_passes_the_simulators_checks() {
    let python = std::env::var("QINGTING_TEST_FC_SDK_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/qingting/fc-sdk/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let has_sdk = std::process::Command::new(&python)
        .args(["-c", "import alibabacloud_fc20230330"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        assert!(
            std::env::var("QINGTING_TEST_REQUIRE_FC_SDK").as_deref() != Ok("1"),
            "the official FC SDK is required but not installed for {python}"
        );
        eprintln!("SKIPPED: alibabacloud-fc20230330 is not installed for {python}");
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let control = Arc::new(SimControl::default());
    let cfg = SimConfig::default();
    let (key, secret) = (cfg.access_key_id.clone(), cfg.access_key_secret.clone());
    tokio::spawn(sim::serve(listener, cfg, control.clone()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/official_sdk.py");
    let out = tokio::process::Command::new(&python)
        .args([script, &addr.to_string(), &key, &secret])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all operations accepted"), "{stdout}");
    // The only refusals were the ones the script provoked on purpose.
    let refused = control.refused.lock().unwrap().clone();
    assert_eq!(
        refused,
        ["SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound"],
        "{refused:?}"
    );
    for action in [
        "CreateFunction",
        "GetFunction",
        "UpdateFunction",
        "CreateTrigger",
        "ListTriggers",
        "CreateCustomDomain",
        "GetCustomDomain",
        "PutProvisionConfig",
        "GetProvisionConfig",
        "ListInstances",
        "DisableFunctionInvocation",
        "EnableFunctionInvocation",
        "DeleteProvisionConfig",
        "DeleteCustomDomain",
        "DeleteTrigger",
        "DeleteFunction",
    ] {
        assert!(control.count(action) > 0, "the SDK never reached {action}");
    }
}
