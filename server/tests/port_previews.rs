//! Port previews: a server started inside a workspace opens at `<port>-<user>-<ws>` for its
//! owner, through the same token exchange and host-only cookie as the IDE; nobody else gets
//! in; the dashboard lists the port without configuration; a stopped workspace shows its
//! Start page there too.

use qingting_core::testing::sandbox_available;
mod common;

use common::{get_until_ok, register, Browser};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

const PREVIEW: &str = "8000-alice-demo.localhost";
const APP: &str = "8002-alice-demo.localhost";

/// A WebSocket through the gateway to `host` (a raw handshake, then one echoed message).
async fn websocket_echo(port: u16, host: &str, cookie: &str, message: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\nOrigin: http://{host}:{port}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed during the handshake: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s.write_all(message).await.unwrap();
    let mut echoed = vec![0u8; message.len()];
    s.read_exact(&mut echoed).await.unwrap();
    echoed
}

async fn listed_ports(alice: &mut Browser) -> Vec<u64> {
    let (_, page) = alice.api("/api/workspaces/list", &[]).await;
    page["workspaces"][0]["ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["listening"] == true)
                .filter_map(|p| p["port"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

async fn share(b: &mut Browser, id: &str, sharing: &str) -> (StatusCode, Value) {
    b.api(
        "/api/workspaces/share-port",
        &[("id", id), ("port", "8000"), ("sharing", sharing)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_a_workspace_opens_for_its_owner_only() {
    if !sandbox_available() {
        return;
    }
    let server = common::start_server(|_| {}).await;
    let port = server.port;
    let client = common::client(
        port,
        &[
            "alice-demo.localhost",
            PREVIEW,
            APP,
            "8001-alice-demo.localhost",
            "8003-alice-demo.localhost",
        ],
    );
    let root = unsafe { libc::geteuid() } == 0;

    let mut alice = register(&client, port, "alice").await;
    let row = alice.create_running("demo").await;
    assert!(listed_ports(&mut alice).await.is_empty());

    // In the workspace: a file, and a web server on port 8000 serving its folder.
    let ide = format!("http://alice-demo.localhost:{port}");
    let (res, _) = alice.follow(&alice.dash("/open/alice/demo?next=/")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let put = alice
        .client
        .put(format!("{ide}/files/hello.txt"))
        .header("cookie", alice.cookie_header(&ide).expect("an IDE cookie"))
        .body("hello from port 8000")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let res = alice.get(&format!("{ide}/listen?port=8000")).await;
    assert_eq!(res.status(), StatusCode::OK);

    // The dashboard lists it, without configuration.
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = listed_ports(&mut alice).await;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed, vec![8000]);

    // A stranger is sent to sign in, with the port carried through.
    let preview = format!("http://{PREVIEW}:{port}");
    let anon = client
        .get(format!("{preview}/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::FOUND);
    let to = anon.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with(&format!("http://localhost:{port}/open/alice/demo?"))
            && to.ends_with("&port=8000"),
        "{to}"
    );

    if !root {
        // Without root the server cannot enter the workspace's namespace: a clear refusal.
        let (res, _) = alice
            .follow(&alice.dash("/open/alice/demo?port=8000&next=/hello.txt"))
            .await;
        assert_eq!(res.status(), StatusCode::NOT_IMPLEMENTED);
        return;
    }

    // The owner opens it through the dashboard, like the IDE.
    let (res, hops) = alice
        .follow(&alice.dash("/open/alice/demo?port=8000&next=/hello.txt"))
        .await;
    assert!(hops.iter().any(|h| h.starts_with(&preview)), "{hops:?}");
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{hops:?} {body}");
    assert_eq!(body, "hello from port 8000");
    // Other methods pass through too.
    let head = alice
        .client
        .head(format!("{preview}/hello.txt"))
        .header(
            "cookie",
            alice.cookie_header(&preview).expect("a preview cookie"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "20");
    // Bodies and WebSockets pass too: the stand-in IDE itself on port 8002.
    let res = alice.get(&format!("{ide}/listen?port=8002&kind=ide")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let app = format!("http://{APP}:{port}");
    let (_, hops) = alice
        .follow(&alice.dash("/open/alice/demo?port=8002&next=/healthz"))
        .await;
    assert!(hops.last().unwrap().starts_with(&app), "{hops:?}");
    let up = get_until_ok(
        &alice.client,
        &format!("{app}/healthz"),
        alice.cookie_header(&app),
    )
    .await;
    let status = up.status();
    assert_eq!(status, StatusCode::OK);
    let put = alice
        .client
        .put(format!("{app}/upload.bin"))
        .header("cookie", alice.cookie_header(&app).unwrap())
        .body(vec![42u8; 300_000])
        .send()
        .await
        .unwrap();
    assert_eq!(put.json::<Value>().await.unwrap()["written"], 300_000);
    let cookie = alice.cookie_header(&app).unwrap();
    assert_eq!(
        websocket_echo(port, APP, &cookie, b"through the preview").await,
        b"through the preview"
    );

    // An app listening on ::1 only (what `localhost` means to Node and Vite) is reached too.
    let res = alice.get(&format!("{ide}/listen?port=8003&bind=::1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v6 = format!("http://8003-alice-demo.localhost:{port}");
    alice
        .follow(&alice.dash("/open/alice/demo?port=8003&next=/"))
        .await;
    let up = get_until_ok(
        &alice.client,
        &format!("{v6}/hello.txt"),
        alice.cookie_header(&v6),
    )
    .await;
    let body = up.text().await.unwrap();
    assert_eq!(body, "hello from port 8000");

    // A port nothing listens on says so.
    let (res, _) = alice
        .follow(&alice.dash("/open/alice/demo?port=8001&next=/"))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Nothing answers on port 8001"));

    // Bob, signed in, gets nothing of it: /open sends him to his own list.
    let mut bob = register(&client, port, "bobby").await;
    let (res, hops) = bob.follow(&format!("{preview}/hello.txt")).await;
    assert!(hops.last().unwrap().ends_with("/workspaces"), "{hops:?}");
    assert!(!res.text().await.unwrap().contains("hello from port"));
    assert!(!bob
        .jar
        .get(PREVIEW)
        .is_some_and(|j| j.contains_key("qingting_ws")));
    // The preview host got its own host-only cookie through its own exchange.
    assert!(alice.jar[PREVIEW].contains_key("qingting_ws"));

    // Shared with signed-in users: Bob opens it through the same exchange, with a cookie of
    // his own that opens nothing else of Alice's.
    let id = row["id"].to_string();
    let (s, shared) = share(&mut alice, &id, "users").await;
    assert_eq!(s, StatusCode::OK, "{shared}");
    assert_eq!(shared["ports"][0]["sharing"], "users");
    assert_eq!(
        shared["ports"][0]["url"],
        format!("http://{PREVIEW}:{port}")
    );
    let (res, hops) = bob.follow(&format!("{preview}/hello.txt")).await;
    assert_eq!(res.status(), StatusCode::OK, "{hops:?}");
    assert_eq!(res.text().await.unwrap(), "hello from port 8000");
    let bobs = bob.jar[PREVIEW]["qingting_ws"].clone();
    let with_bobs_cookie = |url: String| {
        client
            .get(url)
            .header("cookie", format!("qingting_ws={bobs}"))
            .send()
    };
    // On the IDE's host, or another port, his cookie is refused (sent to sign in).
    let ide_try = with_bobs_cookie(format!("{ide}/whoami")).await.unwrap();
    assert_eq!(ide_try.status(), StatusCode::FOUND);
    let other_port = with_bobs_cookie(format!("http://8001-alice-demo.localhost:{port}/"))
        .await
        .unwrap();
    assert_eq!(other_port.status(), StatusCode::FOUND);
    // Not signed in: still sent to sign in.
    let anon = client
        .get(format!("{preview}/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::FOUND);

    // Public: anyone, without signing in.
    let (s, _) = share(&mut alice, &id, "public").await;
    assert_eq!(s, StatusCode::OK);
    let anon = client
        .get(format!("{preview}/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::OK);
    assert_eq!(anon.text().await.unwrap(), "hello from port 8000");

    // Revoked: at once, for strangers and for Bob's cookie alike.
    let (s, row_now) = share(&mut alice, &id, "private").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(row_now["ports"][0]["sharing"], "private");
    let anon = client
        .get(format!("{preview}/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::FOUND);
    let bob_again = with_bobs_cookie(format!("{preview}/hello.txt"))
        .await
        .unwrap();
    assert_eq!(bob_again.status(), StatusCode::FOUND);

    // Bad requests get a clear answer, and nobody shares someone else's workspace.
    for (form, want) in [
        (
            vec![("id", id.as_str()), ("port", "0"), ("sharing", "public")],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("id", id.as_str()),
                ("port", "70000"),
                ("sharing", "public"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("id", id.as_str()),
                ("port", "8000"),
                ("sharing", "everyone"),
            ],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, body) = alice.api("/api/workspaces/share-port", &form).await;
        assert_eq!(s, want, "{form:?}: {body}");
    }
    let (s, _) = bob
        .api(
            "/api/workspaces/share-port",
            &[("id", &id), ("port", "8000"), ("sharing", "public")],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Stopped: the preview host shows the Start page.
    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &row["id"].to_string()), ("action", "stop")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    alice.wait_state("demo", "stopped").await;
    let res = alice.get(&format!("{preview}/hello.txt")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.text().await.unwrap().contains("start-workspace"));
    assert!(listed_ports(&mut alice).await.is_empty());
    // A public port of a stopped workspace: no Start button for strangers.
    let (s, _) = share(&mut alice, &id, "public").await;
    assert_eq!(s, StatusCode::OK);
    let anon = client.get(format!("{preview}/")).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = anon.text().await.unwrap();
    assert!(
        !page.contains("start-workspace") && page.contains("Only its owner"),
        "{page}"
    );
    let post = client
        .post(format!("{preview}/_qingting/start"))
        .header("origin", &preview)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);

    // Started again (a new sandbox, a new namespace): the preview follows it.
    let (s, _) = alice
        .api(
            "/api/workspaces/action",
            &[("id", &id), ("action", "start")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    alice.wait_state("demo", "running").await;
    alice.follow(&alice.dash("/open/alice/demo?next=/")).await;
    let res = alice.get(&format!("{ide}/listen?port=8000")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let status = get_until_ok(&client, &format!("{preview}/hello.txt"), None)
        .await
        .status();
    assert_eq!(status, StatusCode::OK);
}
