//! The store and account rules, run against SQLite, Postgres and MariaDB alike. Every
//! scenario starts from a fresh database and runs on each backend.

use qingting_core::{
    accounts::{self, Account, AccountError, GithubIdentity, ProfileInput},
    audit::Actor,
    store::{self, DatabaseConnection, DbSessionStore},
    testing::{Backend, TestDatabase},
};
use tower_sessions::{
    session::{Id, Record},
    session_store::ExpiredDeletion,
    SessionStore,
};

qingting_core::on_every_backend!(
    migrating_an_up_to_date_database_changes_nothing,
    registration_refusals_say_why_and_leave_no_row,
    two_registrations_for_one_name_let_one_win,
    wrong_password_and_unknown_user_are_refused_alike,
    sessions_are_created_loaded_updated_expired_and_deleted,
    profiles_are_validated_and_user_names_stay_unique,
    password_change_needs_the_current_one_and_a_strong_new_one,
    revoking_a_users_sessions_keeps_the_one_named,
    github_sign_in_creates_an_account_with_a_free_derived_name,
    a_github_id_links_to_one_account_only,
    a_github_only_account_keeps_its_only_way_in,
    deleting_an_account_removes_its_row_and_sessions,
    used_tokens_are_shared,
);

/// The actor of these scenarios' changes (the audit log is tested in `operators`).
fn by() -> Actor {
    Actor::system()
}

async fn register(db: &DatabaseConnection, name: &str) -> Account {
    accounts::register(db, name, "correct horse").await.unwrap()
}

/// A stored session of `uid` that expires in an hour.
async fn live_session(store: &DbSessionStore, uid: i64) -> Record {
    let mut rec = Record {
        id: Id::default(),
        data: [("uid".to_string(), serde_json::json!(uid))].into(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    store.create(&mut rec).await.unwrap();
    rec
}

/// Signs the GitHub user Alice (id 583231) in for the first time, while the name "alice"
/// is taken; returns the account created.
async fn octo_signs_in(db: &DatabaseConnection) -> (GithubIdentity, Account) {
    let octo = GithubIdentity {
        id: 583231,
        login: "Alice".into(),
    };
    let (gh_user, created) = accounts::sign_in_with_github(db, &octo).await.unwrap();
    assert!(created);
    (octo, gh_user)
}

async fn migrating_an_up_to_date_database_changes_nothing(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    // Migrating an up-to-date database is a no-op.
    store::migrate(&db).await.unwrap();
    store::ping(&db).await.unwrap();

    drop(db);
    tdb.drop_database().await;
}

async fn registration_refusals_say_why_and_leave_no_row(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;

    let alice = accounts::register(&db, "alice", "correct horse")
        .await
        .unwrap();
    assert_eq!(alice.username, "alice");
    assert!(matches!(
        accounts::register(&db, "alice", "another password").await,
        Err(AccountError::UsernameTaken)
    ));
    assert!(matches!(
        accounts::register(&db, "Bob", "long enough").await,
        Err(AccountError::InvalidUsername)
    ));
    assert!(matches!(
        accounts::register(&db, "bob", "short").await,
        Err(AccountError::WeakPassword(_))
    ));
    // Refusals leave no row behind.
    assert!(accounts::find_by_username(&db, "bob")
        .await
        .unwrap()
        .is_none());

    drop(db);
    tdb.drop_database().await;
}

async fn two_registrations_for_one_name_let_one_win(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;

    let (a, b) = tokio::join!(
        accounts::register(&db, "carol", "password one"),
        accounts::register(&db, "carol", "password two"),
    );
    assert!(
        a.is_ok() ^ b.is_ok(),
        "exactly one registration must win: {a:?} {b:?}"
    );

    drop(db);
    tdb.drop_database().await;
}

async fn wrong_password_and_unknown_user_are_refused_alike(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;

    let back = accounts::authenticate(&db, "alice", "correct horse")
        .await
        .unwrap();
    assert_eq!(back, alice);
    let wrong = accounts::authenticate(&db, "alice", "wrong horse")
        .await
        .unwrap_err();
    let missing = accounts::authenticate(&db, "nobody", "correct horse")
        .await
        .unwrap_err();
    assert_eq!(wrong.to_string(), missing.to_string());
    assert!(matches!(missing, AccountError::InvalidCredentials));
    assert_eq!(
        accounts::find_by_id(&db, alice.id).await.unwrap(),
        Some(alice.clone())
    );

    drop(db);
    tdb.drop_database().await;
}

async fn sessions_are_created_loaded_updated_expired_and_deleted(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;

    let store = DbSessionStore::new(db.clone());
    let mut rec = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    rec.data.insert("uid".into(), serde_json::json!(alice.id));
    store.create(&mut rec).await.unwrap();
    let loaded = store.load(&rec.id).await.unwrap().expect("session stored");
    assert_eq!(loaded.data, rec.data);
    rec.data.insert("k".into(), serde_json::json!("v"));
    store.save(&rec).await.unwrap();
    assert_eq!(store.load(&rec.id).await.unwrap().unwrap().data["k"], "v");

    let mut old = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() - time::Duration::seconds(5),
    };
    store.create(&mut old).await.unwrap();
    assert!(
        store.load(&old.id).await.unwrap().is_none(),
        "expired sessions don't load"
    );
    store.delete_expired().await.unwrap();
    store.delete(&rec.id).await.unwrap();
    assert!(store.load(&rec.id).await.unwrap().is_none());

    drop(store);
    drop(db);
    tdb.drop_database().await;
}

/// Profiles: validated, escaped on output elsewhere, user name editable and unique.
async fn profiles_are_validated_and_user_names_stay_unique(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    register(&db, "carol").await;

    let input = |u: &str, d: &str, e: &str, b: &str| ProfileInput {
        username: u.into(),
        display_name: d.into(),
        email: e.into(),
        bio: b.into(),
    };
    let p = accounts::update_profile(
        &db,
        alice.id,
        input("alice", "Alice <b>", "a@example.com", "hi\nthere"),
    )
    .await
    .unwrap();
    assert_eq!(p.display_name.as_deref(), Some("Alice <b>"));
    assert!(matches!(
        accounts::update_profile(&db, alice.id, input("alice", "", "not-an-email", "")).await,
        Err(AccountError::InvalidField { field: "email", .. })
    ));
    assert!(matches!(
        accounts::update_profile(&db, alice.id, input("alice", &"x".repeat(65), "", "")).await,
        Err(AccountError::InvalidField {
            field: "display_name",
            ..
        })
    ));
    assert!(matches!(
        accounts::update_profile(&db, alice.id, input("carol", "", "", "")).await,
        Err(AccountError::UsernameTaken)
    ));
    let unchanged = accounts::profile(&db, alice.id).await.unwrap().unwrap();
    assert_eq!(
        unchanged.email.as_deref(),
        Some("a@example.com"),
        "a refused update changes nothing"
    );
    let p = accounts::update_profile(&db, alice.id, input("alice2", "", "", ""))
        .await
        .unwrap();
    assert_eq!(
        (p.username.as_str(), p.display_name, p.email),
        ("alice2", None, None)
    );
    accounts::update_profile(&db, alice.id, input("alice", "", "", ""))
        .await
        .unwrap();

    drop(db);
    tdb.drop_database().await;
}

async fn password_change_needs_the_current_one_and_a_strong_new_one(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;

    assert!(matches!(
        accounts::change_password(&db, &by(), alice.id, "wrong", "brand new pass").await,
        Err(AccountError::WrongPassword)
    ));
    assert!(matches!(
        accounts::change_password(&db, &by(), alice.id, "correct horse", "short").await,
        Err(AccountError::WeakPassword(_))
    ));
    accounts::change_password(&db, &by(), alice.id, "correct horse", "brand new pass")
        .await
        .unwrap();
    accounts::authenticate(&db, "alice", "brand new pass")
        .await
        .unwrap();

    drop(db);
    tdb.drop_database().await;
}

async fn revoking_a_users_sessions_keeps_the_one_named(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let store = DbSessionStore::new(db.clone());

    let keep = live_session(&store, alice.id).await;
    let other = live_session(&store, alice.id).await;
    let n = store::session_store::revoke_user_sessions(&db, alice.id, Some(&keep.id))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(store.load(&keep.id).await.unwrap().is_some());
    assert!(store.load(&other.id).await.unwrap().is_none());

    drop(store);
    drop(db);
    tdb.drop_database().await;
}

/// GitHub sign-in creates an account with a derived, unique name, and finds it again.
async fn github_sign_in_creates_an_account_with_a_free_derived_name(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    register(&db, "alice").await;

    let (octo, gh_user) = octo_signs_in(&db).await;
    assert_ne!(gh_user.username, "alice", "taken names get a suffix");
    assert!(gh_user.username.starts_with("alice"));
    let (again, created) = accounts::sign_in_with_github(&db, &octo).await.unwrap();
    assert_eq!((again.id, created), (gh_user.id, false));

    drop(db);
    tdb.drop_database().await;
}

/// Linking is by GitHub id only, one id to one account and one account to one id.
async fn a_github_id_links_to_one_account_only(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let (octo, _) = octo_signs_in(&db).await;

    // Nobody else can bind that GitHub id.
    assert!(matches!(
        accounts::bind_github(&db, &by(), alice.id, &octo).await,
        Err(AccountError::GithubTaken)
    ));
    let other_gh = GithubIdentity {
        id: 99,
        login: "alice-gh".into(),
    };
    accounts::bind_github(&db, &by(), alice.id, &other_gh)
        .await
        .unwrap();
    assert!(matches!(
        accounts::bind_github(
            &db,
            &by(),
            alice.id,
            &GithubIdentity {
                id: 100,
                login: "x".into()
            }
        )
        .await,
        Err(AccountError::GithubAlreadyLinked)
    ));
    let (via_gh, _) = accounts::sign_in_with_github(&db, &other_gh).await.unwrap();
    assert_eq!(via_gh.id, alice.id);
    accounts::unbind_github(&db, &by(), alice.id).await.unwrap();

    drop(db);
    tdb.drop_database().await;
}

async fn a_github_only_account_keeps_its_only_way_in(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let (_, gh_user) = octo_signs_in(&db).await;

    // The GitHub-only account cannot drop its only way in.
    assert!(matches!(
        accounts::unbind_github(&db, &by(), gh_user.id).await,
        Err(AccountError::LastSignInMethod)
    ));
    // A GitHub-only account sets its first password without a current one.
    accounts::change_password(&db, &by(), gh_user.id, "", "first password")
        .await
        .unwrap();
    accounts::unbind_github(&db, &by(), gh_user.id)
        .await
        .unwrap();

    drop(db);
    tdb.drop_database().await;
}

async fn deleting_an_account_removes_its_row_and_sessions(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let alice = register(&db, "alice").await;
    let store = DbSessionStore::new(db.clone());
    let keep = live_session(&store, alice.id).await;
    let s1 = live_session(&store, alice.id).await;

    let removed_avatar = accounts::delete_user_rows(&db, &by(), alice.id)
        .await
        .unwrap();
    assert_eq!(removed_avatar, None);
    assert!(accounts::find_by_id(&db, alice.id).await.unwrap().is_none());
    assert!(store.load(&s1.id).await.unwrap().is_none());
    assert!(store.load(&keep.id).await.unwrap().is_none());

    drop(store);
    drop(db);
    tdb.drop_database().await;
}

/// A token nonce is used once across everything sharing the database (two stores stand for
/// two replicas), and forgotten only after it expired.
async fn used_tokens_are_shared(backend: Backend) {
    use qingting_core::store::used_tokens::DbUsedTokens;
    use qingting_gateway::token::{Claims, UsedTokens};
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let (a, b) = (
        DbUsedTokens::new(tdb.connect().await),
        DbUsedTokens::new(tdb.connect().await),
    );
    let claims = |nonce: &str, exp: i64| Claims {
        aud: 1,
        sub: 1,
        sid: "s".into(),
        exp,
        nonce: nonce.into(),
        state: None,
    };
    let (n1, n2, n3, n4) = (
        claims("n1", 1060),
        claims("n2", 1060),
        claims("n3", 1060),
        claims("n4", 2060),
    );
    assert_eq!(a.first_use("t", &n1, 1000).await, Ok(true));
    assert_eq!(b.first_use("t", &n1, 1001).await, Ok(false));
    assert_eq!(a.first_use("t", &n1, 1002).await, Ok(false));
    assert_eq!(b.first_use("t", &n2, 1002).await, Ok(true));
    // Two redemptions racing: exactly one wins.
    let (x, y) = tokio::join!(a.first_use("t", &n3, 1003), b.first_use("t", &n3, 1003));
    assert!(x.unwrap() ^ y.unwrap());
    // Expired entries are trimmed, and only those.
    assert_eq!(a.first_use("t", &n4, 2000).await, Ok(true));
    assert_eq!(b.first_use("t", &n4, 2001).await, Ok(false));
    assert_eq!(b.first_use("t", &claims("n1", 2060), 2001).await, Ok(true));

    drop((a, b));
    tdb.drop_database().await;
}
