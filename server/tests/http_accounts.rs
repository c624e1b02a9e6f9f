//! Account settings over HTTP on SQLite, Postgres and MariaDB: avatars (with every refusal,
//! decompression bombs and the upload rate limit), password change revoking other sessions,
//! GitHub sign-in / link / refusals / deletion against the in-repo fake GitHub, and that link
//! and deletion cannot be started or finished from another site. Every scenario starts its
//! own server (and fake GitHub) on a fresh database and runs on each backend.

use qingting_core::{
    testing::{png_chunk, Backend, TestDatabase},
    Config,
};
use reqwest::{header, multipart, redirect::Policy, Client, StatusCode};
use std::io::Cursor;

qingting_core::on_every_backend!(
    avatars_are_re_encoded_and_served_for_good,
    replacing_an_avatar_deletes_the_old_object,
    refused_avatars_say_why_and_keep_the_current_one,
    decompression_bombs_are_refused_from_their_header,
    a_plain_form_upload_is_sent_back_with_the_error,
    avatar_keys_cannot_be_walked_out_of,
    avatar_uploads_are_rate_limited_per_user,
    password_change_ends_other_sessions_but_this_one,
    github_sign_in_creates_an_account_named_after_the_login,
    github_callbacks_need_this_sessions_state,
    github_linking_cannot_be_started_from_another_site,
    linking_someone_elses_github_id_is_refused,
    a_github_only_account_cannot_unlink_github,
    github_delete_cannot_be_started_from_another_site,
    github_delete_needs_githubs_fresh_word,
    github_delete_happens_only_on_our_confirmation_page,
    deleting_with_the_password_removes_the_account_and_its_avatar,
);

const PASSWORD: &str = "correct horse";

struct H {
    base: String,
    client: Client,
    server: qingting_server::RunningServer,
    _dir: tempfile::TempDir,
}

async fn start(tdb: &TestDatabase) -> H {
    // The fake GitHub, in process.
    let gh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gh_base = format!("http://127.0.0.1:{}", gh.local_addr().unwrap().port());
    tokio::spawn(qingting_fake_github::serve(
        gh,
        qingting_fake_github::FakeGithubConfig {
            client_id: "cid".into(),
            client_secret: "csecret".into(),
        },
    ));
    let dir = tempfile::tempdir().unwrap();
    let port = qingting_core::testing::free_port();
    let mut config = Config {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://127.0.0.1:{port}"),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(tdb.url.clone()),
        avatar_max_bytes: 64 * 1024,
        ..Default::default()
    };
    config.github.client_id = Some("cid".into());
    config.github.client_secret = Some("csecret".into());
    config.github.authorize_url = format!("{gh_base}/login/oauth/authorize");
    config.github.token_url = format!("{gh_base}/login/oauth/access_token");
    config.github.api_url = gh_base;
    let server = qingting_server::start(config).await.expect("server starts");
    H {
        base: format!("http://127.0.0.1:{port}"),
        client: Client::builder().redirect(Policy::none()).build().unwrap(),
        server,
        _dir: dir,
    }
}

#[derive(Clone)]
struct Caller {
    cookie: Option<String>,
}

impl Caller {
    fn absorb(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            if !v.starts_with("qingting_session=") {
                continue;
            }
            let pair = v.split(';').next().unwrap().to_string();
            self.cookie = if v.contains("Max-Age=0") {
                None
            } else {
                Some(pair)
            };
        }
    }

    fn with_cookie(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        }
    }

    async fn post(&mut self, h: &H, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_with(h, path, form, &[]).await
    }

    /// A form post carrying the given extra headers (e.g. what a browser says about origin).
    async fn post_with(
        &mut self,
        h: &H,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = h.client.post(format!("{}{path}", h.base)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self.with_cookie(req).send().await.unwrap();
        self.absorb(&res);
        res
    }

    /// A form post as a browser sends it from one of our own pages.
    async fn post_here(&mut self, h: &H, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let origin = h.base.clone();
        self.post_with(
            h,
            path,
            form,
            &[
                ("origin", origin.as_str()),
                ("sec-fetch-site", "same-origin"),
                ("accept", "text/html"),
            ],
        )
        .await
    }

    async fn get(&mut self, h: &H, url: &str) -> reqwest::Response {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", h.base)
        };
        let res = self
            .with_cookie(h.client.get(url).header(header::ACCEPT, "text/html"))
            .send()
            .await
            .unwrap();
        self.absorb(&res);
        res
    }

    async fn me(&mut self, h: &H) -> serde_json::Value {
        self.post(h, "/api/me", &[]).await.json().await.unwrap()
    }

    async fn upload(&mut self, h: &H, bytes: Vec<u8>, html: bool) -> reqwest::Response {
        let form = multipart::Form::new().part(
            "avatar",
            multipart::Part::bytes(bytes).file_name("../../etc/passwd.png"),
        );
        let mut req = self.with_cookie(
            h.client
                .post(format!("{}/api/avatar", h.base))
                .multipart(form),
        );
        if html {
            req = req.header(header::ACCEPT, "text/html");
        }
        req.send().await.unwrap()
    }
}

fn image_bytes(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 % 256) as u8, (y * 3 % 256) as u8, 90])
    }));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string()
}

/// A PNG of `side`² grey one-bit pixels, all black: about `side`²/160 bytes of file that
/// decode to `side`² bytes (a decompression bomb). Written by hand, so the test needs no
/// compressor: one fixed-Huffman deflate block of a zero and back-references to it.
fn png_bomb(side: u32) -> Vec<u8> {
    let row = 1 + side.div_ceil(8) as usize; // the filter byte, then eight pixels a byte
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib_zeros(row * side as usize));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A zlib stream of `n` (≥ 1) zero bytes.
fn zlib_zeros(n: usize) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.value(1, 1); // the final block
    bits.value(1, 2); // fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        bits.code(0xC5, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(bits.bytes);
    // Adler-32 of zeros: the byte sum stays 1, the running sum grows by 1 a byte.
    out.extend_from_slice(&((((n % 65521) as u32) << 16) | 1).to_be_bytes());
    out
}

/// Deflate's bit order: fields least significant bit first, Huffman codes most significant
/// bit first.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    used: u32,
}

impl Bits {
    fn bit(&mut self, b: u32) {
        if self.used.is_multiple_of(8) {
            self.bytes.push(0);
        }
        *self.bytes.last_mut().unwrap() |= ((b & 1) as u8) << (self.used % 8);
        self.used += 1;
    }

    fn value(&mut self, v: u32, n: u32) {
        (0..n).for_each(|i| self.bit(v >> i));
    }

    fn code(&mut self, c: u32, n: u32) {
        (0..n).rev().for_each(|i| self.bit(c >> i));
    }
}

/// How a GitHub flow begins: the login page's link (a GET of this path), or the settings
/// pages' form posting this mode.
#[derive(Clone, Copy)]
enum Begin<'a> {
    Link(&'a str),
    Form(&'a str),
}

/// Drives the GitHub flow from `start` through the fake's consent page as GitHub user
/// (`login`, `id`); returns the final redirect of our callback.
async fn github_flow(h: &H, who: &mut Caller, start: Begin<'_>, login: &str, id: i64) -> String {
    let res = match start {
        Begin::Link(path) => who.get(h, path).await,
        Begin::Form(mode) => {
            who.post_here(h, "/auth/github/start", &[("mode", mode)])
                .await
        }
    };
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "start redirects to GitHub"
    );
    let authorize = url_of(&location(&res));
    let consent = h.client.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256", "PKCE is used");
    let id_s = id.to_string();
    let form = [
        ("client_id", q["client_id"].as_str()),
        ("redirect_uri", q["redirect_uri"].as_str()),
        ("state", q["state"].as_str()),
        ("code_challenge", q["code_challenge"].as_str()),
        ("login", login),
        ("user_id", id_s.as_str()),
        ("decision", "authorize"),
    ];
    let mut post_url = authorize.clone();
    post_url.set_query(None);
    let back = h
        .client
        .post(post_url.as_str())
        .form(&form)
        .send()
        .await
        .unwrap();
    let callback = location(&back);
    assert!(
        callback.starts_with(&format!("{}/auth/github/callback?", h.base)),
        "{callback}"
    );
    let res = who.get(h, &callback).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    location(&res)
}

fn url_of(s: &str) -> reqwest::Url {
    reqwest::Url::parse(s).unwrap()
}

/// Registers `name` with [`PASSWORD`]; returns the signed-in caller.
async fn registered(h: &H, name: &str) -> Caller {
    let mut caller = Caller { cookie: None };
    let res = caller
        .post(
            h,
            "/api/register",
            &[("username", name), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    caller
}

/// Uploads an image as `who`, checks it was taken, and returns its URL.
async fn uploaded(h: &H, who: &mut Caller, bytes: Vec<u8>) -> String {
    let res = who.upload(h, bytes, false).await;
    assert_eq!(res.status(), StatusCode::OK);
    let url: String = res.json::<serde_json::Value>().await.unwrap()["avatar_url"]
        .as_str()
        .unwrap()
        .into();
    assert_eq!(who.me(h).await["avatar_url"], url.as_str());
    url
}

/// The GitHub user Octo-Cat (id 4242) signs in for the first time, which creates "octocat".
async fn octocat(h: &H) -> Caller {
    let mut octo = Caller { cookie: None };
    let to = github_flow(
        h,
        &mut octo,
        Begin::Link("/auth/github/start?mode=login&next=/settings/profile"),
        "Octo-Cat",
        4242,
    )
    .await;
    assert_eq!(to, "/settings/profile");
    assert_eq!(octo.me(h).await["username"], "octocat");
    octo
}

// --- Avatars ---------------------------------------------------------------------------------

async fn avatars_are_re_encoded_and_served_for_good(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;

    let res = Caller { cookie: None }
        .upload(&h, image_bytes(image::ImageFormat::Png, 10, 10), false)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = alice
        .upload(&h, image_bytes(image::ImageFormat::Png, 300, 200), false)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let first: String = res.json::<serde_json::Value>().await.unwrap()["avatar_url"]
        .as_str()
        .unwrap()
        .into();
    assert!(
        first.starts_with("/avatars/") && first.ends_with(".png") && !first.contains("passwd"),
        "{first}"
    );
    assert_eq!(alice.me(&h).await["avatar_url"], first.as_str());
    let img = h
        .client
        .get(format!("{}{first}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(img.status(), StatusCode::OK);
    assert_eq!(img.headers()[header::CONTENT_TYPE], "image/png");
    assert!(img.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let decoded = image::load_from_memory(&img.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (256, 256),
        "re-encoded to a fixed size"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn replacing_an_avatar_deletes_the_old_object(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;
    let first = uploaded(
        &h,
        &mut alice,
        image_bytes(image::ImageFormat::Png, 300, 200),
    )
    .await;

    let res = alice
        .upload(&h, image_bytes(image::ImageFormat::Jpeg, 64, 64), false)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second: String = res.json::<serde_json::Value>().await.unwrap()["avatar_url"]
        .as_str()
        .unwrap()
        .into();
    assert_ne!(first, second);
    let gone = h
        .client
        .get(format!("{}{first}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Refusals leave the current avatar in place.
async fn refused_avatars_say_why_and_keep_the_current_one(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;
    let current = uploaded(
        &h,
        &mut alice,
        image_bytes(image::ImageFormat::Jpeg, 64, 64),
    )
    .await;

    let mut liar = b"\x89PNG\r\n\x1a\n".to_vec();
    liar.extend(std::iter::repeat_n(0x42u8, 4000));
    let full = image_bytes(image::ImageFormat::Png, 120, 120);
    let huge: Vec<u8> = (0..200 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    for (bytes, status, code) in [
        (
            b"just some text, not an image".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_image",
        ),
        (liar, StatusCode::UNPROCESSABLE_ENTITY, "corrupt"),
        (
            full[..full.len() / 2].to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "corrupt",
        ),
        (huge, StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
    ] {
        let res = alice.upload(&h, bytes, false).await;
        assert_eq!(res.status(), status, "{code}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], code);
        assert!(!body["message"].as_str().unwrap().is_empty());
        assert_eq!(
            alice.me(&h).await["avatar_url"],
            current.as_str(),
            "{code}: old avatar kept"
        );
    }

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// A decompression bomb: a small file claiming 8192² pixels is refused from its header.
async fn decompression_bombs_are_refused_from_their_header(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;
    let current = uploaded(
        &h,
        &mut alice,
        image_bytes(image::ImageFormat::Jpeg, 64, 64),
    )
    .await;

    let bomb = png_bomb(8192);
    assert!(bomb.len() < 60 * 1024, "{} bytes", bomb.len());
    let dims = image::ImageReader::with_format(Cursor::new(&bomb), image::ImageFormat::Png)
        .into_dimensions()
        .unwrap();
    assert_eq!(dims, (8192, 8192));
    let res = alice.upload(&h, bomb, false).await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "bomb refused"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "too_many_pixels");
    assert!(body["message"].as_str().unwrap().contains("4096"), "{body}");
    assert_eq!(alice.me(&h).await["avatar_url"], current.as_str());
    let still = h
        .client
        .get(format!("{}{current}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), StatusCode::OK);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// A plain form post gets redirected back to the settings page with a code.
async fn a_plain_form_upload_is_sent_back_with_the_error(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;

    let res = alice.upload(&h, b"GIF89a broken".to_vec(), true).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/settings/profile?avatar_error=corrupt");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Object keys cannot be walked out of.
async fn avatar_keys_cannot_be_walked_out_of(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    let res = h
        .client
        .get(format!(
            "{}/avatars/..%2F..%2Fsecrets%2Fsession.key",
            h.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Uploads per user are rate-limited (each one is a decode), with a clear 429.
async fn avatar_uploads_are_rate_limited_per_user(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;
    let mut bob = registered(&h, "bob").await;

    for i in 0..qingting_core::avatars::UPLOADS_PER_USER.max {
        let res = bob.upload(&h, b"not an image".to_vec(), false).await;
        assert_eq!(
            res.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "upload {i}"
        );
    }
    let res = bob
        .upload(&h, image_bytes(image::ImageFormat::Png, 10, 10), false)
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("Too many avatar uploads"));
    assert!(bob.me(&h).await["avatar_url"].is_null());
    let res = bob.upload(&h, b"GIF89a".to_vec(), true).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        "/settings/profile?avatar_error=rate_limited"
    );
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    let res = alice.upload(&h, b"not an image".to_vec(), false).await;
    assert_eq!(
        res.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the limit is per user"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

// --- Password change: other sessions end, this one continues ---------------------------------

async fn password_change_ends_other_sessions_but_this_one(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;

    let mut other_device = Caller { cookie: None };
    other_device
        .post(
            &h,
            "/api/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(other_device.me(&h).await["username"], "alice");
    let res = alice
        .post(
            &h,
            "/api/settings/change-password",
            &[
                ("current_password", "wrong one"),
                ("new_password", "new password 1"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("The current password is wrong."));
    let before = alice.cookie.clone();
    let res = alice
        .post(
            &h,
            "/api/settings/change-password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "new password 1"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ne!(before, alice.cookie, "session id rotated");
    assert_eq!(
        alice.me(&h).await["username"],
        "alice",
        "this session continues"
    );
    assert!(
        other_device.me(&h).await.is_null(),
        "other sessions are revoked"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

// --- GitHub ----------------------------------------------------------------------------------

async fn github_sign_in_creates_an_account_named_after_the_login(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    let mut octo = Caller { cookie: None };
    let to = github_flow(
        &h,
        &mut octo,
        Begin::Link("/auth/github/start?mode=login&next=/settings/profile"),
        "Octo-Cat",
        4242,
    )
    .await;
    assert_eq!(to, "/settings/profile");
    let me = octo.me(&h).await;
    assert_eq!(me["username"], "octocat");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// State mismatch: a callback whose state is not this session's is refused.
async fn github_callbacks_need_this_sessions_state(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;

    let mut mallory = Caller { cookie: None };
    let res = mallory.get(&h, "/auth/github/start?mode=login").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = mallory
        .get(&h, "/auth/github/callback?code=abc&state=forged")
        .await;
    assert_eq!(location(&res), "/login?github=state_mismatch");
    assert!(mallory.me(&h).await.is_null());
    let res = Caller { cookie: None }
        .get(&h, "/auth/github/callback?code=abc&state=x")
        .await;
    assert_eq!(
        location(&res),
        "/login?github=state_mismatch",
        "no flow started at all"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Linking cannot be started by a link or a page on another site.
async fn github_linking_cannot_be_started_from_another_site(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;

    let res = alice.get(&h, "/auth/github/start?mode=link").await;
    assert_eq!(location(&res), "/settings/profile?github=use_button");
    let res = alice
        .get(&h, "/auth/github/callback?code=abc&state=x")
        .await;
    assert_eq!(
        location(&res),
        "/login?github=state_mismatch",
        "the GET started no flow"
    );
    for headers in [
        vec![],
        vec![("origin", "http://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
    ] {
        let res = alice
            .post_with(&h, "/auth/github/start", &[("mode", "link")], &headers)
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Cross-site request refused"));
    }

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Linking a GitHub id that belongs to someone else is refused; a free one links, and an
/// account with a password may unlink it again.
async fn linking_someone_elses_github_id_is_refused(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;
    octocat(&h).await;

    let to = github_flow(&h, &mut alice, Begin::Form("link"), "octo-cat", 4242).await;
    assert_eq!(to, "/settings/profile?github=taken");
    let to = github_flow(&h, &mut alice, Begin::Form("link"), "alice-gh", 777).await;
    assert_eq!(to, "/settings/profile?github=linked");
    assert_eq!(alice.me(&h).await["username"], "alice");
    let res = alice.post(&h, "/api/settings/unlink-github", &[]).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "alice has a password: unlinking is fine"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// The GitHub-only account cannot unlink its only sign-in method.
async fn a_github_only_account_cannot_unlink_github(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut octo = octocat(&h).await;

    let res = octo.post(&h, "/api/settings/unlink-github", &[]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("no way to sign in"));

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// Deleting through GitHub cannot be started from another site: a GET (which any page can
/// make a signed-in browser send) starts nothing, a cross-site POST is refused.
async fn github_delete_cannot_be_started_from_another_site(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut octo = octocat(&h).await;

    let res = octo.get(&h, "/auth/github/start?mode=delete").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/settings/security?github=use_button");
    let res = octo.get(&h, "/auth/github/callback?code=abc&state=x").await;
    assert_eq!(
        location(&res),
        "/login?github=state_mismatch",
        "the GET started no flow"
    );
    for headers in [
        vec![],
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let res = octo
            .post_with(&h, "/auth/github/start", &[("mode", "delete")], &headers)
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(octo.me(&h).await["username"], "octocat");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

async fn github_delete_needs_githubs_fresh_word(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut octo = octocat(&h).await;

    // The confirmation button does nothing without GitHub's fresh word.
    let res = octo.post_here(&h, "/auth/github/delete", &[]).await;
    assert_eq!(location(&res), "/settings/security?github=confirm_expired");
    assert_eq!(octo.me(&h).await["username"], "octocat");

    // A different GitHub user cannot confirm (and confirms nothing for later).
    let to = github_flow(&h, &mut octo, Begin::Form("delete"), "someone", 5555).await;
    assert_eq!(to, "/settings/security?github=mismatch");
    let res = octo.post_here(&h, "/auth/github/delete", &[]).await;
    assert_eq!(location(&res), "/settings/security?github=confirm_expired");
    assert_eq!(octo.me(&h).await["username"], "octocat");

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

/// The right GitHub user: the callback only leads to our confirmation page, whose button
/// only works when pressed on our own site.
async fn github_delete_happens_only_on_our_confirmation_page(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut octo = octocat(&h).await;

    let to = github_flow(&h, &mut octo, Begin::Form("delete"), "Octo-Cat", 4242).await;
    assert_eq!(to, "/settings/delete-account");
    assert_eq!(
        octo.me(&h).await["username"],
        "octocat",
        "nothing deleted by the callback"
    );
    let page = octo.get(&h, &to).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Delete my account") && page.contains("octocat"),
        "the page says what goes"
    );
    // Even then, a post from another site cannot press the button.
    for headers in [vec![], vec![("origin", "http://evil.example")]] {
        let res = octo
            .post_with(&h, "/auth/github/delete", &[], &headers)
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(octo.me(&h).await["username"], "octocat");
    let res = octo.post_here(&h, "/auth/github/delete", &[]).await;
    assert_eq!(location(&res), "/login?account=deleted");
    assert!(octo.me(&h).await.is_null());
    let res = Caller { cookie: None }
        .get(&h, "/auth/github/start?mode=login")
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "sign-in still starts by GET"
    );

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}

// --- Delete with password --------------------------------------------------------------------

async fn deleting_with_the_password_removes_the_account_and_its_avatar(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let h = start(&tdb).await;
    let mut alice = registered(&h, "alice").await;
    let avatar = uploaded(
        &h,
        &mut alice,
        image_bytes(image::ImageFormat::Jpeg, 64, 64),
    )
    .await;

    let res = alice
        .post(&h, "/api/settings/delete-account", &[("password", "wrong")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = alice
        .post(
            &h,
            "/api/settings/delete-account",
            &[("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(alice.me(&h).await.is_null());
    let gone = h
        .client
        .get(format!("{}{avatar}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "the avatar object is deleted with the account"
    );
    let res = Caller { cookie: None }
        .post(
            &h,
            "/api/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    h.server.stop().await.unwrap();
    tdb.drop_database().await;
}
