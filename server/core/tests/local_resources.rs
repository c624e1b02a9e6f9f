//! A running local workspace's use of the machine, as its card shows it (memory from its
//! cgroup, CPU from its processes, disk of its files), and an IDE killed for its memory limit
//! saying so instead of a bare crash.

use qingting_core::{
    testing::{
        install_test_ide, local_options, sandbox_available, unix_http, workspace_spec, IdeReaper,
    },
    workspaces::{
        local::{LocalOptions, LocalRuntime, Policy},
        runtime::{Runtime, RuntimeEventKind},
    },
};
use serde_json::Value;
use std::time::Duration;

fn runtime(data: &std::path::Path, policy: Policy) -> LocalRuntime {
    LocalRuntime::new(LocalOptions {
        policy,
        ..local_options(data)
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_workspace_reports_memory_cpu_and_disk() {
    if !sandbox_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let _reaper = IdeReaper(data.path().to_path_buf());
    let template = install_test_ide(&data.path().join("editors"));
    let rt = runtime(data.path(), Policy::default());
    let ws = workspace_spec(1, &template);
    let st = rt.provision(&ws).await.unwrap();
    assert_eq!(rt.usage(1), None, "not running yet");
    rt.start(&ws, &st).await.unwrap();
    std::fs::write(rt.layout().files(1).join("data.bin"), vec![7u8; 2 << 20]).unwrap();

    let first = rt.usage(1).expect("usage of a running workspace");
    assert_eq!(first.memory_limit_bytes, template.memory_mb << 20);
    let memory = first.memory_bytes.expect("memory");
    assert!(
        (1 << 20..template.memory_mb << 20).contains(&memory),
        "{memory}"
    );
    let cpu_before = rt.cpu_seconds(1).unwrap();

    // Busy on one core for a second and a half: the CPU figure and time show it.
    let (status, _) = unix_http(&rt.layout().socket(1), "GET", "/burn?secs=1.5", b"")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let busy = rt.usage(1).unwrap();
    // The burn counts CPU time, so on a loaded machine it takes longer and shows a lower share;
    // an idle IDE shows under 1 %.
    assert!(busy.cpu_percent.unwrap() > 10.0, "{busy:?}");
    assert!(rt.cpu_seconds(1).unwrap() - cpu_before > 1.0);

    // The disk figure arrives from a walk in the background and counts the file.
    let mut disk = None;
    for _ in 0..100 {
        disk = rt.usage(1).unwrap().disk_bytes;
        if disk.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(disk.expect("disk use") >= 2 << 20);
    rt.destroy(&ws, &Value::Null).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ide_killed_for_its_memory_limit_says_so() {
    if !sandbox_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let _reaper = IdeReaper(data.path().to_path_buf());
    let mut template = install_test_ide(&data.path().join("editors"));
    template.memory_mb = 128;
    let rt = runtime(
        data.path(),
        Policy {
            max_restarts: 0,
            health_interval: Duration::from_millis(200),
            ..Policy::default()
        },
    );
    let cgroups = !rt.isolation()["limits"]
        .as_str()
        .unwrap_or_default()
        .starts_with("rlimit");
    if !cgroups {
        // Without a cgroup the kernel's memory limit is per process (RLIMIT_DATA): the IDE
        // gets an allocation failure, not a kill, and nothing counts it.
        eprintln!("SKIPPED: no memory cgroup here (not root)");
        return;
    }
    let mut events = rt.events().unwrap();
    let ws = workspace_spec(1, &template);
    let st = rt.provision(&ws).await.unwrap();
    rt.start(&ws, &st).await.unwrap();
    // The IDE itself holds more than its workspace may: the kernel kills it.
    let _ = unix_http(&rt.layout().socket(1), "GET", "/hog?mb=1024", b"").await;
    let reason = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(ev) = events.recv().await {
                if let RuntimeEventKind::Failed { reason } = ev.kind {
                    return reason;
                }
            }
        }
    })
    .await
    .expect("the supervisor gives up");
    assert!(
        reason.starts_with("stopped: out of memory at 128 MiB"),
        "{reason}"
    );
    rt.destroy(&ws, &Value::Null).await.unwrap();
}
