//! The in-process gateway held to the gateway conformance suite (the same cases
//! `qingting-shell` passes), and what only the server can do: close live connections when
//! their session ends, keep used tokens where every process sees them, and keep the
//! dashboard out of frames.

use qingting_core::{
    testing::{free_port, sandbox_available},
    Config,
};
use qingting_gateway::{conformance, token::BoxFuture};
mod common;

use common::{register, Browser};
use reqwest::{header, Client, StatusCode};
use std::{sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Harness {
    port: u16,
    client: Client,
    _server: common::TestServer,
}

async fn start() -> Harness {
    start_with(|_| {}).await
}

/// A server with the stand-in IDE's template, `tweak`ed.
async fn start_with(tweak: impl FnOnce(&mut qingting_core::Config)) -> Harness {
    let server = common::start_server(tweak).await;
    let port = server.port;
    Harness {
        port,
        client: common::client(
            port,
            &[
                "alice-demo.localhost",
                "alice-other.localhost",
                "alice-nothere.localhost",
                "alice-demo.example-workspaces.test",
            ],
        ),
        _server: server,
    }
}

/// Alice with two running workspaces, `demo` and `other`.
async fn alice_with_workspaces(h: &Harness) -> Browser {
    let mut alice = register(&h.client, h.port, "alice").await;
    for name in ["demo", "other"] {
        let (s, row) = alice
            .api(
                "/api/workspaces/create",
                &[("name", name), ("template", "test-ide")],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{row}");
    }
    alice.wait_state("demo", "running").await;
    alice.wait_state("other", "running").await;
    alice
}

/// Mints through the dashboard's own `/open`, as a signed-in browser does.
fn minter(h: &Harness, cookie: String, workspace: &'static str) -> conformance::Minter {
    let (client, port) = (h.client.clone(), h.port);
    Arc::new(move |state: Option<String>| -> BoxFuture<'static, String> {
        let (client, cookie) = (client.clone(), cookie.clone());
        Box::pin(async move {
            let mut url = format!("http://localhost:{port}/open/alice/{workspace}?next=/");
            if let Some(s) = state {
                url.push_str(&format!("&state={s}"));
            }
            let res = client
                .get(&url)
                .header(header::COOKIE, cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FOUND);
            let to = res.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_string();
            let query = to.split_once('?').expect("a token link").1;
            query
                .split('&')
                .find_map(|p| p.strip_prefix("token="))
                .expect("token")
                .to_string()
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_gateway_passes_the_conformance_suite() {
    if !sandbox_available() {
        return;
    }
    let h = start().await;
    let alice = alice_with_workspaces(&h).await;
    let cookie = alice.cookie_header(&alice.dash("/")).unwrap();
    let subject = conformance::Subject {
        name: "server gateway",
        client: h.client.clone(),
        addr: format!("127.0.0.1:{}", h.port).parse().unwrap(),
        origin: format!("http://alice-demo.localhost:{}", h.port),
        dashboard: format!("http://localhost:{}", h.port),
        user: "alice".into(),
        workspace: "demo".into(),
        mint: minter(&h, cookie.clone(), "demo"),
        mint_foreign: minter(&h, cookie, "other"),
        made_up_origin: Some(format!("http://alice-nothere.localhost:{}", h.port)),
    };
    conformance::run(&subject).await;
}

/// A workspace WebSocket and the dashboard's event stream, both open under one session.
async fn open_live_connections(
    h: &Harness,
    alice: &mut Browser,
) -> (tokio::net::TcpStream, reqwest::Response) {
    let ws_url = format!("http://alice-demo.localhost:{}/", h.port);
    let (res, _) = alice.follow(&alice.dash("/open/alice/demo")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = alice.cookie_header(&ws_url).unwrap();
    let origin = format!("http://alice-demo.localhost:{}", h.port);
    let addr = format!("127.0.0.1:{}", h.port).parse().unwrap();
    let (head, mut ws) = conformance::websocket_handshake(addr, &origin, "/ws", &cookie).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.write_all(b"hi").await.unwrap();
    let mut echo = [0u8; 2];
    ws.read_exact(&mut echo).await.unwrap();
    let url = alice.dash("/api/workspaces/events");
    let mut events = h
        .client
        .get(&url)
        .header(header::COOKIE, alice.cookie_header(&url).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    events.chunk().await.unwrap().expect("the first snapshot");
    (ws, events)
}

/// Both connections end at once (reads see the end of stream): on a quiet machine within
/// milliseconds; the bound is loose for a loaded one.
async fn assert_closed_at_once(ws: &mut tokio::net::TcpStream, events: &mut reqwest::Response) {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), ws.read(&mut buf))
        .await
        .expect("the WebSocket is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "the WebSocket is closed");
    // Keep-alive comments may still be in flight before the end.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("the event stream ends")
    {}
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_connections_close_when_their_session_ends() {
    if !sandbox_available() {
        return;
    }
    let h = start().await;
    let mut alice = alice_with_workspaces(&h).await;

    // Sign-out.
    let (mut ws, mut events) = open_live_connections(&h, &mut alice).await;
    let (s, _) = alice.api("/api/logout", &[]).await;
    assert!(s.is_success() || s.is_redirection(), "{s}");
    assert_closed_at_once(&mut ws, &mut events).await;

    // A password change ends the other sessions, and theirs.
    let mut first = Browser::new(&h.client, h.port);
    let (s, _) = first
        .api(
            "/api/login",
            &[("username", "alice"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (mut ws, mut events) = open_live_connections(&h, &mut first).await;
    let mut second = Browser::new(&h.client, h.port);
    let (s, _) = second
        .api(
            "/api/login",
            &[("username", "alice"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = second
        .api(
            "/api/settings/change-password",
            &[
                ("current_password", "correct horse battery"),
                ("new_password", "another long password"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_closed_at_once(&mut ws, &mut events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_through_the_dashboard_is_used_for_every_gateway() {
    if !sandbox_available() {
        return;
    }
    let h = start().await;
    let alice = alice_with_workspaces(&h).await;
    let cookie = alice.cookie_header(&alice.dash("/")).unwrap();
    let mint = minter(&h, cookie, "demo");
    let consume = |token: String| {
        let client = h.client.clone();
        let url = format!("http://localhost:{}/_qingting/tokens/consume", h.port);
        async move { client.post(url).body(token).send().await.unwrap().status() }
    };
    let exchange = |token: String| {
        let client = h.client.clone();
        let port = h.port;
        async move {
            client
                .get(format!(
                    "http://alice-demo.localhost:{port}/_qingting/auth?token={token}"
                ))
                .header(header::REFERER, format!("http://localhost:{port}/"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Another process (a shell) redeemed it first: the in-process gateway refuses it.
    let token = mint(None).await;
    assert_eq!(consume(token.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(consume(token.clone()).await, StatusCode::CONFLICT);
    assert_eq!(exchange(token).await, StatusCode::FORBIDDEN);
    // And the other way round.
    let token = mint(None).await;
    assert_eq!(exchange(token.clone()).await, StatusCode::FOUND);
    assert_eq!(consume(token).await, StatusCode::CONFLICT);
    // Not a token of ours.
    assert_eq!(consume("junk".into()).await, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_cannot_be_framed() {
    let h = start().await;
    for path in ["/login", "/register", "/workspaces", "/no-such-page"] {
        let res = h
            .client
            .get(format!("http://localhost:{}{path}", h.port))
            .send()
            .await
            .unwrap();
        let hd = res.headers();
        assert_eq!(
            hd["content-security-policy"], "frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(hd["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            hd["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_cookies_carry_the_host_prefix() {
    // Behind a TLS-terminating proxy: the public URL is https, the listener plain.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = Config {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("https://localhost:{port}"),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let _server = qingting_server::start(config).await.expect("server starts");
    let client = common::client(port, &["alice-demo.localhost"]);
    let res = client
        .post(format!("http://localhost:{port}/api/register"))
        .form(&[("username", "alice"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let set = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("__Host-qingting_session=")
            && set.contains("Secure")
            && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    // The workspace host's own cookies too (here the round-trip state of a sign-in).
    let res = client
        .get(format!("http://alice-demo.localhost:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let set = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("__Host-qingting_ws_state=") && set.contains("Secure"),
        "{set}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_on_a_registrable_domain_of_their_own() {
    if !sandbox_available() {
        return;
    }
    let h = start_with(|c| {
        c.workspaces.domain = Some("example-workspaces.test".into());
        assert!(!c.workspaces_same_site());
    })
    .await;
    let (client, port) = (&h.client, h.port);
    let mut alice = register(client, port, "alice").await;
    let (s, row) = alice
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "test-ide")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    alice.wait_state("demo", "running").await;
    // Opened from the dashboard, the browser lands on the other site, signed in there.
    let (res, hops) = alice
        .follow(&alice.dash("/open/alice/demo?next=/whoami"))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{hops:?}");
    assert_eq!(
        hops.last().unwrap(),
        &format!("http://alice-demo.example-workspaces.test:{port}/whoami")
    );
    assert!(alice.jar["alice-demo.example-workspaces.test"].contains_key("qingting_ws"));
    // A stranger there is sent to the dashboard's own host.
    let res = client
        .get(format!("http://alice-demo.example-workspaces.test:{port}/"))
        .send()
        .await
        .unwrap();
    let to = res.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        to.starts_with(&format!("http://localhost:{port}/open/alice/demo?")),
        "{to}"
    );
}

/// The gateway answers from memory, but never from before a change: the request right after
/// a stop, a start, a delete or the owner's rename sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_sees_every_change_at_once() {
    if !sandbox_available() {
        return;
    }
    let h = start().await;
    let mut alice = alice_with_workspaces(&h).await;
    let url = |user: &str, ws: &str| format!("http://{user}-{ws}.localhost:{}/whoami", h.port);
    let id_of = |rows: &serde_json::Value, name: &str| {
        rows["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (_, rows) = alice.api("/api/workspaces/list", &[]).await;
    let other = id_of(&rows, "other");
    for ws in ["demo", "other"] {
        let (res, hops) = alice.follow(&url("alice", ws)).await;
        assert_eq!(res.status(), StatusCode::OK, "{hops:?}");
    }
    let status = |res: reqwest::Response| res.status();

    // Stopped: the next request gets the stopped page, not the IDE; started again, the IDE.
    let action = |id: i64, action: &'static str| (id.to_string(), action);
    let (id, act) = action(other, "stop");
    alice
        .api("/api/workspaces/action", &[("id", &id), ("action", act)])
        .await;
    alice.wait_state("other", "stopped").await;
    let u = url("alice", "other");
    assert_eq!(status(alice.get(&u).await), StatusCode::SERVICE_UNAVAILABLE);
    let (id, act) = action(other, "start");
    alice
        .api("/api/workspaces/action", &[("id", &id), ("action", act)])
        .await;
    alice.wait_state("other", "running").await;
    assert_eq!(status(alice.get(&u).await), StatusCode::OK);

    // Deleted: nothing answers for it any more.
    let (id, act) = action(other, "delete");
    alice
        .api("/api/workspaces/action", &[("id", &id), ("action", act)])
        .await;
    for _ in 0..300 {
        let (_, rows) = alice.api("/api/workspaces/list", &[]).await;
        if rows["workspaces"].as_array().unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(alice.get(&u).await), StatusCode::FOUND);

    // Renamed: the old host names nobody's workspace at once.
    let u = url("alice", "demo");
    assert_eq!(status(alice.get(&u).await), StatusCode::OK);
    let (s, body) = alice
        .api(
            "/api/settings/save-profile",
            &[
                ("username", "alicia"),
                ("display_name", ""),
                ("email", ""),
                ("bio", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let res = alice.get(&u).await;
    assert_eq!(
        res.status(),
        StatusCode::FOUND,
        "the old host no longer reaches demo"
    );
}
