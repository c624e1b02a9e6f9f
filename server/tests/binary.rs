//! The `qingting` binary as an operator runs it: help, migrate, defaults, secrets on disk,
//! health, and a clean exit on SIGTERM.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_qingting");

#[test]
fn help_lists_every_subcommand_and_option() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "migrate",
        "config",
        "fake-github",
        "--config",
        "--listen",
        "--public-url",
        "--data-dir",
        "--database-url",
        "QINGTING_LISTEN",
        "QINGTING_DATA_DIR",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--public-url", "localhost:3000", "config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("public URL must start with http"), "{err}");
}

#[test]
fn migrate_creates_the_database_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.path().join("data/qingting.db").is_file(),
        "SQLite under ./data by default"
    );
}

#[cfg(unix)]
#[test]
fn serves_then_exits_cleanly_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = qingting_core::testing::free_port();
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut res = String::new();
            s.read_to_string(&mut res).unwrap();
            assert!(res.starts_with("HTTP/1.1 200"), "{res}");
            assert!(res.contains(r#""status":"ok""#), "{res}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The session key was generated with owner-only permissions.
    let mode = std::fs::metadata(dir.path().join("secrets/session.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn editors_status_lists_editors_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        // A fresh data dir with nothing installed, whatever the test machine has elsewhere.
        .env_remove("QINGTING_EDITORS_DIR")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["editors", "status"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "JupyterLab",
        "not installed",
        "vscode-python",
        "vscode-node",
        "jupyter-python",
        "editor missing",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
}

/// `qingting … | head` must end quietly: a closed standard output is not a crash.
#[test]
fn output_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for args in [
        vec!["--data-dir", data, "editors", "status"],
        vec!["--data-dir", data, "config"],
        vec!["--help"],
    ] {
        // The reader is gone before the command starts, so its first write meets a closed pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(BIN)
            .env_remove("QINGTING_EDITORS_DIR")
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "qingting {args:?} into a closed pipe: {:?}\n{stderr}",
            out.status
        );
    }
}
