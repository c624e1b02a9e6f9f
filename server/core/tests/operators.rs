//! What operators rely on, on SQLite, Postgres and MariaDB: roles (the first account is the
//! admin), suspension, and the audit log (written with each change, filtered, exported in
//! order, pruned). Every scenario starts from a fresh database and runs on each backend.

use qingting_core::{
    accounts::{self, Account, AccountError, GithubIdentity, Role},
    audit::{self, Action, Actor, Entry, Filter, Outcome},
    store::{
        self, entity::audit_event, migration::Migrator, session_store::session_alive,
        DatabaseConnection, DbSessionStore,
    },
    templates,
    testing::{Backend, TestDatabase},
    workspaces::{
        runtime::fake::FakeRuntime, Action as WsAction, WorkspaceError, WorkspaceLimits,
        WorkspaceService,
    },
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sea_orm_migration::MigratorTrait;
use std::sync::{atomic::Ordering, Arc};
use tower_sessions::{
    session::{Id, Record},
    SessionStore,
};

qingting_core::on_every_backend!(
    the_first_account_is_the_admin,
    the_first_account_through_github_is_the_admin,
    an_upgraded_instance_makes_its_oldest_account_the_admin,
    roles_change_with_an_entry_and_the_last_admin_stays,
    a_suspended_account_is_signed_out_and_cannot_sign_in,
    account_changes_write_their_entry_only_when_they_happen,
    workspace_requests_are_logged_with_who_whom_where_and_outcome,
    the_log_is_filtered_exported_in_order_and_pruned,
    quotas_override_the_instances_limits_and_name_themselves,
    a_full_host_queues_requests_and_starts_them_in_order,
    the_last_admin_who_can_sign_in_stays,
    the_directory_searches_any_case_and_sorts_by_last_seen,
);

async fn register(db: &DatabaseConnection, name: &str) -> Account {
    accounts::register(db, name, "correct horse").await.unwrap()
}

fn from(account: &Account, address: &str) -> Actor {
    Actor::user(account, Some(address.into()))
}

/// Every entry, oldest first.
async fn entries(db: &DatabaseConnection) -> Vec<Entry> {
    let mut all = Vec::new();
    audit::for_each(db, &Filter::default(), |e| {
        all.push(e);
        Ok(())
    })
    .await
    .unwrap();
    all
}

/// A stored session of `uid` that expires in an hour; returns its id.
async fn live_session(db: &DatabaseConnection, uid: i64) -> String {
    let store = DbSessionStore::new(db.clone());
    let mut rec = Record {
        id: Id::default(),
        data: [("uid".to_string(), serde_json::json!(uid))].into(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    store.create(&mut rec).await.unwrap();
    rec.id.to_string()
}

async fn the_first_account_is_the_admin(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    // Registrations racing for the first account: exactly one wins the role.
    let mut racing = tokio::task::JoinSet::new();
    for name in ["alice", "bob", "carol", "dave"] {
        let db = db.clone();
        racing.spawn(async move { accounts::register(&db, name, "correct horse").await });
    }
    let made: Vec<Account> = racing
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut admins = 0;
    for a in &made {
        if accounts::role_of(&db, a.id).await.unwrap() == Some(Role::Admin) {
            admins += 1;
        }
    }
    assert_eq!(admins, 1, "one first account");
    let later = register(&db, "erin").await;
    assert_eq!(
        accounts::role_of(&db, later.id).await.unwrap(),
        Some(Role::Member)
    );
    let p = accounts::profile(&db, later.id).await.unwrap().unwrap();
    assert_eq!((p.role, p.suspended), (Role::Member, false));

    drop(db);
    tdb.drop_database().await;
}

async fn the_first_account_through_github_is_the_admin(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let octo = GithubIdentity {
        id: 583231,
        login: "octocat".into(),
    };
    let (first, created) = accounts::sign_in_with_github(&db, &octo).await.unwrap();
    assert!(created);
    assert_eq!(
        accounts::role_of(&db, first.id).await.unwrap(),
        Some(Role::Admin)
    );
    let second = register(&db, "alice").await;
    assert_eq!(
        accounts::role_of(&db, second.id).await.unwrap(),
        Some(Role::Member)
    );

    drop(db);
    tdb.drop_database().await;
}

async fn an_upgraded_instance_makes_its_oldest_account_the_admin(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = store::connect(&tdb.url).await.unwrap();
    // The schema before roles existed, with accounts in it.
    Migrator::up(&db, Some(6)).await.unwrap();
    for (name, at) in [("zed", 100), ("amy", 200)] {
        db.execute_unprepared(&format!(
            "INSERT INTO users (username, created_at) VALUES ('{name}', {at})"
        ))
        .await
        .unwrap();
    }
    store::migrate(&db).await.unwrap();
    let zed = accounts::find_by_username(&db, "zed")
        .await
        .unwrap()
        .unwrap();
    let amy = accounts::find_by_username(&db, "amy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        accounts::role_of(&db, zed.id).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(
        accounts::role_of(&db, amy.id).await.unwrap(),
        Some(Role::Member)
    );

    drop(db);
    tdb.drop_database().await;
}

async fn roles_change_with_an_entry_and_the_last_admin_stays(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;

    assert!(matches!(
        accounts::set_role(&db, &Actor::system(), "alice", Role::Member).await,
        Err(AccountError::LastAdmin)
    ));
    assert!(matches!(
        accounts::set_role(&db, &Actor::system(), "nobody", Role::Admin).await,
        Err(AccountError::NoSuchUser(n)) if n == "nobody"
    ));
    assert!(entries(&db).await.is_empty(), "refusals change nothing");

    accounts::set_role(&db, &from(&alice, "10.0.0.1"), "bob", Role::Admin)
        .await
        .unwrap();
    // Granting what someone already has writes nothing.
    accounts::set_role(&db, &Actor::system(), "bob", Role::Admin)
        .await
        .unwrap();
    accounts::set_role(&db, &Actor::system(), "alice", Role::Member)
        .await
        .unwrap();
    assert_eq!(
        accounts::role_of(&db, bob.id).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(
        accounts::role_of(&db, alice.id).await.unwrap(),
        Some(Role::Member)
    );

    let log = entries(&db).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (
            log[0].action.as_str(),
            log[0].actor.as_str(),
            log[0].actor_id,
            log[0].address.as_deref(),
            log[0].subject.as_deref(),
            log[0].subject_user_id,
            log[0].outcome.as_str(),
            log[0].detail.as_deref()
        ),
        (
            "role_change",
            "alice",
            Some(alice.id),
            Some("10.0.0.1"),
            Some("bob"),
            Some(bob.id),
            "ok",
            Some("admin")
        )
    );
    assert_eq!(
        (log[1].actor.as_str(), log[1].detail.as_deref()),
        ("system", Some("member"))
    );

    drop(db);
    tdb.drop_database().await;
}

async fn a_suspended_account_is_signed_out_and_cannot_sign_in(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let octo = GithubIdentity {
        id: 7,
        login: "bobgh".into(),
    };
    accounts::bind_github(&db, &Actor::system(), bob.id, &octo)
        .await
        .unwrap();
    let phone = live_session(&db, bob.id).await;
    let laptop = live_session(&db, bob.id).await;
    let alices = live_session(&db, alice.id).await;

    assert!(matches!(
        accounts::set_suspended(&db, &from(&alice, "10.0.0.1"), alice.id, true).await,
        Err(AccountError::OwnAccount)
    ));
    accounts::set_suspended(&db, &from(&alice, "10.0.0.1"), bob.id, true)
        .await
        .unwrap();
    for sid in [&phone, &laptop] {
        assert!(
            !session_alive(&db, sid, bob.id).await.unwrap(),
            "signed out everywhere"
        );
    }
    assert!(session_alive(&db, &alices, alice.id).await.unwrap());
    assert!(
        accounts::profile(&db, bob.id)
            .await
            .unwrap()
            .unwrap()
            .suspended
    );

    // The right password learns it is suspended; a wrong one learns nothing more.
    assert!(matches!(
        accounts::authenticate(&db, "bob", "correct horse").await,
        Err(AccountError::Suspended)
    ));
    assert!(matches!(
        accounts::authenticate(&db, "bob", "wrong horse").await,
        Err(AccountError::InvalidCredentials)
    ));
    assert!(matches!(
        accounts::sign_in_with_github(&db, &octo).await,
        Err(AccountError::Suspended)
    ));

    accounts::set_suspended(&db, &from(&alice, "10.0.0.1"), bob.id, false)
        .await
        .unwrap();
    assert_eq!(
        accounts::authenticate(&db, "bob", "correct horse")
            .await
            .unwrap()
            .id,
        bob.id
    );
    let actions: Vec<(String, String, Option<String>)> = entries(&db)
        .await
        .into_iter()
        .map(|e| (e.action, e.actor, e.subject))
        .collect();
    let bob_name = Some("bob".to_string());
    assert_eq!(
        actions[1..],
        [
            ("suspend".into(), "alice".into(), bob_name.clone()),
            ("resume".into(), "alice".into(), bob_name),
        ]
    );

    drop(db);
    tdb.drop_database().await;
}

async fn account_changes_write_their_entry_only_when_they_happen(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let by = from(&alice, "192.0.2.7");

    assert!(
        accounts::change_password(&db, &by, alice.id, "wrong", "brand new pass")
            .await
            .is_err()
    );
    assert!(
        accounts::change_password(&db, &by, alice.id, "correct horse", "short")
            .await
            .is_err()
    );
    assert!(
        entries(&db).await.is_empty(),
        "a refused change writes no entry"
    );

    accounts::change_password(&db, &by, alice.id, "correct horse", "brand new pass")
        .await
        .unwrap();
    let gh = GithubIdentity {
        id: 99,
        login: "alicegh".into(),
    };
    accounts::bind_github(&db, &by, alice.id, &gh)
        .await
        .unwrap();
    accounts::unbind_github(&db, &by, alice.id).await.unwrap();
    accounts::delete_user_rows(&db, &by, alice.id)
        .await
        .unwrap();

    let log = entries(&db).await;
    let got: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.detail.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("password_change", None),
            ("github_link", Some("alicegh")),
            ("github_unlink", Some("alicegh")),
            ("account_delete", None),
        ]
    );
    assert!(log.iter().all(|e| e.actor_id == Some(alice.id)
        && e.subject_user_id == Some(alice.id)
        && e.address.as_deref() == Some("192.0.2.7")));
    // The entry outlives the account it names.
    let mine = Filter {
        user_id: Some(alice.id),
        ..Default::default()
    };
    assert_eq!(audit::list(&db, &mine, None, 10).await.unwrap().len(), 4);

    drop(db);
    tdb.drop_database().await;
}

async fn workspace_requests_are_logged_with_who_whom_where_and_outcome(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let rt = Arc::new(FakeRuntime::default());
    let limits = WorkspaceLimits {
        max_per_user: 1,
        max_running_per_user: 1,
    };
    let svc = Arc::new(WorkspaceService::new(
        db.clone(),
        rt.clone(),
        templates::builtin(),
        limits,
        None,
    ));
    let by_bob = from(&bob, "198.51.100.4");

    let ws = svc
        .create_in_background(&by_bob, &bob, "demo", "jupyter-python")
        .await
        .unwrap();
    // Over bob's quota: refused, and logged with the limit's message.
    let over = svc
        .create_in_background(&by_bob, &bob, "more", "jupyter-python")
        .await
        .unwrap_err();
    assert!(matches!(over, WorkspaceError::LimitReached(_)), "{over}");
    wait_running(&svc, &bob, ws.id).await;
    // An admin stops bob's workspace: the admin acts, bob's workspace is the subject.
    let by_alice = from(&alice, "10.0.0.1");
    svc.begin(&by_alice, &bob, ws.id, WsAction::Stop)
        .await
        .unwrap();
    wait_state(&svc, &bob, ws.id, "stopped").await;
    // A start the runtime fails: accepted, then a second entry says it failed and why.
    rt.fail_start.store(true, Ordering::SeqCst);
    svc.begin(&by_bob, &bob, ws.id, WsAction::Start)
        .await
        .unwrap();
    wait_state(&svc, &bob, ws.id, "failed").await;
    svc.begin(&by_bob, &bob, ws.id, WsAction::Delete)
        .await
        .unwrap();
    wait_gone(&svc, &bob, ws.id).await;
    // Another user's workspace is not found, and that is logged too.
    let nope = svc.begin(&by_alice, &alice, ws.id, WsAction::Start).await;
    assert!(matches!(nope, Err(WorkspaceError::NotFound)));

    let log: Vec<Seen> = entries(&db)
        .await
        .into_iter()
        .map(|e| (e.action, e.actor, e.subject, e.outcome, e.address))
        .collect();
    let bob_demo = Some("bob/demo".to_string());
    let (b, a) = (
        Some("198.51.100.4".to_string()),
        Some("10.0.0.1".to_string()),
    );
    let row =
        |act: &str, who: &str, subject: &Option<String>, outcome: &str, addr: &Option<String>| {
            (
                act.to_string(),
                who.to_string(),
                subject.clone(),
                outcome.to_string(),
                addr.clone(),
            )
        };
    assert_eq!(
        log,
        [
            row("workspace_create", "bob", &bob_demo, "ok", &b),
            row(
                "workspace_create",
                "bob",
                &Some("bob/more".into()),
                "refused",
                &b
            ),
            row("workspace_stop", "alice", &bob_demo, "ok", &a),
            row("workspace_start", "bob", &bob_demo, "ok", &b),
            row("workspace_start", "bob", &bob_demo, "failed", &b),
            row("workspace_delete", "bob", &bob_demo, "ok", &b),
            row("workspace_start", "alice", &None, "refused", &a),
        ]
    );
    assert!(detail(&db, Action::WorkspaceCreate, Outcome::Refused)
        .await
        .contains("workspaces"));
    assert!(detail(&db, Action::WorkspaceStart, Outcome::Failed)
        .await
        .contains("exited with status 1"));

    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

/// An entry as these tests compare it: action, actor, subject, outcome, address.
type Seen = (String, String, Option<String>, String, Option<String>);

/// The detail of the newest entry of `action` with `outcome`.
async fn detail(db: &DatabaseConnection, action: Action, outcome: Outcome) -> String {
    let f = Filter {
        action: Some(action),
        outcome: Some(outcome),
        ..Default::default()
    };
    audit::list(db, &f, None, 1).await.unwrap()[0]
        .detail
        .clone()
        .unwrap()
}

/// How long a background operation may take here: the fake runtime answers at once, but a
/// loaded machine runs twelve scenarios on three databases at a time.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

async fn wait_state(svc: &WorkspaceService, owner: &Account, id: i64, state: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if svc.get(owner, id).await.unwrap().state.as_str() == state {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("workspace {id} never became {state}");
}

async fn wait_running(svc: &WorkspaceService, owner: &Account, id: i64) {
    wait_state(svc, owner, id, "running").await
}

async fn wait_gone(svc: &WorkspaceService, owner: &Account, id: i64) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if svc.get(owner, id).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("workspace {id} was never deleted");
}

async fn the_log_is_filtered_exported_in_order_and_pruned(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let day = 86_400;
    let now = store::now_unix();
    // 1,200 entries (more than an export page), spread over the last 600 days.
    for i in 0..1200i64 {
        let (who, outcome) = match i % 3 {
            0 => (&alice, Outcome::Ok),
            1 => (&bob, Outcome::Ok),
            _ => (&bob, Outcome::Refused),
        };
        let subject = audit::Subject::user(who);
        audit::record(
            &db,
            &from(who, "10.0.0.9"),
            Action::SignIn,
            &subject,
            outcome,
            None,
        )
        .await
        .unwrap();
        audit_event::Entity::update_many()
            .col_expr(
                audit_event::Column::At,
                // Half a day off the boundaries, so that a second passing changes nothing.
                sea_orm::sea_query::Expr::value(now - (1199 - i) / 2 * day - day / 2),
            )
            .filter(audit_event::Column::Id.eq(entry_id(&db).await))
            .exec(&db)
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    let n = audit::for_each(&db, &Filter::default(), |e| {
        ids.push(e.id);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(n, 1200);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let bobs_refusals = Filter {
        user_id: Some(bob.id),
        outcome: Some(Outcome::Refused),
        ..Default::default()
    };
    let page = audit::list(&db, &bobs_refusals, None, 50).await.unwrap();
    assert_eq!(page.len(), 50);
    assert!(page
        .iter()
        .all(|e| e.actor == "bob" && e.outcome == "refused"));
    assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let next = audit::list(&db, &bobs_refusals, Some(page[49].id), 1000)
        .await
        .unwrap();
    assert_eq!(page.len() + next.len(), 400);
    assert!(next[0].id < page[49].id);

    let last_week = Filter {
        since: Some(now - 7 * day),
        ..Default::default()
    };
    let recent = audit::list(&db, &last_week, None, 1000).await.unwrap();
    assert!(!recent.is_empty() && recent.iter().all(|e| e.at >= now - 7 * day));

    // Keep a year: what is older goes, the rest stays.
    let older = audit::list(
        &db,
        &Filter {
            until: Some(now - 365 * day),
            ..Default::default()
        },
        None,
        2000,
    )
    .await
    .unwrap()
    .len() as u64;
    assert!(older > 0);
    assert_eq!(audit::prune(&db, 365).await.unwrap(), older);
    assert_eq!(entries(&db).await.len() as u64, 1200 - older);

    drop(db);
    tdb.drop_database().await;
}

/// The id of the entry written last.
async fn entry_id(db: &DatabaseConnection) -> i64 {
    audit::list(db, &Filter::default(), None, 1).await.unwrap()[0].id
}

async fn quotas_override_the_instances_limits_and_name_themselves(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let svc = Arc::new(WorkspaceService::new(
        db.clone(),
        Arc::new(FakeRuntime::default()),
        templates::builtin(),
        WorkspaceLimits {
            max_per_user: 1,
            max_running_per_user: 1,
        },
        None,
    ));
    svc.create(&bob, "one", "jupyter-python").await.unwrap();
    let e = svc.create(&bob, "two", "jupyter-python").await.unwrap_err();
    assert!(e.to_string().contains("workspaces.max_per_user"), "{e}");

    let bad = accounts::Quota {
        memory_mb: Some(64),
        ..Default::default()
    };
    assert!(matches!(
        accounts::set_quota(&db, &Actor::system(), bob.id, bad).await,
        Err(AccountError::InvalidField {
            field: "memory_mb",
            ..
        })
    ));
    let more = accounts::Quota {
        workspaces: Some(3),
        running: Some(2),
        memory_mb: Some(1024),
    };
    accounts::set_quota(&db, &from(&alice, "10.0.0.1"), bob.id, more)
        .await
        .unwrap();
    assert_eq!(accounts::quota_of(&db, bob.id).await.unwrap(), more);
    svc.create(&bob, "two", "jupyter-python").await.unwrap();
    let e = svc
        .create(&bob, "three", "jupyter-python")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("at most 2 workspaces at once (your quota)"),
        "{e}"
    );
    svc.stop(
        &bob,
        svc.find_by_name(&bob, "two").await.unwrap().unwrap().id,
    )
    .await
    .unwrap();
    svc.create(&bob, "three", "jupyter-python").await.unwrap();
    let e = svc
        .create(&bob, "four", "jupyter-python")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("at most 3 workspaces (your quota)"),
        "{e}"
    );
    // Alice keeps the instance's limits.
    svc.create(&alice, "mine", "jupyter-python").await.unwrap();
    assert!(svc.create(&alice, "more", "jupyter-python").await.is_err());

    let changed = detail(&db, Action::QuotaChange, Outcome::Ok).await;
    assert_eq!(changed, "workspaces=3 running=2 memory_mb=1024");
    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn a_full_host_queues_requests_and_starts_them_in_order(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let (alice, bob, carol) = (
        register(&db, "alice").await,
        register(&db, "bob").await,
        register(&db, "carol").await,
    );
    let rt = Arc::new(FakeRuntime::default());
    let svc = Arc::new(
        WorkspaceService::new(
            db.clone(),
            rt.clone(),
            templates::builtin(),
            WorkspaceLimits {
                max_per_user: 3,
                max_running_per_user: 1,
            },
            None,
        )
        .with_max_running(1),
    );
    let a = svc.create(&alice, "a", "jupyter-python").await.unwrap();
    assert_eq!(a.state.as_str(), "running");
    // The host is full: bob and carol wait in line, in the order they asked.
    let b = svc.create(&bob, "b", "jupyter-python").await.unwrap();
    let c = svc.create(&carol, "c", "jupyter-python").await.unwrap();
    assert_eq!((b.state.as_str(), c.state.as_str()), ("queued", "queued"));
    let places = svc.queue_positions().await.unwrap();
    assert_eq!((places[&b.id], places[&c.id]), (1, 2));
    assert_eq!(rt.count("provision"), 1, "nothing of theirs runs yet");
    // Waiting counts against their own running limit, and a second Start is busy.
    let e = svc.create(&bob, "b2", "jupyter-python").await.unwrap_err();
    assert!(matches!(e, WorkspaceError::LimitReached(_)), "{e}");
    assert!(matches!(
        svc.start(&bob, b.id).await,
        Err(WorkspaceError::Busy("queued"))
    ));
    // Carol cancels, then asks again: she is behind bob again (the end of the line).
    let cancelled = svc.stop(&carol, c.id).await.unwrap();
    assert_eq!(cancelled.state.as_str(), "stopped");
    assert_eq!(rt.count("stop"), 0, "nothing ran, so nothing was stopped");
    assert_eq!(
        svc.start(&carol, c.id).await.unwrap().state.as_str(),
        "queued"
    );
    assert_eq!(svc.queue_positions().await.unwrap()[&c.id], 2);
    // Nothing frees up: nothing starts.
    assert_eq!(svc.start_queued().await.unwrap(), 0);
    // Alice stops: bob's turn, and only his.
    svc.stop(&alice, a.id).await.unwrap();
    assert_eq!(svc.start_queued().await.unwrap(), 1);
    wait_running(&svc, &bob, b.id).await;
    assert_eq!(
        svc.get(&carol, c.id).await.unwrap().state.as_str(),
        "queued"
    );
    assert_eq!(svc.queue_positions().await.unwrap()[&c.id], 1);
    svc.delete(&bob, b.id).await.unwrap();
    assert_eq!(svc.start_queued().await.unwrap(), 1);
    wait_running(&svc, &carol, c.id).await;
    assert!(svc.queue_positions().await.unwrap().is_empty());

    let queued = detail(&db, Action::WorkspaceCreate, Outcome::Ok).await;
    assert!(
        queued.contains("queued: This server is at its limit of 1"),
        "{queued}"
    );
    drop(svc);
    drop(db);
    tdb.drop_database().await;
}

async fn the_last_admin_who_can_sign_in_stays(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    // Alone, the admin may delete the account (the next registration is the admin then).
    let solo = register(&db, "solo").await;
    accounts::delete_user_rows(&db, &Actor::system(), solo.id)
        .await
        .unwrap();
    let bob = register(&db, "bob").await;
    let sys = Actor::system();
    assert!(matches!(
        accounts::set_suspended(&db, &sys, alice.id, true).await,
        Err(AccountError::LastAdmin)
    ));
    assert!(matches!(
        accounts::delete_user_rows(&db, &sys, alice.id).await,
        Err(AccountError::LastAdmin)
    ));
    // A suspended admin is no admin to count on: bob, made admin then suspended, does not
    // let alice step down.
    accounts::set_role(&db, &sys, "bob", Role::Admin)
        .await
        .unwrap();
    accounts::set_suspended(&db, &sys, bob.id, true)
        .await
        .unwrap();
    assert!(matches!(
        accounts::set_role(&db, &sys, "alice", Role::Member).await,
        Err(AccountError::LastAdmin)
    ));
    accounts::set_suspended(&db, &sys, bob.id, false)
        .await
        .unwrap();
    accounts::set_role(&db, &sys, "alice", Role::Member)
        .await
        .unwrap();
    // Two admins demoting each other at once: one of them stays.
    accounts::set_role(&db, &sys, "alice", Role::Admin)
        .await
        .unwrap();
    let (d1, d2) = tokio::join!(
        accounts::set_role(&db, &sys, "alice", Role::Member),
        accounts::set_role(&db, &sys, "bob", Role::Member)
    );
    assert!(d1.is_ok() != d2.is_ok(), "{d1:?} {d2:?}");
    let admins = [alice.id, bob.id];
    let mut left = 0;
    for id in admins {
        if accounts::role_of(&db, id).await.unwrap() == Some(Role::Admin) {
            left += 1;
        }
    }
    assert_eq!(left, 1);
    drop(db);
    tdb.drop_database().await;
}

async fn the_directory_searches_any_case_and_sorts_by_last_seen(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let bob = register(&db, "bob").await;
    let _carol = register(&db, "carol").await;
    accounts::update_profile(
        &db,
        bob.id,
        accounts::ProfileInput {
            username: "bob".into(),
            display_name: "Ada Lovelace".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let names =
        |list: Vec<accounts::Member>| list.into_iter().map(|m| m.username).collect::<Vec<_>>();
    use accounts::MemberSort;
    assert_eq!(
        names(
            accounts::directory(&db, "LOVE", MemberSort::Name)
                .await
                .unwrap()
        ),
        ["bob"]
    );
    assert_eq!(
        names(
            accounts::directory(&db, "ali", MemberSort::Name)
                .await
                .unwrap()
        ),
        ["alice"]
    );
    assert!(accounts::directory(&db, "%", MemberSort::Name)
        .await
        .unwrap()
        .is_empty());
    assert!(accounts::directory(&db, "_", MemberSort::Name)
        .await
        .unwrap()
        .is_empty());
    accounts::seen(&db, alice.id, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    accounts::seen(&db, bob.id, None).await.unwrap();
    assert_eq!(
        names(
            accounts::directory(&db, "", MemberSort::LastSeen)
                .await
                .unwrap()
        ),
        ["bob", "alice", "carol"],
        "most recent first, never seen last"
    );
    assert_eq!(accounts::census(&db).await.unwrap(), (3, 0));
    drop(db);
    tdb.drop_database().await;
}
