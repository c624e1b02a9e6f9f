//! The warm pool against a fake runtime, on SQLite, Postgres and MariaDB: a create takes a
//! running IDE over instead of starting one, the pool refills, yields to users (their starts
//! and the host's cap), is never idle-stopped, survives a restart and backs off from a
//! template that cannot start.

use qingting_core::audit::Actor;
use qingting_core::{
    accounts::{self, Account},
    store::DatabaseConnection,
    templates,
    testing::{Backend, TestDatabase},
    workspaces::{
        runtime::fake::FakeRuntime, PoolStatus, PoolStep, WorkspaceError, WorkspaceLimits,
        WorkspaceService, WorkspaceState,
    },
};
use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

qingting_core::on_every_backend!(
    a_create_takes_a_running_ide_from_the_pool_and_the_pool_refills,
    pooled_ides_belong_to_nobody_and_are_never_idle_stopped,
    refusals_leave_the_pool_as_it_was,
    a_full_host_retires_a_pooled_ide_for_a_user,
    pooled_ides_are_adopted_after_a_restart,
    a_template_that_cannot_start_backs_off_and_leaves_no_rows,
    the_pool_waits_while_a_user_starts,
);

const POOLED: &str = "jupyter-python";

fn service(
    db: &DatabaseConnection,
    rt: &Arc<FakeRuntime>,
    pool: u32,
    max_running: u64,
) -> Arc<WorkspaceService> {
    let limits = WorkspaceLimits {
        max_per_user: 2,
        max_running_per_user: 2,
    };
    let svc = WorkspaceService::new(db.clone(), rt.clone(), templates::builtin(), limits, None)
        .with_max_running(max_running)
        .with_pool(vec![(POOLED.to_string(), pool)])
        .unwrap();
    Arc::new(svc)
}

async fn register(db: &DatabaseConnection, name: &str) -> Account {
    accounts::register(db, name, "correct horse").await.unwrap()
}

async fn status(svc: &WorkspaceService) -> (u32, u32) {
    let s: Vec<PoolStatus> = svc.pool_status().await.unwrap();
    (s[0].ready, s[0].starting)
}

/// Fills the pool until it shows `want` (ready, starting): what comes before it finishes in
/// the background. Fails after 30 s.
async fn fill_until(svc: &WorkspaceService, want: (u32, u32)) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        svc.fill_pool().await.unwrap();
        let now = status(svc).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pool stayed at {now:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_create_takes_a_running_ide_from_the_pool_and_the_pool_refills(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let rt = Arc::new(FakeRuntime::default());
    let svc = service(&db, &rt, 2, u64::MAX);

    svc.fill_pool().await.unwrap();
    assert_eq!((rt.count("provision"), rt.count("start")), (2, 2));
    assert_eq!(status(&svc).await, (2, 0));
    let pooled_ids: Vec<String> = rt.calls.lock().unwrap().clone();

    let ws = svc.create(&alice, "demo", POOLED).await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Running);
    assert_eq!(rt.count("start"), 2, "no IDE was started for the create");
    assert!(pooled_ids.contains(&format!("start {}", ws.id)));
    let list = svc.list(&alice).await.unwrap();
    assert_eq!(
        list.iter()
            .map(|w| (w.name.as_str(), w.state))
            .collect::<Vec<_>>(),
        [("demo", WorkspaceState::Running)]
    );
    assert_eq!(status(&svc).await, (1, 0));

    svc.fill_pool().await.unwrap();
    assert_eq!(rt.count("start"), 3);
    assert_eq!(status(&svc).await, (2, 0));

    // A template without a pool starts its IDE as before.
    let other = svc.create(&alice, "web", "vscode-node").await.unwrap();
    assert_eq!(other.state, WorkspaceState::Running);
    assert_eq!(rt.count("start"), 4);

    // The taken workspace is an ordinary one: it stops, starts and is deleted as such.
    svc.stop(&alice, ws.id).await.unwrap();
    assert_eq!(
        svc.start(&alice, ws.id).await.unwrap().state,
        WorkspaceState::Running
    );
    svc.delete(&alice, ws.id).await.unwrap();
    assert_eq!(status(&svc).await, (2, 0));

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn pooled_ides_belong_to_nobody_and_are_never_idle_stopped(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let rt = Arc::new(FakeRuntime::default());
    let svc = service(&db, &rt, 3, u64::MAX);
    svc.fill_pool().await.unwrap();

    assert!(svc.list(&alice).await.unwrap().is_empty());
    assert_eq!(svc.stop_idle(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(status(&svc).await, (3, 0));
    assert_eq!(rt.count("stop"), 0);
    // Three pooled IDEs, more than a user may run: they count against no user's limits.
    svc.create(&alice, "one", POOLED).await.unwrap();
    svc.create(&alice, "two", POOLED).await.unwrap();
    assert_eq!(rt.count("start"), 3);
    // A workspace taken from the pool is idle-stopped like any other.
    assert_eq!(svc.stop_idle(Duration::ZERO).await.unwrap(), 2);

    assert!(WorkspaceService::new(
        db.clone(),
        rt.clone(),
        templates::builtin(),
        WorkspaceLimits {
            max_per_user: 1,
            max_running_per_user: 1
        },
        None
    )
    .with_pool(vec![("no-such-template".into(), 1)])
    .unwrap_err()
    .contains("no-such-template"));

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn refusals_leave_the_pool_as_it_was(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let rt = Arc::new(FakeRuntime::default());
    let svc = service(&db, &rt, 2, u64::MAX);
    svc.fill_pool().await.unwrap();

    svc.create(&alice, "demo", POOLED).await.unwrap();
    svc.fill_pool().await.unwrap();
    assert!(matches!(
        svc.create(&alice, "demo", POOLED).await,
        Err(WorkspaceError::NameTaken)
    ));
    assert!(matches!(
        svc.create(&alice, "Bad Name", POOLED).await,
        Err(WorkspaceError::InvalidName)
    ));
    svc.create(&alice, "two", POOLED).await.unwrap();
    svc.fill_pool().await.unwrap();
    // Two is alice's limit: the third is refused before the pool is touched.
    assert!(matches!(
        svc.create(&alice, "three", POOLED).await,
        Err(WorkspaceError::LimitReached(_))
    ));
    assert_eq!(status(&svc).await, (2, 0));
    assert_eq!(svc.list(&alice).await.unwrap().len(), 2);

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn a_full_host_retires_a_pooled_ide_for_a_user(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let (alice, bob) = (register(&db, "alice").await, register(&db, "bob").await);
    let rt = Arc::new(FakeRuntime::default());
    // The pool would keep three, the host takes three: the pool leaves one slot for users.
    let svc = service(&db, &rt, 3, 3);
    svc.fill_pool().await.unwrap();
    assert_eq!(status(&svc).await, (2, 0));

    // Templates without a pool: the free slot first, then a pooled IDE makes room.
    let web = svc.create(&alice, "web", "vscode-node").await.unwrap();
    assert_eq!(web.state, WorkspaceState::Running);
    assert_eq!(status(&svc).await, (2, 0));
    let bobs = svc.create(&bob, "web", "vscode-node").await.unwrap();
    assert_eq!(bobs.state, WorkspaceState::Running);
    assert_eq!(status(&svc).await, (1, 0));
    // The retired one is removed; none replaces it while the host is full.
    svc.fill_pool().await.unwrap();
    assert_eq!(rt.count("destroy"), 1);
    assert_eq!(status(&svc).await, (1, 0));
    // Taking the last pooled IDE needs no room; after that the host is full for everyone.
    svc.create(&alice, "demo", POOLED).await.unwrap();
    assert_eq!(status(&svc).await, (0, 0));
    svc.fill_pool().await.unwrap();
    assert_eq!(status(&svc).await, (0, 0));
    let carol = register(&db, "carol").await;
    let late = svc.create(&carol, "late", "vscode-node").await.unwrap();
    assert_eq!(late.state, WorkspaceState::Queued);
    // Room again: the line comes before the pool.
    svc.stop(&alice, web.id).await.unwrap();
    svc.fill_pool().await.unwrap();
    assert_eq!(
        status(&svc).await,
        (0, 0),
        "carol waits: the pool takes nothing"
    );
    assert_eq!(svc.start_queued().await.unwrap(), 1);
    for _ in 0..200 {
        if svc.get(&carol, late.id).await.unwrap().state == WorkspaceState::Running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        svc.get(&carol, late.id).await.unwrap().state,
        WorkspaceState::Running
    );
    // Then the pool refills, up to one slot short of the cap.
    svc.stop(&bob, bobs.id).await.unwrap();
    svc.stop(&carol, late.id).await.unwrap();
    svc.fill_pool().await.unwrap();
    assert_eq!(status(&svc).await, (1, 0));

    // The cap lowered under a full pool (a restart with another setting): pooled IDEs go
    // first, and users still get in.
    let roomy = service(&db, &rt, 3, 10);
    roomy.fill_pool().await.unwrap();
    assert_eq!(status(&roomy).await, (3, 0));
    let tight = service(&db, &rt, 3, 2);
    tight.fill_pool().await.unwrap();
    assert_eq!(
        status(&tight).await,
        (1, 0),
        "alice's demo and one pooled IDE"
    );
    let again = tight.create(&carol, "later", "vscode-node").await.unwrap();
    assert_eq!(again.state, WorkspaceState::Running);
    assert_eq!(status(&tight).await, (0, 0));

    drop((svc, roomy, tight));
    drop(db);
    tdb.drop_database().await;
}

async fn pooled_ides_are_adopted_after_a_restart(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    // The fake runtime outlives the service, as IDEs outlive the server.
    let rt = Arc::new(FakeRuntime::default());
    let before = service(&db, &rt, 2, u64::MAX);
    before.fill_pool().await.unwrap();
    drop(before);

    let after = service(&db, &rt, 2, u64::MAX);
    after.recover().await.unwrap();
    after.fill_pool().await.unwrap();
    assert_eq!(rt.count("start"), 2, "adopted, not started again");
    assert_eq!(status(&after).await, (2, 0));
    let ws = after.create(&alice, "demo", POOLED).await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Running);
    assert_eq!(rt.count("start"), 2);

    // A pooled IDE that died with the server is started again, still owned by nobody.
    let dead = after.pool_status().await.unwrap();
    assert_eq!(dead[0].ready, 1);
    rt.running
        .lock()
        .unwrap()
        .iter_mut()
        .for_each(|(_, up)| *up = false);
    let again = service(&db, &rt, 2, u64::MAX);
    again.recover().await.unwrap();
    fill_until(&again, (2, 0)).await;
    assert_eq!(again.list(&alice).await.unwrap().len(), 1);

    // Restarted without a pool: what the old one left is removed, users' workspaces stay.
    let without = service(&db, &rt, 0, u64::MAX);
    without.fill_pool().await.unwrap();
    assert_eq!(status(&without).await, (0, 0));
    assert_eq!(rt.running.lock().unwrap().len(), 1);
    assert_eq!(without.list(&alice).await.unwrap().len(), 1);

    drop((after, again, without));
    drop(db);
    tdb.drop_database().await;
}

async fn a_template_that_cannot_start_backs_off_and_leaves_no_rows(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let rt = Arc::new(FakeRuntime::default());
    rt.fail_start.store(true, Ordering::SeqCst);
    let svc = service(&db, &rt, 2, u64::MAX);

    assert_eq!(svc.tend_pool().await.unwrap(), PoolStep::Worked);
    assert_eq!(
        svc.tend_pool().await.unwrap(),
        PoolStep::Worked,
        "the failed one is removed"
    );
    assert_eq!(
        svc.tend_pool().await.unwrap(),
        PoolStep::Idle,
        "and no other tried yet"
    );
    assert_eq!((rt.count("start"), rt.count("destroy")), (1, 1));
    assert_eq!(status(&svc).await, (0, 0));

    // A create finds no pooled IDE and starts its own, with the reason if it fails.
    let ws = svc.create(&alice, "demo", POOLED).await.unwrap();
    assert_eq!(ws.state, WorkspaceState::Failed);
    rt.fail_start.store(false, Ordering::SeqCst);
    assert_eq!(
        svc.start(&alice, ws.id).await.unwrap().state,
        WorkspaceState::Running
    );

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn the_pool_waits_while_a_user_starts(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let rt = Arc::new(FakeRuntime::default());
    let svc = service(&db, &rt, 1, u64::MAX);
    // Long enough that the pool's first look below comes while alice's start is under way.
    rt.start_delay_ms.store(3_000, Ordering::SeqCst);

    let ws = svc
        .create_in_background(&Actor::user(&alice, None), &alice, "web", "vscode-node")
        .await
        .unwrap();
    assert_eq!(ws.state, WorkspaceState::Creating);
    assert_eq!(svc.tend_pool().await.unwrap(), PoolStep::Idle);
    assert_eq!(status(&svc).await, (0, 0));
    let deadline = Instant::now() + Duration::from_secs(30);
    while svc.get(&alice, ws.id).await.unwrap().state != WorkspaceState::Running {
        assert!(Instant::now() < deadline, "alice's workspace never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fill_until(&svc, (1, 0)).await;

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}
