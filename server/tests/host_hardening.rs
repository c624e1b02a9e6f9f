//! What the server keeps on this host is its own user's alone (the data dir 0700, the
//! database, its journals and the secrets 0600, also after an older version left them
//! readable). (The host-wide cap on running workspaces and its queue: `http_operators`.)

use qingting_core::testing::{free_port, sandbox_available};
use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command},
    time::{Duration, Instant},
};
mod common;

const BIN: &str = env!("CARGO_BIN_EXE_qingting");

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn qingting(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("QINGTING_DATABASE_URL")
        .env_remove("QINGTING_CONFIG")
        .arg("--data-dir")
        .arg(data);
    if !sandbox_available() {
        cmd.arg("--insecure-no-sandbox");
    }
    cmd
}

fn answers_health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 12];
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.ends_with(b"200")
}

/// Starts `qingting serve` and waits until it answers; its log goes to `log`.
fn serve(data: &Path, log: &Path) -> (Child, u16) {
    let port = free_port();
    let out = std::fs::File::create(log).unwrap();
    let child = qingting(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Answering, not just listening: the port is bound before start-up finishes.
    while !answers_health(port) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks every file the running server keeps in `data`.
fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "data dir");
    for f in ["qingting.db", "qingting.db-wal", "qingting.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&data.join("secrets")), 0o700, "secrets/");
    let secrets: Vec<_> = std::fs::read_dir(data.join("secrets"))
        .unwrap()
        .flatten()
        .collect();
    assert!(secrets.len() >= 3, "session, token and cookie keys");
    for e in secrets {
        assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
    }
    assert_eq!(mode(&data.join("logs")), 0o700, "logs/");
}

#[test]
fn data_dir_and_everything_in_it_are_private() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let log = root.path().join("server.log");

    // A fresh start creates everything private.
    let (child, _) = serve(&data, &log);
    assert_private(&data);
    stop(child);

    // Left readable by an older version: made private again at start-up, and said so.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["qingting.db", "secrets/session.key"] {
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (child, _) = serve(&data, &log);
    assert_private(&data);
    stop(child);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("data dir was 755"), "{said}");
    assert!(
        said.contains("took group and other permissions off"),
        "{said}"
    );

    // `migrate` on its own creates the database privately too.
    let fresh = root.path().join("fresh");
    let out = qingting(&fresh).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("qingting.db")), 0o600);
}
