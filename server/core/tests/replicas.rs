//! Several replicas on one database, each scenario on SQLite, Postgres and MariaDB: rate
//! limits counted together, one leader at a time, the change feed, claims that keep two
//! replicas off one workspace, and the leader finishing what a dead replica left.
//! A "replica" here is what a `qingting` process has of its own: its connection pool, its
//! rate limiter, its workspace service; `server/tests/replicas.rs` runs real processes.

use qingting_core::audit::Actor;
use qingting_core::{
    accounts::{self, Account},
    config::{ChangeFeedKind, Limit},
    rate_limit::{RateLimiter, Refused, KNOWN_ADDRESS_SECS},
    replicas::{
        feed::{ChangeFeed, Changed},
        lease,
    },
    store::{entity::workspace, now_unix, DatabaseConnection},
    templates,
    testing::{Backend, TestDatabase},
    workspaces::{
        runtime::fake::FakeRuntime, Action, WorkspaceError, WorkspaceLimits, WorkspaceService,
        WorkspaceState, WorkspaceView,
    },
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

qingting_core::on_every_backend!(
    rate_limits_count_across_replicas,
    a_guesser_locks_out_only_their_own_address,
    many_addresses_hit_the_overall_limit_except_known_ones,
    one_replica_leads_and_another_takes_over,
    the_change_feed_reaches_the_other_replicas,
    two_replicas_never_work_on_one_workspace,
    a_request_through_the_other_replica_follows_a_shown_outcome,
    the_leader_finishes_what_a_dead_replica_left,
    exactly_one_reaper_acts,
    limits_hold_across_replicas,
);

const THREE: Limit = Limit {
    max: 3,
    per_seconds: 60,
};
const FIVE: Limit = Limit {
    max: 5,
    per_seconds: 300,
};

fn limited(r: Result<(), Refused>) -> u64 {
    match r {
        Err(Refused::Limited { retry_after_secs }) => retry_after_secs,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Two replicas' own connections to one database.
async fn two(tdb: &TestDatabase) -> (DatabaseConnection, DatabaseConnection) {
    (tdb.connect().await, tdb.connect().await)
}

async fn rate_limits_count_across_replicas(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    let (a, b) = (RateLimiter::new(da), RateLimiter::new(db));
    let t0 = now_unix();
    a.check_at("login-ip", "10.0.0.1", THREE, t0).await.unwrap();
    b.check_at("login-ip", "10.0.0.1", THREE, t0).await.unwrap();
    a.check_at("login-ip", "10.0.0.1", THREE, t0 + 1)
        .await
        .unwrap();
    // The fourth, on either replica, is one too many.
    assert_eq!(
        limited(b.check_at("login-ip", "10.0.0.1", THREE, t0 + 10).await),
        50
    );
    assert_eq!(
        limited(a.check_at("login-ip", "10.0.0.1", THREE, t0 + 10).await),
        50
    );
    // Other keys and buckets are separate; the window starts over when it ends.
    b.check_at("login-ip", "10.0.0.2", THREE, t0).await.unwrap();
    b.check_at("register-ip", "10.0.0.1", THREE, t0)
        .await
        .unwrap();
    a.check_at("login-ip", "10.0.0.1", THREE, t0 + 60)
        .await
        .unwrap();

    // Concurrent attempts on both replicas: exactly `max` pass.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let rl = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            rl.check_at("login-ip", "192.0.2.9", THREE, t0).await
        }));
    }
    let mut passed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => passed += 1,
            Err(Refused::Limited { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(passed, 3);
    tdb.drop_database().await;
}

async fn a_guesser_locks_out_only_their_own_address(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    let (a, b) = (RateLimiter::new(da), RateLimiter::new(db));
    let t0 = now_unix();
    for i in 0..5 {
        let rl = if i % 2 == 0 { &a } else { &b };
        rl.check_login_at("alice", "10.0.0.66", FIVE, t0)
            .await
            .unwrap();
    }
    limited(a.check_login_at("alice", "10.0.0.66", FIVE, t0).await);
    b.check_login_at("alice", "10.0.0.1", FIVE, t0)
        .await
        .unwrap();
    a.check_login_at("bob", "10.0.0.66", FIVE, t0)
        .await
        .expect("other accounts from that address are separate");
    // A known address still has its own limit.
    a.remember_sign_in_at("carol", "10.0.0.1", t0)
        .await
        .unwrap();
    for _ in 0..5 {
        b.check_login_at("carol", "10.0.0.1", FIVE, t0)
            .await
            .unwrap();
    }
    limited(b.check_login_at("carol", "10.0.0.1", FIVE, t0).await);
    tdb.drop_database().await;
}

async fn many_addresses_hit_the_overall_limit_except_known_ones(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    let (a, b) = (RateLimiter::new(da), RateLimiter::new(db));
    let t0 = now_unix();
    // Signed in on replica A; exempt on replica B.
    a.remember_sign_in_at("alice", "10.0.0.1", t0)
        .await
        .unwrap();
    for i in 0..10 {
        let addr = format!("192.0.2.{i}");
        for _ in 0..5 {
            b.check_login_at("alice", &addr, FIVE, t0).await.unwrap();
        }
    }
    assert_eq!(
        limited(a.check_login_at("alice", "192.0.2.200", FIVE, t0).await),
        300
    );
    b.check_login_at("alice", "10.0.0.1", FIVE, t0)
        .await
        .expect("a known address is not locked out by the crowd");
    a.check_login_at("bob", "192.0.2.201", FIVE, t0)
        .await
        .expect("the overall limit is per account");
    // The exemption ends with its time to live: 10.0.0.1's attempts count towards the
    // overall limit again (5 of its 50).
    let later = t0 + KNOWN_ADDRESS_SECS + 1;
    for _ in 0..5 {
        a.check_login_at("alice", "10.0.0.1", FIVE, later)
            .await
            .unwrap();
    }
    for i in 0..9 {
        let addr = format!("198.51.100.{i}");
        for _ in 0..5 {
            a.check_login_at("alice", &addr, FIVE, later).await.unwrap();
        }
    }
    limited(a.check_login_at("alice", "10.0.0.2", FIVE, later).await);
    tdb.drop_database().await;
}

async fn one_replica_leads_and_another_takes_over(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    // Expiry counts whole seconds; 3 s leaves a loaded machine room between two calls.
    let ttl = Duration::from_secs(3);
    assert!(lease::try_acquire(&da, "work", "a", ttl).await.unwrap());
    assert!(!lease::try_acquire(&db, "work", "b", ttl).await.unwrap());
    assert!(
        lease::try_acquire(&da, "work", "a", ttl).await.unwrap(),
        "the holder renews"
    );
    assert!(
        lease::try_acquire(&da, "other", "b", ttl).await.unwrap(),
        "leases are per name"
    );
    // A stops renewing: B takes it once it lapsed, and A no longer has it.
    tokio::time::sleep(ttl + Duration::from_millis(1100)).await;
    assert!(lease::try_acquire(&db, "work", "b", ttl).await.unwrap());
    assert!(!lease::try_acquire(&da, "work", "a", ttl).await.unwrap());
    // Given up on shutdown: free at once.
    lease::release(&db, "work", "b").await.unwrap();
    assert!(lease::try_acquire(&da, "work", "a", ttl).await.unwrap());

    // `hold`: exactly one of two leads; when it goes, the other takes over.
    let a = lease::hold(da.clone(), "background", "ra".into()).await;
    let b = lease::hold(db.clone(), "background", "rb".into()).await;
    assert!(*a.borrow());
    assert!(!*b.borrow());
    drop(a);
    let mut b = b;
    tokio::time::timeout(lease::TTL + lease::RENEW * 2, b.wait_for(|leads| *leads))
        .await
        .expect("the follower takes the lead after the leader is gone")
        .unwrap();
    tdb.drop_database().await;
}

async fn the_change_feed_reaches_the_other_replicas(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    if backend == Backend::Sqlite {
        assert!(
            ChangeFeed::new(da, "a".into(), ChangeFeedKind::Auto).is_none(),
            "SQLite is one replica: no feed"
        );
        tdb.drop_database().await;
        return;
    }
    let kinds: &[ChangeFeedKind] = match backend {
        Backend::Postgres => &[ChangeFeedKind::Auto, ChangeFeedKind::Table],
        _ => &[ChangeFeedKind::Auto],
    };
    for &kind in kinds {
        let a = ChangeFeed::new(da.clone(), "a".into(), kind).unwrap();
        let b = ChangeFeed::new(db.clone(), "b".into(), kind).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        b.clone().listen(move |c| tx.send(c).is_ok());
        // The first thing a listener says is that it may have missed something.
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        if kind == ChangeFeedKind::Auto && backend == Backend::Postgres {
            assert_eq!(first.unwrap(), Some(Changed::Everything));
        }
        // The table reader starts after what is there.
        tokio::time::sleep(Duration::from_millis(500)).await;
        while rx.try_recv().is_ok() {}
        let sent = Instant::now();
        a.publish(7).await.unwrap();
        b.publish(8).await.unwrap();
        a.publish(9).await.unwrap();
        let mut heard = Vec::new();
        while heard.len() < 2 {
            let c = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{} {kind:?}: heard only {heard:?}", backend.name()))
                .unwrap();
            heard.push(c);
        }
        // At once: a poll (200 ms) at most on a quiet machine; loose for a loaded one.
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{kind:?}: {:?}",
            sent.elapsed()
        );
        assert_eq!(heard, [Changed::User(7), Changed::User(9)], "{kind:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(rx.try_recv().is_err(), "its own change is not heard back");
        drop(rx);
        a.publish(10).await.unwrap();
    }
    tdb.drop_database().await;
}

fn replica(db: &DatabaseConnection, rt: &Arc<FakeRuntime>, id: &str) -> Arc<WorkspaceService> {
    let limits = WorkspaceLimits {
        max_per_user: 10,
        max_running_per_user: 10,
    };
    Arc::new(
        WorkspaceService::new(db.clone(), rt.clone(), templates::builtin(), limits, None)
            .with_replica(id.into(), None),
    )
}

async fn register(db: &DatabaseConnection, name: &str) -> Account {
    accounts::register(db, name, "correct horse").await.unwrap()
}

/// Replicas A and B on one runtime (as Function Compute is one for every replica), and
/// alice's workspace `demo` created through A, running.
async fn two_replicas_with_a_workspace(
    tdb: &TestDatabase,
) -> (
    Arc<FakeRuntime>,
    Arc<WorkspaceService>,
    Arc<WorkspaceService>,
    Account,
    WorkspaceView,
) {
    let (da, db) = two(tdb).await;
    let rt = Arc::new(FakeRuntime::default());
    let (a, b) = (replica(&da, &rt, "ra"), replica(&db, &rt, "rb"));
    let alice = register(&da, "alice").await;
    let ws = a.create(&alice, "demo", "jupyter-python").await.unwrap();
    (rt, a, b, alice, ws)
}

async fn two_replicas_never_work_on_one_workspace(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (rt, a, b, alice, ws) = two_replicas_with_a_workspace(&tdb).await;
    rt.start_delay_ms.store(1500, Ordering::SeqCst);
    a.begin(&Actor::user(&alice, None), &alice, ws.id, Action::Restart)
        .await
        .unwrap();
    let err = b.stop(&alice, ws.id).await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::Busy("being changed on another server")),
        "{err:?}"
    );
    // Once A is done its claim is gone and B may act.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match b.stop(&alice, ws.id).await {
            Ok(v) => {
                assert_eq!(v.state, WorkspaceState::Stopped);
                tdb.drop_database().await;
                return;
            }
            Err(WorkspaceError::Busy(_)) => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("the claim was never released");
}

/// Behind a load balancer, a script's next request may reach the other replica the moment
/// the outcome shows: it waits for the first replica to give its claim up instead of being
/// told the workspace is being changed on another server.
async fn a_request_through_the_other_replica_follows_a_shown_outcome(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (rt, a, b, alice, ws) = two_replicas_with_a_workspace(&tdb).await;
    a.stop(&alice, ws.id).await.unwrap();
    let by = Actor::user(&alice, None);
    rt.fail_start.store(true, Ordering::SeqCst);
    for round in 0..20 {
        let (first, next) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        first
            .begin(&by, &alice, ws.id, Action::Start)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let failed = async {
            while next.get(&alice, ws.id).await.unwrap().state != WorkspaceState::Failed {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), failed)
            .await
            .unwrap_or_else(|_| panic!("round {round}: never failed"));
        next.start(&alice, ws.id)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    tdb.drop_database().await;
}

async fn the_leader_finishes_what_a_dead_replica_left(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    let rt = Arc::new(FakeRuntime::default());
    let alice = register(&da, "alice").await;
    let now = now_unix();
    let row = |name: &str, claimed_by: &str, claim_expires: i64| workspace::ActiveModel {
        user_id: Set(alice.id),
        name: Set(name.into()),
        template_id: Set("jupyter-python".into()),
        state: Set(WorkspaceState::Creating.as_str().into()),
        created_at: Set(now),
        updated_at: Set(now),
        claimed_by: Set(Some(claimed_by.into())),
        claim_expires: Set(Some(claim_expires)),
        ..Default::default()
    };
    // A dead replica's create (its claim lapsed), and a live one's (renewed, in the future).
    let dead = row("orphan", "dead#1", now - 1).insert(&da).await.unwrap();
    let alive = row("busy", "alive#1", now + 600).insert(&da).await.unwrap();

    // Every state the owner could see while it is finished, polled every millisecond.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watch = {
        let (db, seen, id) = (da.clone(), seen.clone(), dead.id);
        tokio::spawn(async move {
            loop {
                if let Ok(Some(now)) = workspace::Entity::find_by_id(id).one(&db).await {
                    let mut seen = seen.lock().unwrap();
                    if seen.last() != Some(&now.state) {
                        seen.push(now.state);
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let b = replica(&db, &rt, "rb");
    let leads = lease::hold(db.clone(), lease::BACKGROUND, "rb".into()).await;
    b.run_background(leads, None).await;
    for _ in 0..100 {
        let got = workspace::Entity::find_by_id(dead.id)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        // Running, and its claim released once done.
        if got.state == "running" && got.claimed_by.is_none() {
            let busy = workspace::Entity::find_by_id(alive.id)
                .one(&db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                busy.state, "creating",
                "a live replica's work is left alone"
            );
            assert_eq!(rt.count("provision"), 1);
            watch.abort();
            let seen = seen.lock().unwrap().clone();
            assert!(
                !seen.iter().any(|s| s == "failed"),
                "carried on without passing through failed: {seen:?}"
            );
            tdb.drop_database().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the abandoned create was never finished");
}

async fn exactly_one_reaper_acts(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    // Each replica with a runtime of its own, to tell whose reaper stopped what.
    let (rt_a, rt_b) = (
        Arc::new(FakeRuntime::default()),
        Arc::new(FakeRuntime::default()),
    );
    let (a, b) = (replica(&da, &rt_a, "ra"), replica(&db, &rt_b, "rb"));
    let alice = register(&da, "alice").await;
    for name in ["one", "two", "three"] {
        a.create(&alice, name, "jupyter-python").await.unwrap();
    }
    let idle = Some(Duration::from_secs(1));
    let leads_a = lease::hold(da.clone(), lease::BACKGROUND, "ra".into()).await;
    let leads_b = lease::hold(db.clone(), lease::BACKGROUND, "rb".into()).await;
    assert!(*leads_a.borrow() && !*leads_b.borrow());
    // The follower starts first: were it to reap, it would find them idle at once (it never
    // saw their traffic).
    b.run_background(leads_b, idle).await;
    a.run_background(leads_a, idle).await;
    for _ in 0..100 {
        let states: Vec<_> = a
            .list(&alice)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.state)
            .collect();
        if states.iter().all(|s| *s == WorkspaceState::Stopped) {
            assert_eq!(rt_a.count("stop"), 3, "{:?}", rt_a.calls.lock().unwrap());
            assert_eq!(rt_b.count("stop"), 0, "{:?}", rt_b.calls.lock().unwrap());
            tdb.drop_database().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the idle workspaces were never stopped");
}

async fn limits_hold_across_replicas(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (da, db) = two(&tdb).await;
    let rt = Arc::new(FakeRuntime::default());
    // Two replicas with the given limits (and host cap), on their own connections.
    let pair = |per_user: u64, running: u64, host: u64| {
        let limits = WorkspaceLimits {
            max_per_user: per_user,
            max_running_per_user: running,
        };
        let make = |db: &DatabaseConnection, id: &str| {
            Arc::new(
                WorkspaceService::new(db.clone(), rt.clone(), templates::builtin(), limits, None)
                    .with_replica(id.into(), None)
                    .with_max_running(host),
            )
        };
        (make(&da, "ra"), make(&db, "rb"))
    };
    let alice = register(&da, "alice").await;
    let running = |list: &[qingting_core::workspaces::WorkspaceView]| {
        list.iter()
            .filter(|w| w.state == WorkspaceState::Running)
            .count()
    };

    // Eight creates at once, half through each replica, three allowed.
    let (a, b) = pair(3, 10, u64::MAX);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            svc.create(&alice, &format!("ws{i}"), "jupyter-python")
                .await
        }));
    }
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) | Err(WorkspaceError::LimitReached(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    let all = a.list(&alice).await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    for w in &all {
        a.stop(&alice, w.id).await.unwrap();
    }

    // Three starts at once through two replicas, two running allowed per user; then, with
    // room per user but one running allowed on the host, one (the others wait in line).
    for (per_user_running, host, want) in [(2, u64::MAX, 2), (10, 1, 1)] {
        let (a, b) = pair(3, per_user_running, host);
        let mut tasks = Vec::new();
        for (i, w) in all.iter().enumerate() {
            let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (alice, id) = (alice.clone(), w.id);
            tasks.push(tokio::spawn(async move { svc.start(&alice, id).await }));
        }
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) | Err(WorkspaceError::LimitReached(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        let list = a.list(&alice).await.unwrap();
        assert_eq!(running(&list), want, "{list:?}");
        for w in list.iter().filter(|w| w.state == WorkspaceState::Running) {
            a.stop(&alice, w.id).await.unwrap();
        }
    }
    tdb.drop_database().await;
}
