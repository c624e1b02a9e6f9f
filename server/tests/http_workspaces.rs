//! Workspaces over HTTP with the real local runtime (sandboxed stand-in IDE) and the
//! in-process gateway: create/list/actions and their refusals, the open flow (anonymous,
//! owner, stranger), cookies that stay on their host, WebSockets and their Origin check, the
//! stopped page's Start button, sign-out ending workspace access, delete and account
//! deletion leaving nothing behind.

use qingting_core::testing::sandbox_available;
mod common;

use common::{register, Browser};
use reqwest::{header, Client, StatusCode};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Harness {
    port: u16,
    client: Client,
    data: std::path::PathBuf,
    _server: common::TestServer,
}

impl Harness {
    fn dash(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }
    fn ws(&self, user: &str, name: &str, path: &str) -> String {
        format!("http://{user}-{name}.localhost:{}{path}", self.port)
    }
}

async fn start() -> Harness {
    let server = common::start_server(|config| {
        config.workspaces.max_per_user = 3;
        config.workspaces.max_running_per_user = 2;
    })
    .await;
    let port = server.port;
    Harness {
        port,
        client: common::client(
            port,
            &[
                "alice-demo.localhost",
                "alice-other.localhost",
                "bob-demo.localhost",
            ],
        ),
        data: server.dir.path().to_path_buf(),
        _server: server,
    }
}

/// A raw WebSocket handshake through the gateway; returns the status line and the stream.
async fn ws_handshake(
    h: &Harness,
    host: &str,
    origin: &str,
    cookie: &str,
) -> (String, tokio::net::TcpStream) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", h.port))
        .await
        .unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: {origin}\r\nCookie: {cookie}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    (head.lines().next().unwrap_or("").to_string(), s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_through_the_gateway() {
    if !sandbox_available() {
        return;
    }
    let h = start().await;
    let health: Value = h
        .client
        .get(h.dash("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["runtime"], "local");
    assert_eq!(health["isolation"]["sandbox"], "bubblewrap");
    // Which network workspaces get, and (when they get one) what it refuses.
    let network = &health["isolation"]["network"];
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        assert!(
            network["mode"].as_str().unwrap().contains("firewalled"),
            "{network}"
        );
        assert!(
            network["refused"].to_string().contains("169.254.0.0/16"),
            "{network}"
        );
    } else {
        assert!(network["mode"].is_string(), "{network}");
    }

    let mut alice = register(&h.client, h.port, "alice").await;
    let mut bob = register(&h.client, h.port, "bob").await;

    // Refusals first: nothing is created by any of them.
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Form, StatusCode, &str); 4] = [
        (
            &[("name", "Bad_Name"), ("template", "test-ide")],
            StatusCode::BAD_REQUEST,
            "lowercase",
        ),
        (
            &[("name", "demo"), ("template", "nope")],
            StatusCode::BAD_REQUEST,
            "no template",
        ),
        (
            &[("name", "demo"), ("template", "jupyter-python")],
            StatusCode::BAD_REQUEST,
            "not installed",
        ),
        (&[("name", "demo")], StatusCode::BAD_REQUEST, "malformed"),
    ];
    for (form, status, msg) in cases {
        let (s, body) = alice.api("/api/workspaces/create", form).await;
        assert_eq!(s, status, "{form:?}: {body}");
        assert!(
            body.to_string().to_lowercase().contains(msg),
            "{form:?}: {body}"
        );
    }
    let (_, page) = alice.api("/api/workspaces/list", &[]).await;
    assert!(page["workspaces"].as_array().unwrap().is_empty());
    let ready: Vec<&str> = page["templates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ready"] == true)
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ready,
        ["vscode-python", "vscode-node", "test-ide"],
        "the test IDE counts as VS Code installed"
    );

    // The live list: server-sent events, a snapshot on connect and one per change.
    let url = h.dash("/api/workspaces/events");
    let mut events = h
        .client
        .get(&url)
        .header(header::COOKIE, alice.cookie_header(&url).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let first = String::from_utf8(events.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("event: workspaces\ndata: []"), "{first}");
    let anon = h.client.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);

    // Create: answered at once as `creating`, running shortly after.
    let (s, row) = alice
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "test-ide")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{row}");
    assert_eq!(row["state"], "creating");
    assert_eq!(row["open_path"], "/open/alice/demo");
    // What each state allows comes from the server's state machine.
    let controls = |busy, can_open, can_start, can_stop| serde_json::json!({"busy": busy, "can_open": can_open, "can_start": can_start, "can_stop": can_stop, "can_cancel": false});
    assert_eq!(row["controls"], controls(true, false, false, false));
    let demo = alice.wait_state("demo", "running").await;
    assert_eq!(demo["controls"], controls(false, true, false, true));
    let mut pushed = String::new();
    while !pushed.contains("\"state\":\"running\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        pushed.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(pushed.contains("\"name\":\"demo\""), "{pushed}");
    drop(events);
    let demo_id = demo["id"].as_i64().unwrap().to_string();
    let (s, body) = alice
        .api(
            "/api/workspaces/create",
            &[("name", "demo"), ("template", "test-ide")],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");

    // Anonymous visitor: to the dashboard login, and after signing in, back in the workspace.
    let mut anon = Browser::new(&h.client, h.port);
    let (res, hops) = anon.follow(&h.ws("alice", "demo", "/files/x?y=1")).await;
    assert_eq!(res.status(), StatusCode::OK, "{hops:?}");
    assert!(
        hops[1].starts_with(&h.dash("/open/alice/demo?next=/files/x%3Fy%3D1")),
        "{hops:?}"
    );
    assert!(
        hops.last().unwrap().starts_with(&h.dash("/login?next=")),
        "{hops:?}"
    );
    let next = reqwest::Url::parse(hops.last().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .to_string();
    // The browser's round-trip state rides along, so the token it brings back needs no question.
    assert!(
        next.starts_with("/open/alice/demo?next=/files/x%3Fy%3D1&state="),
        "{next}"
    );
    // (The login page sends the browser to `next` after sign-in; here alice does it.)
    let (res, hops) = alice.follow(&h.dash(&next)).await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the stand-in has no file x yet: {hops:?}"
    );
    assert_eq!(hops.last().unwrap(), &h.ws("alice", "demo", "/files/x?y=1"));
    assert!(hops[1].contains("/_qingting/auth?token="), "{hops:?}");

    // The token is single-use.
    let res = h
        .client
        .get(&hops[1])
        .header(header::REFERER, h.dash("/workspaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The IDE never sees our cookies, nor a client-supplied X-Forwarded-For.
    let url = h.ws("alice", "demo", "/headers");
    let req = h
        .client
        .get(&url)
        .header(
            header::COOKIE,
            format!("{}; theme=dark", alice.cookie_header(&url).unwrap()),
        )
        .header("x-forwarded-for", "6.6.6.6");
    let seen: Value = req.send().await.unwrap().json().await.unwrap();
    assert_eq!(seen["cookie"], "theme=dark", "{seen}");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["host"], format!("alice-demo.localhost:{}", h.port));
    // The dashboard's session cookie never went to the workspace host.
    assert!(alice
        .jar
        .get("alice-demo.localhost")
        .unwrap()
        .keys()
        .all(|k| k == "qingting_ws"));
    assert!(alice.jar["localhost"].contains_key("qingting_session"));

    // A stranger: to their own list, never a word about the workspace; same for one that
    // does not exist.
    for url in [h.ws("alice", "demo", "/"), h.ws("alice", "other", "/")] {
        let (res, hops) = bob.follow(&url).await;
        assert_eq!(hops.last().unwrap(), &h.dash("/workspaces"), "{hops:?}");
        assert_eq!(res.status(), StatusCode::OK);
    }
    // A cookie stolen from alice does not work for bob's own... and a forged one is cleared.
    let forged = bob.get(&h.ws("alice", "demo", "/")).await;
    assert_eq!(forged.status(), StatusCode::FOUND);

    // WebSockets: from the workspace's own origin they pass (and echo); from elsewhere not.
    let cookie = alice.cookie_header(&h.ws("alice", "demo", "/")).unwrap();
    let host = format!("alice-demo.localhost:{}", h.port);
    let (line, mut s) = ws_handshake(&h, &host, &format!("http://{host}"), &cookie).await;
    assert!(line.contains("101"), "{line}");
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    drop(s);
    let (line, _) = ws_handshake(&h, &host, "http://evil.localhost:1", &cookie).await;
    assert!(line.contains("403"), "{line}");

    // Files survive stop/start; a stopped workspace shows a Start button that works.
    let put = h
        .client
        .put(h.ws("alice", "demo", "/files/note.txt"))
        .header(header::COOKIE, &cookie)
        .body("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let (s, row) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &demo_id), ("action", "stop")],
        )
        .await;
    assert_eq!(
        (s, row["state"].as_str()),
        (StatusCode::OK, Some("stopping"))
    );
    let stopped = alice.wait_state("demo", "stopped").await;
    assert_eq!(stopped["controls"], controls(false, false, true, false));
    let res = alice.get(&h.ws("alice", "demo", "/")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.text().await.unwrap().contains("/_qingting/start"));
    let cross = h
        .client
        .post(h.ws("alice", "demo", "/_qingting/start"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "http://evil.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let start = h
        .client
        .post(h.ws("alice", "demo", "/_qingting/start"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, format!("http://{host}"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::FOUND);
    alice.wait_state("demo", "running").await;
    let body = alice
        .get(&h.ws("alice", "demo", "/files/note.txt"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body, "kept");

    // Actions: bad ones refused clearly; two Starts at once never both run.
    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &demo_id), ("action", "explode")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = bob
        .api(
            "/api/workspaces/action",
            &[("id", &demo_id), ("action", "stop")],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &demo_id), ("action", "restart")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &demo_id), ("action", "start")],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    alice.wait_state("demo", "running").await;

    // Limits: two running at most, three in all.
    alice
        .api(
            "/api/workspaces/create",
            &[("name", "two"), ("template", "test-ide")],
        )
        .await;
    alice.wait_state("two", "running").await;
    let (s, body) = alice
        .api(
            "/api/workspaces/create",
            &[("name", "three"), ("template", "test-ide")],
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.to_string().contains("at most 2"), "{body}");

    // Signing out of the dashboard ends workspace access (after the gateway's 1 s cache).
    alice.api("/api/logout", &[]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = h
        .client
        .get(h.ws("alice", "demo", "/headers"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers().get_all(header::SET_COOKIE).iter().any(|c| c
        .to_str()
        .unwrap()
        .starts_with("qingting_ws=;")
        && c.to_str().unwrap().contains("Max-Age=0")));
    let (s, _) = alice
        .api(
            "/api/login",
            &[("username", "alice"), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Deleting a running workspace removes its process and both data dirs.
    let ws_dir = h.data.join("workspaces").join(&demo_id);
    assert!(ws_dir.join("files/note.txt").is_file() && ws_dir.join("ide").is_dir());
    let pidfile = h.data.join("run").join(format!("{demo_id}.pid"));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &demo_id), ("action", "delete")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..300 {
        let (_, page) = alice.api("/api/workspaces/list", &[]).await;
        if page["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["name"] != "demo")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!ws_dir.exists() && !pidfile.exists());
    // Gone, or a zombie waiting for its parent (reaped at any moment: a vanished stat is gone).
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
    );

    // Account deletion deletes the user's workspaces.
    bob.api(
        "/api/workspaces/create",
        &[("name", "demo"), ("template", "test-ide")],
    )
    .await;
    let bobs = bob.wait_state("demo", "running").await;
    let bob_dir = h
        .data
        .join("workspaces")
        .join(bobs["id"].as_i64().unwrap().to_string());
    assert!(bob_dir.is_dir());
    let (s, body) = bob
        .api(
            "/api/settings/delete-account",
            &[("password", "correct horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(!bob_dir.exists());
}
