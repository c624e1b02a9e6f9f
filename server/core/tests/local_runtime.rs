//! The local runtime with a real sandbox and a stand-in IDE: files survive stop/start and a
//! kill -9 (the supervisor brings the IDE back), stop kills the whole tree, a workspace cannot
//! reach another's IDE or the host's ports, repeated crashes give up with the log's last
//! lines, destroy leaves nothing behind.

use qingting_core::{
    testing::{install_test_ide, sandbox_available, unix_http, workspace_spec},
    workspaces::{
        local::{LocalOptions, LocalRuntime, Policy},
        runtime::{Observed, Runtime, RuntimeEventKind},
    },
};
use serde_json::Value;
use std::time::Duration;

async fn get_json(rt: &LocalRuntime, id: i64, path: &str) -> Value {
    let (status, body) = unix_http(&rt.layout().socket(id), "GET", path, b"")
        .await
        .unwrap();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

async fn wait_until<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn processes_of_uid(uid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(uid)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_runtime_end_to_end() {
    if !sandbox_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let editors = data.path().join("editors");
    let template = install_test_ide(&editors);
    let policy = Policy {
        health_interval: Duration::from_millis(300),
        backoff: Duration::from_millis(100),
        max_restarts: 2,
        grace: Duration::from_millis(500),
        ..Policy::default()
    };
    let rt = LocalRuntime::new(LocalOptions {
        network: Default::default(),
        network_deny: Vec::new(),
        data_dir: data.path().to_path_buf(),
        editors_dir: editors.clone(),
        insecure_no_sandbox: false,
        uid_base: 250_000,
        policy,
        log_max_bytes: 8 << 20,
    })
    .unwrap();
    let mut events = rt.events().unwrap();
    eprintln!("isolation: {}", rt.isolation());
    let (a, b) = (workspace_spec(1, &template), workspace_spec(2, &template));
    for ws in [&a, &b] {
        let st = rt.provision(ws).await.unwrap();
        rt.start(ws, &st).await.unwrap();
        assert_eq!(rt.status(ws, &st).await.unwrap(), Observed::Running);
    }

    // Inside the sandbox: its own uid, HOME, files dir; none of the server's environment.
    let me = get_json(&rt, 1, "/whoami").await;
    assert_eq!(me["cwd"], "/workspace");
    assert_eq!(me["home"], "/ide/home");
    assert!(!me["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k.as_str().unwrap().starts_with("QINGTING")));
    if let Some(uid) = rt.uid(1) {
        assert_eq!(me["uid"], uid);
    }

    // Workspace 1 cannot reach workspace 2's IDE, nor a port on the host's loopback.
    let host_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b_sock = rt.layout().socket(2);
    let probe = get_json(
        &rt,
        1,
        &format!(
            "/probe?unix_b={}&tcp_host=127.0.0.1:{}",
            b_sock.display(),
            host_port.local_addr().unwrap().port()
        ),
    )
    .await;
    assert!(
        probe["unix_b"].as_str().unwrap().starts_with("refused"),
        "{probe}"
    );
    assert!(
        probe["tcp_host"].as_str().unwrap().starts_with("refused"),
        "{probe}"
    );
    let root: Vec<&str> = probe["root_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        root.contains(&"workspace") && !root.contains(&"home"),
        "{root:?}"
    );

    // A workspace that swaps its socket for a link to another's IDE reaches nothing: the
    // gateway never follows a link (it could reach every socket on the host).
    let (s, _) = unix_http(
        &rt.layout().socket(2),
        "GET",
        &format!("/swap-socket?to={}", rt.layout().socket(1).display()),
        b"",
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    let probe = qingting_gateway::proxy::probe(
        &qingting_gateway::proxy::Upstream::Unix(rt.layout().socket(2)),
        "/healthz",
    )
    .await;
    assert!(probe.is_err(), "the gateway followed a planted symlink");
    // (Its IDE now fails its health checks and the supervisor restarts it with a fresh socket.)
    rt.stop(&b, &Value::Null).await.unwrap();
    rt.start(&b, &Value::Null).await.unwrap();

    // A planted symlink in place of a data dir is refused at the next start, never followed
    // (as root that would chmod/chown the target).
    let victim = tempfile::tempdir().unwrap();
    let before = std::fs::metadata(victim.path()).unwrap();
    let (s, _) = unix_http(
        &rt.layout().socket(2),
        "GET",
        &format!("/plant-home-link?to={}", victim.path().display()),
        b"",
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    rt.stop(&b, &Value::Null).await.unwrap();
    let err = rt.start(&b, &Value::Null).await.unwrap_err();
    assert!(err.0.contains("not a directory"), "{err}");
    let after = std::fs::metadata(victim.path()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (before.mode(), before.uid()),
        (after.mode(), after.uid()),
        "the link's target is untouched"
    );
    std::fs::remove_file(rt.layout().ide(2).join("home")).unwrap();
    rt.start(&b, &Value::Null).await.unwrap();

    // A file survives stop/start.
    let (s, _) = unix_http(&rt.layout().socket(1), "PUT", "/files/note.txt", b"hello")
        .await
        .unwrap();
    assert_eq!(s, 201);
    rt.stop(&a, &Value::Null).await.unwrap();
    assert_eq!(
        rt.status(&a, &Value::Null).await.unwrap(),
        Observed::Stopped
    );
    assert!(!rt.layout().socket(1).exists());
    rt.start(&a, &Value::Null).await.unwrap();
    let (s, body) = unix_http(&rt.layout().socket(1), "GET", "/files/note.txt", b"")
        .await
        .unwrap();
    assert_eq!((s, body.as_slice()), (200, &b"hello"[..]));

    // kill -9 of the IDE: the supervisor brings it back by itself, files intact.
    let pid = rt.pid(1).unwrap();
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .unwrap()
            .unwrap();
        if ev.workspace_id == 1 && matches!(ev.kind, RuntimeEventKind::Restarted { .. }) {
            break;
        }
    }
    assert_ne!(rt.pid(1), Some(pid));
    let (s, body) = unix_http(&rt.layout().socket(1), "GET", "/files/note.txt", b"")
        .await
        .unwrap();
    assert_eq!((s, body.as_slice()), (200, &b"hello"[..]));

    // Stop kills the whole tree, including what left the process group.
    get_json(&rt, 1, "/spawn").await;
    if let Some(uid) = rt.uid(1) {
        assert!(processes_of_uid(uid) >= 2);
        rt.stop(&a, &Value::Null).await.unwrap();
        wait_until("no process of the workspace's uid", || {
            processes_of_uid(uid) == 0
        })
        .await;
    } else {
        rt.stop(&a, &Value::Null).await.unwrap();
    }

    // An IDE that keeps crashing: restarted, then given up with its last output.
    let (s, _) = unix_http(&rt.layout().socket(2), "GET", "/crash?forever=1", b"")
        .await
        .unwrap();
    assert_eq!(s, 200);
    let reason = loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let (2, RuntimeEventKind::Failed { reason }) = (ev.workspace_id, ev.kind) {
            break reason;
        }
    };
    assert!(reason.contains("boom"), "{reason}");
    assert_eq!(
        rt.status(&b, &Value::Null).await.unwrap(),
        Observed::Stopped
    );
    // Starting it again reports the failure right away.
    let err = rt.start(&b, &Value::Null).await.unwrap_err();
    assert!(err.0.contains("boom"), "{err}");

    // Destroy removes files, IDE data, socket dir and log.
    for ws in [&a, &b] {
        rt.destroy(ws, &Value::Null).await.unwrap();
        assert_eq!(
            rt.status(ws, &Value::Null).await.unwrap(),
            Observed::Missing
        );
        assert!(!rt.layout().workspace(ws.id).exists());
        assert!(!rt.layout().run_dir(ws.id).exists());
    }
}
