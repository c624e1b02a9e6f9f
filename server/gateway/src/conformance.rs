//! One conformance suite for every workspace gateway (the server's in-process gateway and
//! `qingting-shell`): the token exchange, the cookie, what reaches the IDE and what comes
//! back from it, the `Origin` rule for WebSockets. Each gateway's tests build a [`Subject`]
//! (a gateway in front of the stand-in IDE, and a way to mint tokens as its dashboard does)
//! and call [`run`], so both are held to exactly the same cases.
//!
//! The IDE behind the gateway must be the stand-in IDE (`server/core/tests/fixtures/
//! test_ide.py`), which reports the headers it received and can try to set our cookies.

use crate::token::BoxFuture;
use reqwest::{header, Client, Response, StatusCode};
use std::{net::SocketAddr, sync::Arc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Mints a fresh token for the workspace under test, for its owner, as the dashboard would
/// (with the browser's round-trip state when given).
pub type Minter = Arc<dyn Fn(Option<String>) -> BoxFuture<'static, String> + Send + Sync>;

/// A gateway under test.
pub struct Subject {
    pub name: &'static str,
    /// A client that resolves the workspace host to the gateway and follows no redirects.
    pub client: Client,
    /// Where the gateway listens (for raw WebSocket handshakes).
    pub addr: SocketAddr,
    /// `http://<user>-<ws>.<domain>:<port>`.
    pub origin: String,
    /// The dashboard's origin the gateway sends browsers to.
    pub dashboard: String,
    pub user: String,
    pub workspace: String,
    pub mint: Minter,
    /// A valid token of the same dashboard for another workspace.
    pub mint_foreign: Minter,
    /// A host of the same gateway that names no workspace, when the gateway serves several
    /// (the answers there must equal those for a real workspace of someone else).
    pub made_up_origin: Option<String>,
}

const STATE: &str = "qingting_ws_state";
const COOKIE: &str = "qingting_ws";

/// Runs every case against `s`, panicking with the subject's name and the case on failure.
pub async fn run(s: &Subject) {
    anonymous_requests_go_to_the_dashboard_with_a_state(s).await;
    an_exchange_from_the_dashboard_sets_a_host_only_cookie_once(s).await;
    the_browsers_own_round_trip_needs_no_question(s).await;
    a_handed_over_link_asks_first(s).await;
    open_redirects_are_refused(s).await;
    foreign_and_forged_tokens_are_refused(s).await;
    a_bad_cookie_is_cleared_on_the_way_to_sign_in(s).await;
    the_ide_never_sees_our_cookies_or_spoofed_forwarding(s).await;
    the_ide_cannot_set_our_cookies(s).await;
    websockets_need_their_own_origin_and_cannot_set_our_cookies(s).await;
    made_up_workspaces_answer_like_real_ones(s).await;
}

fn set_cookies(res: &Response) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_string())
        .collect()
}

fn location(res: &Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The value of cookie `name` among `Set-Cookie` answers (empty when cleared).
fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        let (k, v) = c.split(';').next()?.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn assert_host_only(s: &Subject, set: &[String]) {
    for c in set {
        let lower = c.to_ascii_lowercase();
        assert!(
            !lower.contains("domain=") && lower.contains("httponly") && lower.contains("path=/"),
            "[{}] cookies must be host-only and HttpOnly: {c}",
            s.name
        );
    }
}

impl Subject {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    fn auth(&self, token: &str, next: &str) -> String {
        self.url(&format!(
            "{}?token={token}&next={}",
            crate::access::AUTH_PATH,
            crate::url::percent_encode(next)
        ))
    }

    fn get_via_dashboard(&self, url: &str) -> reqwest::RequestBuilder {
        self.client
            .get(url)
            .header(header::REFERER, format!("{}/workspaces", self.dashboard))
    }

    async fn get(&self, url: &str, cookie: Option<&str>) -> Response {
        let mut req = self.client.get(url);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        req.send().await.expect("gateway answers")
    }

    /// A workspace cookie, through the dashboard's exchange.
    async fn signed_in(&self) -> String {
        let token = (self.mint)(None).await;
        let res = self
            .get_via_dashboard(&self.auth(&token, "/"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "[{}] exchange", self.name);
        let value = cookie_value(&set_cookies(&res), COOKIE).expect("workspace cookie");
        format!("{COOKIE}={value}")
    }
}

async fn anonymous_requests_go_to_the_dashboard_with_a_state(s: &Subject) {
    let res = s.get(&s.url("/tree/a?x=1"), None).await;
    assert_eq!(res.status(), StatusCode::FOUND, "[{}]", s.name);
    let set = set_cookies(&res);
    assert_host_only(s, &set);
    let state = cookie_value(&set, STATE).expect("a state cookie");
    assert_eq!(state.len(), 32, "[{}] state {state:?}", s.name);
    assert_eq!(
        location(&res),
        format!(
            "{}/open/{}/{}?next=/tree/a%3Fx%3D1&state={state}",
            s.dashboard, s.user, s.workspace
        ),
        "[{}]",
        s.name
    );
    // A body never reaches the IDE, and a non-GET comes back to the start page.
    let res = s
        .client
        .post(s.url("/api/contents"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "[{}]", s.name);
    assert!(location(&res).contains("?next=/&state="), "[{}]", s.name);
}

async fn an_exchange_from_the_dashboard_sets_a_host_only_cookie_once(s: &Subject) {
    let token = (s.mint)(None).await;
    let res = s
        .get_via_dashboard(&s.auth(&token, "/lab?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "[{}]", s.name);
    assert_eq!(location(&res), "/lab?x=1", "[{}]", s.name);
    let set = set_cookies(&res);
    assert_host_only(s, &set);
    let value = cookie_value(&set, COOKIE).expect("workspace cookie");
    assert!(!value.is_empty(), "[{}]", s.name);
    assert!(
        set.iter().any(|c| c.contains("SameSite=Lax")),
        "[{}] {set:?}",
        s.name
    );
    // The cookie opens the IDE.
    let res = s
        .get(&s.url("/whoami"), Some(&format!("{COOKIE}={value}")))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "[{}]", s.name);
    // The same token never works twice, and a refusal clears the cookie.
    let res = s
        .get_via_dashboard(&s.auth(&token, "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{}] replay", s.name);
    assert_eq!(
        cookie_value(&set_cookies(&res), COOKIE).as_deref(),
        Some("")
    );
}

async fn the_browsers_own_round_trip_needs_no_question(s: &Subject) {
    let res = s.get(&s.url("/notebooks"), None).await;
    let state = cookie_value(&set_cookies(&res), STATE).expect("state");
    let token = (s.mint)(Some(state.clone())).await;
    // No Referer (the person typed the workspace's address), but the browser's own state.
    let res = s
        .get(
            &s.auth(&token, "/notebooks"),
            Some(&format!("{STATE}={state}")),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND, "[{}]", s.name);
    assert_eq!(location(&res), "/notebooks", "[{}]", s.name);
    let set = set_cookies(&res);
    assert!(cookie_value(&set, COOKIE).is_some_and(|v| !v.is_empty()));
    assert_eq!(
        cookie_value(&set, STATE).as_deref(),
        Some(""),
        "[{}] state used up",
        s.name
    );
    // Another browser's state is not this one's.
    let token = (s.mint)(Some(state)).await;
    let other = "0123456789abcdef0123456789abcdef";
    let res = s
        .get(&s.auth(&token, "/"), Some(&format!("{STATE}={other}")))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "[{}] asks first", s.name);
}

async fn a_handed_over_link_asks_first(s: &Subject) {
    let token = (s.mint)(None).await;
    for referer in [
        None,
        Some("https://evil.example/"),
        Some("http://localhost.evil.example/"),
    ] {
        let mut req = s.client.get(s.auth(&token, "/lab"));
        if let Some(r) = referer {
            req = req.header(header::REFERER, r);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "[{}] {referer:?}", s.name);
        assert!(set_cookies(&res).is_empty(), "[{}] no cookie yet", s.name);
        let h = res.headers();
        assert_eq!(h["content-security-policy"], "frame-ancestors 'none'");
        assert_eq!(h["x-frame-options"], "DENY");
        let page = res.text().await.unwrap();
        assert!(
            page.contains(&format!("{}/{}", s.user, s.workspace))
                && page.contains("method=\"post\""),
            "[{}] {page}",
            s.name
        );
    }
    let form = [("token", token.as_str()), ("next", "/lab")];
    let post = |origin: &str| {
        s.client
            .post(s.url(crate::access::AUTH_PATH))
            .header(header::ORIGIN, origin)
            .form(&form)
    };
    let res = post("https://evil.example").send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "[{}] cross-site",
        s.name
    );
    let res = post(&s.origin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "[{}] confirmed", s.name);
    assert_eq!(location(&res), "/lab");
    assert!(cookie_value(&set_cookies(&res), COOKIE).is_some_and(|v| !v.is_empty()));
}

async fn open_redirects_are_refused(s: &Subject) {
    for next in [
        "//evil.com",
        "/\\evil.com",
        "https:evil.com",
        "https://evil.com/x",
    ] {
        let token = (s.mint)(None).await;
        let res = s
            .get_via_dashboard(&s.auth(&token, next))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "[{}] {next}", s.name);
        assert_eq!(location(&res), "/", "[{}] {next}", s.name);
    }
}

async fn foreign_and_forged_tokens_are_refused(s: &Subject) {
    let foreign = (s.mint_foreign)(None).await;
    let token = (s.mint)(None).await;
    let forged = format!("{}x", token);
    for t in [foreign.as_str(), forged.as_str(), "junk", ""] {
        let res = s.get_via_dashboard(&s.auth(t, "/")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "[{}] {t}", s.name);
    }
}

async fn a_bad_cookie_is_cleared_on_the_way_to_sign_in(s: &Subject) {
    let res = s
        .get(&s.url("/"), Some(&format!("{COOKIE}=garbage.x")))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND, "[{}]", s.name);
    assert_eq!(
        cookie_value(&set_cookies(&res), COOKIE).as_deref(),
        Some(""),
        "[{}]",
        s.name
    );
}

async fn the_ide_never_sees_our_cookies_or_spoofed_forwarding(s: &Subject) {
    let cookie = s.signed_in().await;
    let res = s
        .client
        .get(s.url("/headers"))
        .header(
            header::COOKIE,
            format!("{cookie}; theme=dark; qingting_session=s; __Host-qingting_session=t"),
        )
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "for=6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "[{}]", s.name);
    let seen: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen["cookie"], "theme=dark", "[{}] {seen}", s.name);
    assert!(
        seen.get("x-forwarded-host").is_none(),
        "[{}] {seen}",
        s.name
    );
    assert!(seen.get("forwarded").is_none(), "[{}] {seen}", s.name);
    assert_ne!(seen["x-forwarded-for"], "6.6.6.6", "[{}] {seen}", s.name);
}

async fn the_ide_cannot_set_our_cookies(s: &Subject) {
    let cookie = s.signed_in().await;
    let res = s.get(&s.url("/set-cookies"), Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::OK, "[{}]", s.name);
    let set = set_cookies(&res);
    assert_eq!(set, ["keep=1; Path=/"], "[{}]", s.name);
}

/// A raw HTTP/1.1 WebSocket handshake with `origin` `http://host` (or `origin` given) to the
/// gateway at `addr`: the answer's head, and the stream (the stand-in IDE echoes what is sent
/// after a `101`).
pub async fn websocket_handshake(
    addr: SocketAddr,
    origin: &str,
    path: &str,
    cookie: &str,
) -> (String, tokio::net::TcpStream) {
    let host = origin.split("://").nth(1).unwrap_or("");
    websocket_handshake_from(addr, host, origin, path, cookie).await
}

/// [`websocket_handshake`] to `host`, sent with another `Origin`.
pub async fn websocket_handshake_from(
    addr: SocketAddr,
    host: &str,
    origin: &str,
    path: &str,
    cookie: &str,
) -> (String, tokio::net::TcpStream) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Origin: {origin}\r\nCookie: {cookie}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).into_owned(), stream)
}

async fn handshake(
    s: &Subject,
    path: &str,
    origin: &str,
    cookie: &str,
) -> (String, tokio::net::TcpStream) {
    let host = s.origin.split("://").nth(1).unwrap_or("");
    websocket_handshake_from(s.addr, host, origin, path, cookie).await
}

async fn websockets_need_their_own_origin_and_cannot_set_our_cookies(s: &Subject) {
    let cookie = s.signed_in().await;
    let (head, _) = handshake(s, "/ws", "https://evil.example", &cookie).await;
    assert!(head.starts_with("HTTP/1.1 403"), "[{}] {head}", s.name);
    let (head, mut stream) = handshake(s, "/ws?setcookie=1", &s.origin, &cookie).await;
    assert!(head.starts_with("HTTP/1.1 101"), "[{}] {head}", s.name);
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("set-cookie: keep=1") && !lower.contains("qingting_"),
        "[{}] the 101 answer may not set our cookies: {head}",
        s.name
    );
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping", "[{}]", s.name);
}

/// What a stranger sees: status, where it leads (without the random state) and which
/// cookies it sets.
async fn stranger_view(s: &Subject, origin: &str, method: &str, path: &str) -> String {
    let url = format!("{origin}{path}");
    let req = match method {
        "POST" => s.client.post(&url).body(""),
        _ => s.client.get(&url),
    };
    let res = req.send().await.unwrap();
    let to = location(&res)
        .replace(origin, "ORIGIN")
        .split("&state=")
        .next()
        .unwrap_or("")
        .to_string();
    let names: Vec<String> = set_cookies(&res)
        .iter()
        .map(|c| c.split('=').next().unwrap_or("").to_string())
        .collect();
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    format!("{status} {to} {names:?} {}", body.len())
}

async fn made_up_workspaces_answer_like_real_ones(s: &Subject) {
    let Some(made_up) = &s.made_up_origin else {
        return;
    };
    let name = |o: &str| {
        o.split("://")
            .nth(1)
            .and_then(|h| h.split('.').next())
            .unwrap_or("")
            .to_string()
    };
    let (real_label, fake_label) = (name(&s.origin), name(made_up));
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/tree?x=1"),
        ("POST", "/_qingting/start"),
        ("GET", "/_qingting/auth"),
        ("GET", "/_qingting/auth?token=junk&next=/x"),
    ] {
        let real = stranger_view(s, &s.origin, method, path).await;
        let fake = stranger_view(s, made_up, method, path).await;
        // The only difference may be the names the host itself carries.
        let real = real.replace(&real_label.replace('-', "/"), "NAME");
        let fake = fake.replace(&fake_label.replace('-', "/"), "NAME");
        assert_eq!(real, fake, "[{}] {method} {path}", s.name);
    }
}
