//! The workspace lifecycle against a fake runtime, on SQLite, Postgres and MariaDB: states,
//! refusals, limits, failures with reasons, concurrent starts, deletion with the account.

use qingting_core::{
    accounts::{self, AccountDeletionHook},
    templates,
    testing::{Backend, TestDatabase},
    workspaces::{
        runtime::fake::FakeRuntime, WorkspaceError, WorkspaceLimits, WorkspaceService,
        WorkspaceState,
    },
};
use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

/// The service over a fake runtime with the given limits.
fn service(
    db: &qingting_core::store::DatabaseConnection,
    max_per_user: u64,
    max_running_per_user: u64,
) -> (Arc<FakeRuntime>, Arc<WorkspaceService>) {
    let rt = Arc::new(FakeRuntime::default());
    let limits = WorkspaceLimits {
        max_per_user,
        max_running_per_user,
    };
    let svc = WorkspaceService::new(db.clone(), rt.clone(), templates::builtin(), limits, None);
    (rt, Arc::new(svc))
}

async fn suite(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = accounts::register(&db, "alice", "correct horse")
        .await
        .unwrap();
    let bob = accounts::register(&db, "bob", "correct horse")
        .await
        .unwrap();
    let (rt, svc) = service(&db, 3, 2);

    // Create → running; provision then start, in that order.
    let ws = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Running);
    assert_eq!(rt.count("provision"), 1);
    assert_eq!(rt.count("start"), 1);

    // Refusals leave no rows.
    for (name, tpl) in [
        ("Bad_Name", "jupyter-python"),
        ("", "jupyter-python"),
        ("ok", "no-such-template"),
    ] {
        assert!(svc.create(&alice, name, tpl).await.is_err());
    }
    assert!(matches!(
        svc.create(&alice, "demo", "vscode-python").await,
        Err(WorkspaceError::NameTaken)
    ));
    assert_eq!(svc.list(&alice).await.unwrap().len(), 1);
    // Names are per user.
    svc.create(&bob, "demo", "vscode-node").await.unwrap();

    // Running limit, then total limit.
    svc.create(&alice, "second", "vscode-python").await.unwrap();
    let err = svc
        .create(&alice, "third", "vscode-python")
        .await
        .unwrap_err();
    assert!(matches!(err, WorkspaceError::LimitReached(_)), "{err}");
    assert!(err.to_string().contains("at most 2"));
    // The idle reaper stops everything that saw no activity (here: for zero seconds).
    assert_eq!(svc.stop_idle(Duration::ZERO).await.unwrap(), 3);
    svc.create(&alice, "third", "vscode-python").await.unwrap();
    let err = svc
        .create(&alice, "fourth", "vscode-python")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at most 3 workspaces"), "{err}");

    // An idle stop says why; ownership is enforced.
    let list = svc.list(&alice).await.unwrap();
    let demo = list.iter().find(|w| w.name == "demo").unwrap();
    assert_eq!(
        (demo.state, demo.reason.as_deref()),
        (
            WorkspaceState::Stopped,
            Some("Stopped after 0 seconds without activity.")
        )
    );
    assert!(matches!(
        svc.start(&bob, demo.id).await,
        Err(WorkspaceError::NotFound)
    ));
    let third = list.iter().find(|w| w.name == "third").unwrap().id;
    svc.stop(&alice, third).await.unwrap();
    // Two clicks on Start at once: one starts, the other is told it is busy; nothing sticks.
    rt.start_delay_ms.store(200, Ordering::SeqCst);
    let starts_before = rt.count("start");
    let (a, b) = tokio::join!(svc.start(&alice, demo.id), svc.start(&alice, demo.id));
    rt.start_delay_ms.store(0, Ordering::SeqCst);
    assert!(a.is_ok() ^ b.is_ok(), "{a:?} {b:?}");
    assert!(matches!(
        a.as_ref().err().or(b.as_ref().err()),
        Some(WorkspaceError::Busy(_))
    ));
    assert_eq!(
        rt.count("start"),
        starts_before + 1,
        "the runtime started it once"
    );
    assert_eq!(
        svc.list(&alice)
            .await
            .unwrap()
            .iter()
            .find(|w| w.id == demo.id)
            .unwrap()
            .state,
        WorkspaceState::Running
    );

    // A failing start marks the workspace failed with the reason; a later start recovers.
    svc.stop(&alice, demo.id).await.unwrap();
    rt.fail_start.store(true, Ordering::SeqCst);
    let v = svc.start(&alice, demo.id).await.unwrap();
    assert_eq!(v.state, WorkspaceState::Failed);
    assert!(v.reason.unwrap().contains("exited with status 1"));
    rt.fail_start.store(false, Ordering::SeqCst);
    assert_eq!(
        svc.start(&alice, demo.id).await.unwrap().state,
        WorkspaceState::Running
    );

    // Restart goes through stop and start.
    let stops = rt.count("stop");
    assert_eq!(
        svc.restart(&alice, demo.id).await.unwrap().state,
        WorkspaceState::Running
    );
    assert_eq!(rt.count("stop"), stops + 1);

    // Deleting a running workspace destroys it and removes the row.
    svc.delete(&alice, demo.id).await.unwrap();
    assert!(svc
        .list(&alice)
        .await
        .unwrap()
        .iter()
        .all(|w| w.id != demo.id));
    assert_eq!(rt.count("destroy"), 1);

    // A failed provision leaves a failed record, and start retries the provisioning.
    rt.fail_provision.store(true, Ordering::SeqCst);
    let v = svc.create(&alice, "flaky", "jupyter-python").await.unwrap();
    assert_eq!(v.state, WorkspaceState::Failed);
    rt.fail_provision.store(false, Ordering::SeqCst);
    assert_eq!(
        svc.start(&alice, v.id).await.unwrap().state,
        WorkspaceState::Running
    );

    // Account deletion deletes the user's workspaces through the service.
    svc.before_account_deletion(alice.id).await.unwrap();
    assert!(svc.list(&alice).await.unwrap().is_empty());
    assert_eq!(
        svc.list(&bob).await.unwrap().len(),
        1,
        "other users are untouched"
    );

    eprintln!("workspace service suite passed on {}", backend.name());
    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

#[tokio::test]
async fn workspace_service_on_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn workspace_service_on_postgres() {
    suite(Backend::Postgres).await;
}

#[tokio::test]
async fn workspace_service_on_mariadb() {
    suite(Backend::MySql).await;
}

/// Limits hold under concurrency: two Starts of different workspaces racing for the last
/// running slot, and two creates racing for the last workspace slot, let exactly one through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_under_concurrent_requests() {
    let tdb = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let db = tdb.connect().await;
    let alice = accounts::register(&db, "alice", "correct horse")
        .await
        .unwrap();
    let (rt, svc) = service(&db, 3, 1);
    let a = svc.create(&alice, "a", "jupyter-python").await.unwrap();
    svc.stop(&alice, a.id).await.unwrap();
    let b = svc.create(&alice, "b", "jupyter-python").await.unwrap();
    svc.stop(&alice, b.id).await.unwrap();
    rt.start_delay_ms.store(100, Ordering::SeqCst);
    let (ra, rb) = tokio::join!(svc.start(&alice, a.id), svc.start(&alice, b.id));
    assert!(ra.is_ok() ^ rb.is_ok(), "{ra:?} {rb:?}");
    assert!(matches!(
        ra.err().or(rb.err()),
        Some(WorkspaceError::LimitReached(_))
    ));
    let running = svc
        .list(&alice)
        .await
        .unwrap()
        .iter()
        .filter(|w| w.state == WorkspaceState::Running)
        .count();
    assert_eq!(running, 1);
    for w in svc.list(&alice).await.unwrap() {
        svc.stop(&alice, w.id).await.unwrap();
    }
    rt.start_delay_ms.store(0, Ordering::SeqCst);
    // One workspace slot left (3 in all): two creates at once, one gets it.
    let (c1, c2) = tokio::join!(
        svc.create(&alice, "c", "jupyter-python"),
        svc.create(&alice, "d", "jupyter-python")
    );
    assert!(c1.is_ok() ^ c2.is_ok(), "{c1:?} {c2:?}");
    assert_eq!(svc.list(&alice).await.unwrap().len(), 3);
}
