//! Sign-in rate limits must slow guessing without letting anyone lock the owner out: one
//! address's failures block only that address; the account-wide limit, reached only by many
//! addresses, spares addresses that signed in to the account before. Every scenario starts
//! its own server on a fresh database and runs on SQLite, Postgres and MariaDB.

use qingting_core::{
    config::Limit,
    testing::{Backend, TestDatabase},
    Config,
};
use reqwest::{header, redirect::Policy, Client, StatusCode};

qingting_core::on_every_backend!(
    guesses_from_one_address_block_only_that_address,
    the_account_wide_limit_spares_addresses_the_owner_signed_in_from,
);

const PASSWORD: &str = "correct horse";
/// Attempts one address gets on one account per window in this test.
const PER_ADDRESS: u32 = 5;

struct Harness {
    base: String,
    client: Client,
    server: qingting_server::RunningServer,
    _dir: tempfile::TempDir,
}

async fn start(tdb: &TestDatabase) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let port = qingting_core::testing::free_port();
    let mut config = Config {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://localhost:{port}"),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(tdb.url.clone()),
        // The test is the proxy: it names each caller's address in X-Forwarded-For.
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    };
    config.rate_limits.login_per_account = Limit {
        max: PER_ADDRESS,
        per_seconds: 300,
    };
    let server = qingting_server::start(config).await.expect("server starts");
    Harness {
        base: format!("http://127.0.0.1:{port}"),
        client: Client::builder().redirect(Policy::none()).build().unwrap(),
        server,
        _dir: dir,
    }
}

async fn post(h: &Harness, ip: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    h.client
        .post(format!("{}{path}", h.base))
        .header("x-forwarded-for", ip)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn login(h: &Harness, ip: &str, password: &str) -> StatusCode {
    post(
        h,
        ip,
        "/api/login",
        &[("username", "alice"), ("password", password)],
    )
    .await
    .status()
}

/// Alice registers from her usual device's address, 10.1.0.1, and signs in from it once.
async fn alice_signs_up(h: &Harness) {
    let res = post(
        h,
        "10.1.0.1",
        "/api/register",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The owner's usual device signs in once.
    assert_eq!(login(h, "10.1.0.1", PASSWORD).await, StatusCode::OK);
}

/// A guesser at `ip` uses up that address's attempts on alice; the address is then refused
/// even with the right password, and told when to come back.
async fn guess_until_blocked(h: &Harness, ip: &str) {
    for _ in 0..PER_ADDRESS {
        assert_eq!(login(h, ip, "guess").await, StatusCode::UNAUTHORIZED);
    }
    let res = post(
        h,
        ip,
        "/api/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
}

async fn guesses_from_one_address_block_only_that_address(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    alice_signs_up(&h).await;

    // A guesser at one address uses up that address's attempts, and only those.
    guess_until_blocked(&h, "10.2.0.1").await;
    assert_eq!(
        login(&h, "10.1.0.2", PASSWORD).await,
        StatusCode::OK,
        "the owner, from an address never used before, still gets in"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn the_account_wide_limit_spares_addresses_the_owner_signed_in_from(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    alice_signs_up(&h).await;
    guess_until_blocked(&h, "10.2.0.1").await;
    // The owner signs in from a second address too.
    assert_eq!(login(&h, "10.1.0.2", PASSWORD).await, StatusCode::OK);

    // Many addresses together reach the account-wide limit...
    let mut refused_after = None;
    'crowd: for i in 0..40 {
        let ip = format!("10.3.0.{i}");
        for _ in 0..PER_ADDRESS {
            match login(&h, &ip, "guess").await {
                StatusCode::UNAUTHORIZED => {}
                StatusCode::TOO_MANY_REQUESTS => {
                    refused_after = Some(i);
                    break 'crowd;
                }
                other => panic!("{ip}: {other}"),
            }
        }
    }
    let crowd = refused_after.expect("the account-wide limit is reached");
    assert!(
        crowd >= 5,
        "several addresses' worth of guesses first ({crowd})"
    );
    assert_eq!(
        login(&h, "10.4.0.1", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "strangers now wait, even with the right password"
    );
    // ...which spares the addresses the owner signed in from.
    assert_eq!(login(&h, "10.1.0.1", PASSWORD).await, StatusCode::OK);
    assert_eq!(login(&h, "10.1.0.2", PASSWORD).await, StatusCode::OK);
    assert_eq!(
        login(&h, "10.2.0.1", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser's address stays blocked"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}
