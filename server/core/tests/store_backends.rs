//! The store and account rules, run against SQLite, Postgres and MariaDB alike.

use qingting_core::{
    accounts::{self, AccountError},
    store::{self, DbSessionStore},
    testing::{Backend, TestDatabase},
};
use tower_sessions::{
    session::{Id, Record},
    session_store::ExpiredDeletion,
    SessionStore,
};

async fn suite(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    // Migrating an up-to-date database is a no-op.
    store::migrate(&db).await.unwrap();
    store::ping(&db).await.unwrap();

    // Registration and its refusals.
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

    // Two registrations racing for one name: exactly one wins.
    let (a, b) = tokio::join!(
        accounts::register(&db, "carol", "password one"),
        accounts::register(&db, "carol", "password two"),
    );
    assert!(
        a.is_ok() ^ b.is_ok(),
        "exactly one registration must win: {a:?} {b:?}"
    );

    // Sign-in: same error for wrong password and unknown user.
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

    // Sessions: create, load, update, expire, delete.
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

    eprintln!("store suite passed on {}", backend.name());
    drop(db);
    tdb.drop_database().await;
}

#[tokio::test]
async fn store_suite_on_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn store_suite_on_postgres() {
    suite(Backend::Postgres).await;
}

#[tokio::test]
async fn store_suite_on_mariadb() {
    suite(Backend::MySql).await;
}
