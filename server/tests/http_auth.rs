//! The account HTTP surface end to end (real server, real database), on SQLite, Postgres and
//! MariaDB: register, sign-in, sign-out, cookies, redirects, rate limits, CSRF, health.

use qingting_core::{
    config::Limit,
    testing::{Backend, TestDatabase},
    Config,
};
use reqwest::{header, redirect::Policy, Client, StatusCode};

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
        database_url: tdb.url.clone(),
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

async fn suite(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    // Health.
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

    // Register: good, then the refusals with clear statuses and messages.
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

    // Protected page: anonymous → login with next; signed in → the page with the name.
    let res = other.get("/workspaces").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/login?next=%2Fworkspaces");
    let res = alice.get("/workspaces").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("alice"));

    // Sign-out ends the session for good (the old cookie is dead server-side).
    let old_cookie = alice.cookie.clone();
    let res = alice.post("/api/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    alice.cookie = old_cookie;
    assert!(
        alice.me().await.is_null(),
        "a logged-out session id must not work again"
    );
    alice.cookie = None;

    // Sign-in: wrong password and unknown user answer identically; next is checked.
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

    // Rate limit per address: the fifth attempt in a minute is refused with Retry-After.
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

    // Plain form post (no WASM): success is a 302 to next.
    let form = [
        ("username", "alice"),
        ("password", "correct horse"),
        ("next", "/workspaces"),
    ];
    let res = html_login(&h, "10.0.0.11", &form).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/workspaces");

    // CSRF: cross-site origins refused; GET on the API refused.
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

    // Without a GitHub client id, GitHub sign-in is not offered.
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

    // Unknown pages are a 404 page, not an error.
    let res = h
        .client
        .get(format!("{}/no/such/page", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    eprintln!("http auth suite passed on {}", backend.name());
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

#[tokio::test]
async fn http_auth_on_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn http_auth_on_postgres() {
    suite(Backend::Postgres).await;
}

#[tokio::test]
async fn http_auth_on_mariadb() {
    suite(Backend::MySql).await;
}
