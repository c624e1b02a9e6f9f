//! Personal API tokens, the JSON API and the `qingting` CLI against a running server, on
//! SQLite, Postgres and MariaDB: a token made on the settings page drives the CLI through
//! create, list, open (the one-time link, confirmed in the "browser") and delete; a revoked
//! token fails at once and so does the browser session opened through it; the API's
//! refusals all have the shape `{"code", "message"}`; cookies are never a credential there.

use qingting_core::{
    audit::{self, Filter},
    testing::{sandbox_available, Backend, TestDatabase},
};
mod common;

use common::{register, Browser};
use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};
use std::{os::unix::fs::PermissionsExt, path::Path, process::Output};

const BIN: &str = env!("CARGO_BIN_EXE_qingting");

qingting_core::on_every_backend!(
    the_cli_creates_opens_and_deletes_with_a_token_until_it_is_revoked,
    the_api_answers_every_refusal_in_one_shape,
    admins_script_the_instance_and_members_find_nothing,
);

struct Harness {
    port: u16,
    client: Client,
    server: common::TestServer,
    tdb: TestDatabase,
}

impl Harness {
    fn dash(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    /// One JSON API request with `token` (sent by [`answer`]).
    fn request(
        &self,
        method: reqwest::Method,
        url: String,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::RequestBuilder {
        let req = self.client.request(method, url).bearer_auth(token);
        match body {
            Some(b) => req.json(&b),
            None => req,
        }
    }

    async fn stop(self) {
        drop(self.server);
        self.tdb.drop_database().await;
    }
}

/// Sends `req`: its status and JSON body (`null` when there is none).
async fn answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

async fn start(backend: Backend) -> Option<Harness> {
    let tdb = TestDatabase::create(backend).await?;
    let url = tdb.url.clone();
    let server = common::start_server(|config| {
        config.database_url = Some(url);
        config.workspaces.max_per_user = 2;
    })
    .await;
    let port = server.port;
    Some(Harness {
        port,
        client: common::client(port, &["alice-demo.localhost"]),
        server,
        tdb,
    })
}

/// Makes a token on the settings page; its secret and id.
async fn make_token(b: &mut Browser, name: &str, access: &str) -> (String, i64) {
    let (s, body) = b
        .api(
            "/api/settings/create-token",
            &[("name", name), ("access", access), ("days", "30")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let secret = body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("qt_"), "{secret}");
    (secret, body["token"]["id"].as_i64().unwrap())
}

/// Runs the CLI with its config in `home`, feeding `stdin`.
async fn cli(home: &Path, args: &[&str], stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(BIN)
        .args(args)
        .env("QINGTING_CLI_CONFIG", home.join("cli.toml"))
        .env_remove("QINGTING_URL")
        .env_remove("QINGTING_TOKEN")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// `qingting login --url URL` on a terminal (`script` gives it one), the token typed once the
/// prompt shows; returns what the terminal showed.
async fn login_on_a_terminal(home: &Path, url: &str, token: &str) -> String {
    let (status, screen) = on_a_terminal(
        home,
        &format!("{BIN} login --url {url}"),
        &[format!("{token}\n").as_bytes()],
    )
    .await;
    assert!(status.success(), "{screen}");
    screen
}

/// Runs the shell line `command` on a terminal (`script`, util-linux; bash as its shell) with
/// `home`'s CLI config, types `keys` once the login prompt shows (a pause between each), and
/// returns the exit status and everything the terminal showed.
async fn on_a_terminal(
    home: &Path,
    command: &str,
    keys: &[&[u8]],
) -> (std::process::ExitStatus, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env("SHELL", "/bin/bash")
        .env("QINGTING_CLI_CONFIG", home.join("cli.toml"))
        .env_remove("QINGTING_URL")
        .env_remove("QINGTING_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the login on a terminal");
    let mut out = child.stdout.take().unwrap();
    let mut screen = Vec::new();
    let mut buf = [0u8; 1024];
    // Typed only once asked: what arrives earlier is echoed before the prompt turns echo off.
    while !String::from_utf8_lossy(&screen).contains("paste it here") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), out.read(&mut buf))
            .await
            .expect("the prompt shows")
            .unwrap();
        assert!(
            n > 0,
            "ended before asking: {}",
            String::from_utf8_lossy(&screen)
        );
        screen.extend_from_slice(&buf[..n]);
    }
    let mut input = child.stdin.take().unwrap();
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        input.write_all(k).await.unwrap();
    }
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        out.read_to_end(&mut screen),
    )
    .await
    .expect("the command ends")
    .unwrap();
    let status = child.wait().await.unwrap();
    drop(input);
    (status, String::from_utf8_lossy(&screen).to_string())
}

/// Ctrl-C at the token prompt, or while the token is being checked, ends the login with
/// status 1 and the terminal's echo back: the person's shell is not left blind, nor the command
/// deaf to Ctrl-C.
#[tokio::test]
async fn ctrl_c_during_login_leaves_the_terminal_as_it_was() {
    // A server that takes the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", silent.local_addr().unwrap());
    for (when, keys) in [
        ("at the prompt", vec![&b"\x03"[..]]),
        (
            "while checking",
            vec![&b"qt_not_answered\n"[..], &b"\x03"[..]],
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        let line = format!("{BIN} login --url {silent}; echo \"exit=$?\"; stty -a");
        let (status, screen) = on_a_terminal(home.path(), &line, &keys).await;
        assert!(status.success(), "{when}: {screen}");
        assert!(screen.contains("interrupted"), "{when}: {screen}");
        let (_, modes) = screen
            .split_once("exit=1\r\n")
            .unwrap_or_else(|| panic!("{when}: not status 1: {screen}"));
        assert!(
            modes.split_whitespace().any(|m| m == "echo"),
            "{when}: echo is still off:\n{modes}"
        );
        assert!(
            !home.path().join("cli.toml").exists(),
            "{when}: no token kept"
        );
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_out(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("not JSON: {}", text(o)))
}

async fn the_cli_creates_opens_and_deletes_with_a_token_until_it_is_revoked(backend: Backend) {
    if !sandbox_available() {
        return;
    }
    let Some(h) = start(backend).await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mut alice = register(&h.client, h.port, "alice").await;
    let (secret, token_id) = make_token(&mut alice, "laptop", "workspaces").await;
    let url = h.dash("");

    let out = cli(
        home.path(),
        &["login", "--url", &url, "--token-stdin"],
        &secret,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("as alice"),
        "{}",
        text(&out)
    );
    let mode = std::fs::metadata(home.path().join("cli.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the kept token is the user's alone");

    let created = json_out(
        &cli(
            home.path(),
            &[
                "ws",
                "create",
                "demo",
                "--template",
                "test-ide",
                "--wait",
                "--json",
            ],
            "",
        )
        .await,
    );
    assert_eq!(created["state"], "running", "{created}");
    let listed = json_out(&cli(home.path(), &["ws", "list", "--json"], "").await);
    assert_eq!(listed[0]["name"], "demo");
    let human = cli(home.path(), &["ws", "list"], "").await;
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("demo"),
        "{}",
        text(&human)
    );

    // Open: a one-time link; the browser confirms on the workspace's own page, then is in.
    let out = cli(home.path(), &["ws", "open", "demo", "--print"], "").await;
    assert!(out.status.success(), "{}", text(&out));
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(link.contains("/_qingting/auth?token="), "{link}");
    let mut browser = Browser::new(&h.client, h.port);
    let page = browser.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Open workspace <code>alice/demo</code>?"),
        "{html}"
    );
    let token = between(&html, "name=\"token\" value=\"", "\"");
    let ws_origin = format!("http://alice-demo.localhost:{}", h.port);
    let res = browser
        .send(
            h.client
                .post(format!("{ws_origin}/_qingting/auth"))
                .header(header::ORIGIN, &ws_origin)
                .form(&[("token", token.as_str()), ("next", "/")]),
            &format!("{ws_origin}/_qingting/auth"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let ide = browser.get(&format!("{ws_origin}/")).await;
    assert_eq!(
        ide.status(),
        StatusCode::OK,
        "the IDE answers through the link's session"
    );

    // Revoked on the settings page: the CLI fails at once, and so does that browser.
    let (s, _) = alice
        .api(
            "/api/settings/revoke-token",
            &[("id", &token_id.to_string())],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let out = cli(home.path(), &["ws", "list"], "").await;
    assert!(!out.status.success());
    // Said once, on standard error; standard output stays for what scripts read.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("not valid")
            .count(),
        1,
        "{}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let after = browser.get(&format!("{ws_origin}/")).await;
    assert_eq!(
        after.status(),
        StatusCode::FOUND,
        "the opened session ended with the token"
    );

    // A new token, pasted at the prompt on a terminal: not shown. Then delete with --wait,
    // the list is empty; logout revokes it.
    let (secret, _) = make_token(&mut alice, "second", "workspaces").await;
    let screen = login_on_a_terminal(home.path(), &url, &secret).await;
    assert!(screen.contains("paste it here"), "{screen}");
    assert!(screen.contains("as alice"), "{screen}");
    assert!(!screen.contains(&secret), "the token was echoed: {screen}");
    let deleted = json_out(
        &cli(
            home.path(),
            &["ws", "delete", "demo", "--wait", "--json"],
            "",
        )
        .await,
    );
    assert_eq!(deleted["state"], "deleted");
    let listed = json_out(&cli(home.path(), &["ws", "list", "--json"], "").await);
    assert_eq!(listed, json!([]));
    let out = cli(home.path(), &["logout"], "").await;
    assert!(out.status.success(), "{}", text(&out));
    let (_, tokens) = alice.api("/api/settings/tokens", &[]).await;
    assert_eq!(tokens, json!([]), "logout revoked the token");

    let actions: Vec<String> = {
        let mut all = Vec::new();
        audit::for_each(&h.server.state().db, &Filter::default(), |e| {
            all.push(format!("{} {} {}", e.action, e.actor, e.outcome));
            Ok(())
        })
        .await
        .unwrap();
        all
    };
    for want in [
        "token_create alice ok",
        "workspace_create alice ok",
        "token_revoke alice ok",
        "workspace_delete alice ok",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    h.stop().await;
}

fn between(s: &str, start: &str, end: &str) -> String {
    let from = s.find(start).unwrap() + start.len();
    let to = s[from..].find(end).unwrap() + from;
    s[from..to].to_string()
}

async fn the_api_answers_every_refusal_in_one_shape(backend: Backend) {
    if !sandbox_available() {
        return;
    }
    let Some(h) = start(backend).await else {
        return;
    };
    let mut alice = register(&h.client, h.port, "alice").await;
    let (rw, _) = make_token(&mut alice, "rw", "workspaces").await;
    let (ro, _) = make_token(&mut alice, "ro", "read").await;
    let api = |path: &str| h.dash(&format!("/api/v1{path}"));
    let shape = |status: StatusCode, body: &Value, code: &str| {
        assert_eq!(body["code"], code, "{status} {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };

    // No token; a cookie is no token; a wrong one.
    let res = h.client.get(api("/workspaces")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    shape(res.status(), &res.json().await.unwrap(), "unauthorized");
    let res = alice.get(&api("/workspaces")).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the session cookie opens nothing"
    );
    let res = h
        .client
        .get(api("/me"))
        .bearer_auth("qt_notarealtokenatall")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let call =
        |method, path: &str, token: &str, body| answer(h.request(method, api(path), token, body));
    use reqwest::Method;
    let (s, me) = call(Method::GET, "/me", &ro, None).await;
    assert_eq!(
        (s, me["username"].as_str(), me["role"].as_str()),
        (StatusCode::OK, Some("alice"), Some("admin"))
    );

    // A read-only token reads but does not act.
    let (s, b) = call(
        Method::POST,
        "/workspaces",
        &ro,
        Some(json!({"name": "x", "template": "test-ide"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    shape(s, &b, "forbidden");
    let (s, _) = call(Method::GET, "/templates", &ro, None).await;
    assert_eq!(s, StatusCode::OK);

    // Bad bodies and fields.
    let res = h
        .client
        .post(api("/workspaces"))
        .bearer_auth(&rw)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    shape(
        StatusCode::BAD_REQUEST,
        &res.json().await.unwrap(),
        "invalid",
    );
    let (s, b) = call(
        Method::POST,
        "/workspaces",
        &rw,
        Some(json!({"name": "Bad Name", "template": "test-ide"})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name")),
        "{b}"
    );
    shape(s, &b, "invalid");
    let (s, b) = call(
        Method::POST,
        "/workspaces",
        &rw,
        Some(json!({"name": "x", "template": "nope"})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("template")),
        "{b}"
    );

    // Not found, a name taken, a quota, an unknown action, an unknown endpoint.
    let (s, b) = call(Method::POST, "/workspaces/ghost/start", &rw, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    shape(s, &b, "not_found");
    let (s, b) = call(
        Method::POST,
        "/workspaces",
        &rw,
        Some(json!({"name": "one", "template": "test-ide"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = call(
        Method::POST,
        "/workspaces",
        &rw,
        Some(json!({"name": "one", "template": "test-ide"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    shape(s, &b, "conflict");
    let (s, b) = call(
        Method::POST,
        "/workspaces",
        &rw,
        Some(json!({"name": "two", "template": "test-ide"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = call(
        Method::POST,
        "/workspaces",
        &rw,
        Some(json!({"name": "three", "template": "test-ide"})),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    shape(s, &b, "limit_reached");
    assert!(b["message"].as_str().unwrap().contains("at most 2"), "{b}");
    let (s, b) = call(Method::POST, "/workspaces/one/explode", &rw, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    shape(s, &b, "not_found");
    let (s, b) = call(Method::GET, "/nothing-here", &rw, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    shape(s, &b, "not_found");
    let (s, b) = call(
        Method::PUT,
        "/workspaces/one/ports/99999",
        &rw,
        Some(json!({"sharing": "public"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    shape(s, &b, "invalid");

    // Cross-site headers do not matter here (no cookie is read), and no CSRF rule applies.
    for _ in 0..600 {
        let (_, row) = call(Method::GET, "/workspaces/two", &rw, None).await;
        if row["controls"]["busy"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let res = h
        .client
        .delete(api("/workspaces/two"))
        .bearer_auth(&rw)
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    h.stop().await;
}

async fn admins_script_the_instance_and_members_find_nothing(backend: Backend) {
    if !sandbox_available() {
        return;
    }
    let Some(h) = start(backend).await else {
        return;
    };
    let mut alice = register(&h.client, h.port, "alice").await;
    let mut bob = register(&h.client, h.port, "bob").await;
    let (admin_rw, _) = make_token(&mut alice, "ops", "workspaces").await;
    let (admin_ro, _) = make_token(&mut alice, "graphs", "read").await;
    let (member, _) = make_token(&mut bob, "mine", "workspaces").await;
    bob.create_running("demo").await;
    let api = |path: &str| h.dash(&format!("/api/v1/admin{path}"));
    let call =
        |method, path: &str, token: &str, body| answer(h.request(method, api(path), token, body));
    use reqwest::Method;
    // A member's token: none of it exists.
    for (m, path) in [
        (Method::GET, "/users"),
        (Method::GET, "/workspaces"),
        (Method::GET, "/audit"),
        (Method::GET, "/instance"),
        (Method::POST, "/users/alice/suspend"),
    ] {
        let (s, b) = call(m, path, &member, None).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    // An admin's read-only token reads and may not act.
    let (s, users) = call(Method::GET, "/users?sort=name", &admin_ro, None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let (s, b) = call(Method::POST, "/users/bob/suspend", &admin_ro, None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // The read-write one: a quota, a stop, a suspension; all in the log.
    let (s, _) = call(
        Method::PUT,
        "/users/bob/quota",
        &admin_rw,
        Some(json!({"workspaces": 9, "running": null})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = call(
        Method::PUT,
        "/users/bob/quota",
        &admin_rw,
        Some(json!({"memory_mb": 1})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("memory_mb")),
        "{b}"
    );
    let (_, list) = call(Method::GET, "/workspaces", &admin_rw, None).await;
    let id = list["workspaces"][0]["id"].as_i64().unwrap();
    assert_eq!(list["workspaces"][0]["owner"], "bob");
    let (s, _) = call(
        Method::POST,
        &format!("/workspaces/{id}/stop"),
        &admin_rw,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    bob.wait_state("demo", "stopped").await;
    let (s, b) = call(Method::POST, "/workspaces/nonsense/stop", &admin_rw, None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = call(Method::POST, "/users/bob/suspend", &admin_rw, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let res = h
        .client
        .get(h.dash("/api/v1/me"))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a suspended member's token is refused"
    );
    let (s, b) = call(Method::POST, "/users/alice/suspend", &admin_rw, None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "not yourself: {b}"
    );
    let (_, log) = call(Method::GET, "/audit?user=bob", &admin_ro, None).await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in ["suspend", "workspace_stop", "quota_change"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let (s, b) = call(Method::DELETE, "/users/bob", &admin_rw, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, users) = call(Method::GET, "/users", &admin_ro, None).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    h.stop().await;
}
