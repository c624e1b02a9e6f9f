//! The workspace lifecycle against a fake runtime, on SQLite, Postgres and MariaDB: states,
//! refusals, limits, failures with reasons, concurrent starts, deletion with the account.
//! Every scenario starts from a fresh database and runs on each backend.

use qingting_core::audit::Actor;
use qingting_core::{
    accounts::{self, Account, AccountDeletionHook},
    store::DatabaseConnection,
    templates,
    testing::{Backend, TestDatabase},
    workspaces::{
        runtime::fake::FakeRuntime, Action, WorkspaceError, WorkspaceLimits, WorkspaceService,
        WorkspaceState,
    },
};
use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

qingting_core::on_every_backend!(
    create_provisions_then_starts,
    refusals_leave_no_rows,
    names_are_per_user,
    the_running_limit_then_the_total_limit_hold,
    an_idle_stop_says_why,
    nobody_starts_another_users_workspace,
    two_starts_at_once_start_once,
    a_failed_start_says_why_and_a_later_start_recovers,
    restart_goes_through_stop_and_start,
    deleting_a_running_workspace_destroys_it,
    a_failed_provision_is_retried_by_start,
    account_deletion_deletes_only_that_users_workspaces,
    limits_hold_under_concurrent_requests,
    port_shares_are_the_owners_to_change_and_go_with_the_workspace,
    cpu_use_inside_counts_as_activity,
    acting_as_soon_as_an_outcome_shows_is_not_busy,
);

/// The service over a fake runtime with the given limits.
fn service(
    db: &DatabaseConnection,
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

async fn register(db: &DatabaseConnection, name: &str) -> Account {
    accounts::register(db, name, "correct horse").await.unwrap()
}

async fn create_provisions_then_starts(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);

    let ws = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Running);
    assert_eq!(rt.count("provision"), 1);
    assert_eq!(rt.count("start"), 1);

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn refusals_leave_no_rows(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (_rt, svc) = service(&db, 3, 2);
    svc.create(&alice, "demo", "jupyter-python").await.unwrap();

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

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn names_are_per_user(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let (_rt, svc) = service(&db, 3, 2);
    svc.create(&alice, "demo", "jupyter-python").await.unwrap();

    svc.create(&bob, "demo", "vscode-node").await.unwrap();

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn the_running_limit_then_the_total_limit_hold(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let (_rt, svc) = service(&db, 3, 2);
    svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    svc.create(&bob, "demo", "vscode-node").await.unwrap();

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

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn an_idle_stop_says_why(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (_rt, svc) = service(&db, 3, 2);
    svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    assert_eq!(svc.stop_idle(Duration::ZERO).await.unwrap(), 1);

    let list = svc.list(&alice).await.unwrap();
    let demo = list.iter().find(|w| w.name == "demo").unwrap();
    assert_eq!(
        (demo.state, demo.reason.as_deref()),
        (
            WorkspaceState::Stopped,
            Some("Stopped after 0 seconds without activity.")
        )
    );

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn nobody_starts_another_users_workspace(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let (_rt, svc) = service(&db, 3, 2);
    let demo = stopped(&svc, &alice, "demo").await;

    assert!(matches!(
        svc.start(&bob, demo).await,
        Err(WorkspaceError::NotFound)
    ));

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

/// Creates `owner`'s workspace `name` and stops it; returns its id.
async fn stopped(svc: &WorkspaceService, owner: &Account, name: &str) -> i64 {
    let ws = svc.create(owner, name, "jupyter-python").await.unwrap();
    svc.stop(owner, ws.id).await.unwrap();
    ws.id
}

async fn two_starts_at_once_start_once(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);
    let demo = stopped(&svc, &alice, "demo").await;

    // Two clicks on Start at once: one starts, the other is told it is busy; nothing sticks.
    rt.start_delay_ms.store(200, Ordering::SeqCst);
    let starts_before = rt.count("start");
    let (a, b) = tokio::join!(svc.start(&alice, demo), svc.start(&alice, demo));
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
            .find(|w| w.id == demo)
            .unwrap()
            .state,
        WorkspaceState::Running
    );

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn a_failed_start_says_why_and_a_later_start_recovers(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);
    let demo = stopped(&svc, &alice, "demo").await;

    rt.fail_start.store(true, Ordering::SeqCst);
    let v = svc.start(&alice, demo).await.unwrap();
    assert_eq!(v.state, WorkspaceState::Failed);
    assert!(v.reason.unwrap().contains("exited with status 1"));
    rt.fail_start.store(false, Ordering::SeqCst);
    assert_eq!(
        svc.start(&alice, demo).await.unwrap().state,
        WorkspaceState::Running
    );

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn restart_goes_through_stop_and_start(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);
    let demo = svc.create(&alice, "demo", "jupyter-python").await.unwrap();

    let stops = rt.count("stop");
    assert_eq!(
        svc.restart(&alice, demo.id).await.unwrap().state,
        WorkspaceState::Running
    );
    assert_eq!(rt.count("stop"), stops + 1);

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn deleting_a_running_workspace_destroys_it(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);
    let demo = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    assert_eq!(demo.state, WorkspaceState::Running);

    svc.delete(&alice, demo.id).await.unwrap();
    assert!(svc
        .list(&alice)
        .await
        .unwrap()
        .iter()
        .all(|w| w.id != demo.id));
    assert_eq!(rt.count("destroy"), 1);

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn a_failed_provision_is_retried_by_start(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);

    rt.fail_provision.store(true, Ordering::SeqCst);
    let v = svc.create(&alice, "flaky", "jupyter-python").await.unwrap();
    assert_eq!(v.state, WorkspaceState::Failed);
    rt.fail_provision.store(false, Ordering::SeqCst);
    assert_eq!(
        svc.start(&alice, v.id).await.unwrap().state,
        WorkspaceState::Running
    );

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn account_deletion_deletes_only_that_users_workspaces(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let (_rt, svc) = service(&db, 3, 2);
    svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    stopped(&svc, &alice, "second").await;
    svc.create(&bob, "demo", "vscode-node").await.unwrap();

    // Account deletion deletes the user's workspaces through the service.
    svc.before_account_deletion(&Actor::user(&alice, None), alice.id)
        .await
        .unwrap();
    assert!(svc.list(&alice).await.unwrap().is_empty());
    assert_eq!(
        svc.list(&bob).await.unwrap().len(),
        1,
        "other users are untouched"
    );

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

/// Limits hold under concurrency: two Starts of different workspaces racing for the last
/// running slot, and two creates racing for the last workspace slot, let exactly one through.
async fn limits_hold_under_concurrent_requests(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 1);
    let a = stopped(&svc, &alice, "a").await;
    let b = stopped(&svc, &alice, "b").await;
    rt.start_delay_ms.store(100, Ordering::SeqCst);
    let (ra, rb) = tokio::join!(svc.start(&alice, a), svc.start(&alice, b));
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

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn port_shares_are_the_owners_to_change_and_go_with_the_workspace(backend: Backend) {
    use qingting_core::workspaces::{sharing_of, PortSharing};
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bobby").await;
    let (_rt, svc) = service(&db, 3, 2);
    let demo = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    let mut changes = svc.subscribe();

    svc.share_port(&alice, demo.id, 8000, PortSharing::Users)
        .await
        .unwrap();
    svc.share_port(&alice, demo.id, 3000, PortSharing::Public)
        .await
        .unwrap();
    // Changing it again replaces the row; the gateway's answer follows at once.
    svc.share_port(&alice, demo.id, 8000, PortSharing::Public)
        .await
        .unwrap();
    assert_eq!(
        changes.recv().await.unwrap(),
        qingting_core::workspaces::Changed::User(alice.id)
    );
    let shares = svc.port_shares(demo.id).await.unwrap();
    assert_eq!(
        shares,
        vec![(3000, PortSharing::Public), (8000, PortSharing::Public)]
    );
    let target = svc.resolve("alice", "demo").await.unwrap().unwrap();
    assert_eq!(sharing_of(&target.shared_ports, 8000), PortSharing::Public);
    assert_eq!(sharing_of(&target.shared_ports, 8001), PortSharing::Private);
    svc.share_port(&alice, demo.id, 8000, PortSharing::Private)
        .await
        .unwrap();
    let target = svc.resolve("alice", "demo").await.unwrap().unwrap();
    assert_eq!(sharing_of(&target.shared_ports, 8000), PortSharing::Private);

    // Nobody else shares it, and port 0 is no port.
    assert!(matches!(
        svc.share_port(&bob, demo.id, 8000, PortSharing::Public)
            .await,
        Err(WorkspaceError::NotFound)
    ));
    assert!(matches!(
        svc.share_port(&alice, demo.id, 0, PortSharing::Public)
            .await,
        Err(WorkspaceError::InvalidPort)
    ));

    // Deleted with the workspace.
    svc.delete(&alice, demo.id).await.unwrap();
    assert!(svc.port_shares(demo.id).await.unwrap().is_empty());

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn cpu_use_inside_counts_as_activity(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);
    let demo = svc.create(&alice, "demo", "jupyter-python").await.unwrap();
    // Long enough that the first look below comes before it even on a loaded machine.
    let idle = Duration::from_secs(2);
    rt.cpu.lock().unwrap().insert(demo.id, 10.0);
    // The first look only notes its CPU time; it has not been idle long enough anyway.
    assert_eq!(svc.stop_idle(idle).await.unwrap(), 0);
    // A build: a second of CPU time every 0.75 s, for longer than the idle time. Work, not
    // idleness.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(750)).await;
        *rt.cpu.lock().unwrap().get_mut(&demo.id).unwrap() += 1.0;
        assert_eq!(
            svc.stop_idle(idle).await.unwrap(),
            0,
            "a busy workspace was stopped"
        );
    }
    // A trickle (an idle IDE's housekeeping) is not.
    tokio::time::sleep(idle + Duration::from_millis(500)).await;
    *rt.cpu.lock().unwrap().get_mut(&demo.id).unwrap() += 0.001;
    assert_eq!(svc.stop_idle(idle).await.unwrap(), 1);
    assert_eq!(
        svc.get(&alice, demo.id).await.unwrap().state,
        WorkspaceState::Stopped
    );

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

/// A script that polls until its workspace has failed and then acts at once (the CLI's
/// `--wait`, then the next command) finds the workspace free: the outcome shows before the
/// operation has written its audit entry and given up its claim, and the request waits for
/// that rather than being told the workspace is busy.
async fn acting_as_soon_as_an_outcome_shows_is_not_busy(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (rt, svc) = service(&db, 3, 2);
    let demo = stopped(&svc, &alice, "demo").await;
    let by = Actor::user(&alice, None);
    rt.fail_start.store(true, Ordering::SeqCst);
    for round in 0..40 {
        svc.begin(&by, &alice, demo, Action::Start)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        // As tight as a poll can be: the next request goes the moment the state says so.
        let failed = async {
            while svc.get(&alice, demo).await.unwrap().state != WorkspaceState::Failed {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), failed)
            .await
            .unwrap_or_else(|_| panic!("round {round}: never failed"));
    }
    svc.begin(&by, &alice, demo, Action::Delete).await.unwrap();

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}
