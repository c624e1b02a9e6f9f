//! The account HTTP surface end to end (real server, real database), on SQLite, Postgres and
//! MariaDB: register, sign-in, sign-out, cookies, redirects, rate limits, CSRF, health. Every
//! scenario starts its own server on a fresh database and runs on each backend.

use qingting_core::{
    config::Limit,
    testing::{Backend, TestDatabase},
    Config,
};
use reqwest::{header, redirect::Policy, Client, StatusCode};

qingting_core::on_every_backend!(
    health_answers_with_the_version_and_a_request_id,
    registration_signs_in_with_a_host_only_http_only_cookie,
    refused_registrations_say_why_and_sign_nobody_in,
    protected_pages_send_strangers_to_sign_in_and_come_back,
    sign_out_ends_the_session_for_good,
    wrong_password_and_unknown_user_answer_alike,
    sign_in_ignores_off_site_next_and_rotates_the_session_id,
    the_fifth_sign_in_from_one_address_in_a_minute_waits,
    a_plain_form_sign_in_redirects_to_next,
    cross_site_posts_and_api_gets_are_refused,
    github_sign_in_is_not_offered_without_a_client_id,
    unknown_pages_are_a_404_page,
);

struct Harness {
    base: String,
    client: Client,
    server: qingting_server::RunningServer,
    _dir: tempfile::TempDir,
}

async fn start(tdb: &TestDatabase) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(tdb.url.clone()),
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    };
    config.rate_limits.login_per_ip = Limit {
        max: 4,
        per_seconds: 60,
    };
    config.rate_limits.register_per_ip = Limit {
        max: 5,
        per_seconds: 60,
    };
    // The public URL must name the real port, so bind first via a probe listener.
    let port = qingting_core::testing::free_port();
    config.listen = format!("127.0.0.1:{port}");
    config.public_url = format!("http://localhost:{port}");
    let server = qingting_server::start(config).await.expect("server starts");
    let client = Client::builder().redirect(Policy::none()).build().unwrap();
    Harness {
        base: format!("http://127.0.0.1:{}", server.addr.port()),
        client,
        server,
        _dir: dir,
    }
}

/// A browser-like caller: its own address (via the trusted proxy header) and cookie.
struct Caller<'a> {
    h: &'a Harness,
    ip: String,
    cookie: Option<String>,
}

impl<'a> Caller<'a> {
    fn new(h: &'a Harness, ip: &str) -> Self {
        Self {
            h,
            ip: ip.into(),
            cookie: None,
        }
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .h
            .client
            .post(format!("{}{}", self.h.base, path))
            .header("x-forwarded-for", &self.ip)
            .form(form);
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = req.send().await.unwrap();
        self.remember(&res);
        res
    }

    async fn get(&mut self, path: &str) -> reqwest::Response {
        let mut req = self
            .h
            .client
            .get(format!("{}{}", self.h.base, path))
            .header("x-forwarded-for", &self.ip)
            .header(header::ACCEPT, "text/html");
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = req.send().await.unwrap();
        self.remember(&res);
        res
    }

    fn remember(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap().to_string();
            if pair.ends_with('=') || v.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
    }

    async fn me(&mut self) -> serde_json::Value {
        let res = self.post("/api/me", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }
}

/// Registers `name` (password "correct horse") from `ip`; returns the signed-in caller.
async fn registered<'a>(h: &'a Harness, ip: &str, name: &str) -> Caller<'a> {
    let mut caller = Caller::new(h, ip);
    let res = caller
        .post(
            "/api/register",
            &[("username", name), ("password", "correct horse")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    caller
}

async fn health_answers_with_the_version_and_a_request_id(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    let res = h
        .client
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(res_has_request_id(&h).await);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn registration_signs_in_with_a_host_only_http_only_cookie(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    let mut alice = Caller::new(&h, "10.0.0.1");
    let res = alice
        .post(
            "/api/register",
            &[("username", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let set_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .expect("session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.starts_with("qingting_session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain="),
        "host-only: {set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    assert_eq!(res.json::<String>().await.unwrap(), "/workspaces");
    assert_eq!(alice.me().await["username"], "alice");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn refused_registrations_say_why_and_sign_nobody_in(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    registered(&h, "10.0.0.1", "alice").await;

    let mut other = Caller::new(&h, "10.0.0.2");
    let res = other
        .post(
            "/api/register",
            &[("username", "alice"), ("password", "another one")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("That user name is taken."));
    let res = other
        .post(
            "/api/register",
            &[("username", "Bad-Name"), ("password", "long enough")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("lowercase letter"));
    let res = other
        .post(
            "/api/register",
            &[("username", "bob"), ("password", "short")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("at least 8 characters"));
    let res = other.post("/api/register", &[("username", "bob")]).await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "missing field is a 400, not a 500"
    );
    assert!(
        other.me().await.is_null(),
        "refused registrations sign nobody in"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Protected page: anonymous → login with next; signed in → the page with the name.
async fn protected_pages_send_strangers_to_sign_in_and_come_back(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "10.0.0.1", "alice").await;

    let mut other = Caller::new(&h, "10.0.0.2");
    let res = other.get("/workspaces").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/login?next=%2Fworkspaces");
    let res = alice.get("/workspaces").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("alice"));

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Sign-out ends the session for good (the old cookie is dead server-side).
async fn sign_out_ends_the_session_for_good(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "10.0.0.1", "alice").await;
    assert_eq!(alice.me().await["username"], "alice");

    let old_cookie = alice.cookie.clone();
    let res = alice.post("/api/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    alice.cookie = old_cookie;
    assert!(
        alice.me().await.is_null(),
        "a logged-out session id must not work again"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn wrong_password_and_unknown_user_answer_alike(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    registered(&h, "10.0.0.1", "alice").await;

    let mut carol = Caller::new(&h, "10.0.0.3");
    let wrong = carol
        .post(
            "/api/login",
            &[("username", "alice"), ("password", "wrong horse")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = wrong.text().await.unwrap();
    let missing = carol
        .post(
            "/api/login",
            &[("username", "nobody"), ("password", "wrong horse")],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, missing.text().await.unwrap());

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn sign_in_ignores_off_site_next_and_rotates_the_session_id(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    registered(&h, "10.0.0.1", "alice").await;

    let mut carol = Caller::new(&h, "10.0.0.3");
    let res = carol
        .post(
            "/api/login",
            &[
                ("username", "alice"),
                ("password", "correct horse"),
                ("next", "//evil.com"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<String>().await.unwrap(),
        "/workspaces",
        "off-site next ignored"
    );
    let first = carol.cookie.clone().unwrap();
    let res = carol
        .post(
            "/api/login",
            &[
                ("username", "alice"),
                ("password", "correct horse"),
                ("next", "/workspaces?x=1"),
            ],
        )
        .await;
    assert_eq!(res.json::<String>().await.unwrap(), "/workspaces?x=1");
    let second = carol.cookie.clone().unwrap();
    assert_ne!(first, second, "session id rotates on login");
    let mut stale = Caller {
        h: &h,
        ip: "10.0.0.3".into(),
        cookie: Some(first),
    };
    assert!(stale.me().await.is_null(), "the pre-rotation id is dead");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Rate limit per address: the fifth attempt in a minute is refused with Retry-After.
async fn the_fifth_sign_in_from_one_address_in_a_minute_waits(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    registered(&h, "10.0.0.1", "alice").await;

    let mut guesser = Caller::new(&h, "10.0.0.9");
    for _ in 0..4 {
        let res = guesser
            .post(
                "/api/login",
                &[("username", "alice"), ("password", "guess guess")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = guesser
        .post(
            "/api/login",
            &[("username", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert!(res.text().await.unwrap().contains("RateLimited"));
    // A plain HTML form gets the error back on its page, still with Retry-After.
    let res = html_login(&h, "10.0.0.9", &[("username", "alice"), ("password", "x")]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .contains("__err="));
    // Another address is unaffected.
    let mut fresh = Caller::new(&h, "10.0.0.10");
    let res = fresh
        .post(
            "/api/login",
            &[("username", "alice"), ("password", "correct horse")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Plain form post (no WASM): success is a 302 to next.
async fn a_plain_form_sign_in_redirects_to_next(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    registered(&h, "10.0.0.1", "alice").await;

    let form = [
        ("username", "alice"),
        ("password", "correct horse"),
        ("next", "/workspaces"),
    ];
    let res = html_login(&h, "10.0.0.11", &form).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/workspaces");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// CSRF: cross-site origins refused (even with the right password); GET on the API refused.
async fn cross_site_posts_and_api_gets_are_refused(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    registered(&h, "10.0.0.1", "alice").await;

    let res = h
        .client
        .post(format!("{}/api/login", h.base))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[("username", "alice"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = h
        .client
        .post(format!("{}/api/login", h.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("username", "alice"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = h
        .client
        .get(format!("{}/api/me", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn github_sign_in_is_not_offered_without_a_client_id(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    let res = h
        .client
        .post(format!("{}/api/sign-in-options", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["github"],
        false
    );
    let page = h
        .client
        .get(format!("{}/login", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in") && !page.contains("Sign in with GitHub"));
    let res = h
        .client
        .get(format!("{}/auth/github/start", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[header::LOCATION], "/login?github=disabled");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Unknown pages are a 404 page, not an error.
async fn unknown_pages_are_a_404_page(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    let res = h
        .client
        .get(format!("{}/no/such/page", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// A sign-in posted by a plain HTML form (no WASM), from the login page.
async fn html_login(h: &Harness, ip: &str, form: &[(&str, &str)]) -> reqwest::Response {
    h.client
        .post(format!("{}/api/login", h.base))
        .header("x-forwarded-for", ip)
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, format!("{}/login", h.base))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn res_has_request_id(h: &Harness) -> bool {
    let res = h
        .client
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    res.headers().contains_key("x-request-id")
}
