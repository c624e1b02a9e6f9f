//! The server's own commands as an operator scripts them, on SQLite, Postgres and MariaDB:
//! `qingting admin grant|revoke` and `qingting audit export`. Standard output holds only what a
//! command prints (the export's JSON lines parse one by one); logs and a fatal error go to
//! standard error, the error said once.

use qingting_core::{
    accounts,
    testing::{Backend, TestDatabase},
};
use serde_json::Value;
use std::process::{Command, Output};

qingting_core::on_every_backend!(admin_and_audit_commands_keep_stdout_to_their_answer);

const BIN: &str = env!("CARGO_BIN_EXE_qingting");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A failed command: exit status 1, nothing on standard output, the reason once on standard
/// error. Returns the reason.
fn refused(out: &Output, what: &str) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{what}: {stdout}{stderr}");
    assert_eq!(stdout, "", "{what}: standard output is the answer's alone");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("qingting: "))
        .collect();
    assert_eq!(said.len(), 1, "{what}: said once:\n{stderr}");
    let reason = said[0].trim_start_matches("qingting: ");
    assert_eq!(
        stderr.matches(reason).count(),
        1,
        "{what}: said once:\n{stderr}"
    );
    reason.to_string()
}

async fn admin_and_audit_commands_keep_stdout_to_their_answer(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let qingting = |args: &[&str]| -> Output {
        Command::new(BIN)
            // The default log level, whatever the caller's shell sets.
            .env_remove("RUST_LOG")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--database-url", &tdb.url])
            .args(args)
            .output()
            .unwrap()
    };

    // The first command on a new database migrates it, and prints nothing.
    let out = qingting(&["audit", "export"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "an empty log exports nothing");

    let reason = refused(&qingting(&["admin", "grant", "nobody"]), "grant nobody");
    assert!(reason.contains("nobody"), "{reason}");

    let db = tdb.connect().await;
    accounts::register(&db, "alice", "correct horse")
        .await
        .unwrap();
    accounts::register(&db, "bob", "correct horse")
        .await
        .unwrap();
    drop(db);

    let out = qingting(&["admin", "grant", "bob"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "bob is now an admin\n");
    let out = qingting(&["admin", "revoke", "alice"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "alice is now a member\n");
    // bob is the last admin now, and alice still has an account.
    let reason = refused(&qingting(&["admin", "revoke", "bob"]), "revoke the last");
    assert!(reason.contains("admin"), "{reason}");

    let out = qingting(&["audit", "export", "--action", "role_change"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entries: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let changes: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["subject"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("bob", "ok", "system"), ("alice", "ok", "system")],
        "oldest first: {entries:#?}"
    );

    let reason = refused(
        &qingting(&["audit", "export", "--action", "nonsense"]),
        "bad action",
    );
    assert!(reason.contains("--action \"nonsense\""), "{reason}");
    let reason = refused(
        &qingting(&["audit", "export", "--since", "yesterday-ish"]),
        "bad time",
    );
    assert!(reason.contains("--since"), "{reason}");
    let reason = refused(
        &qingting(&["audit", "export", "--user", "nobody"]),
        "unknown user",
    );
    assert!(reason.contains("no account named nobody"), "{reason}");

    tdb.drop_database().await;
}
