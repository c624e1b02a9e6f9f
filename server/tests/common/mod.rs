//! Shared by the HTTP test suites: a browser stand-in that keeps cookies per host (as
//! browsers do for host-only cookies) and follows redirects across the dashboard and
//! workspace hosts, and a client that resolves those hosts to the test server.
#![allow(dead_code)]

pub mod metrics_text;

use reqwest::{header, redirect::Policy, Client, Response, StatusCode};
use serde_json::Value;
use std::{collections::HashMap, time::Duration};

/// A client for `localhost` and the given workspace hosts, all on 127.0.0.1:`port`.
pub fn client(port: u16, hosts: &[&str]) -> Client {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // A request that never gets an answer fails the test with its URL instead of hanging
    // the run.
    let mut builder = Client::builder()
        .redirect(Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60));
    for host in std::iter::once(&"localhost").chain(hosts) {
        builder = builder.resolve(host, addr);
    }
    builder.build().unwrap()
}

/// A browser: cookies kept per host (host-only, as browsers do for cookies without Domain).
pub struct Browser {
    pub client: Client,
    pub port: u16,
    pub jar: HashMap<String, HashMap<String, String>>,
}

impl Browser {
    pub fn new(client: &Client, port: u16) -> Self {
        Self {
            client: client.clone(),
            port,
            jar: HashMap::new(),
        }
    }

    pub fn dash(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    pub fn cookie_header(&self, url: &str) -> Option<String> {
        let host = reqwest::Url::parse(url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string();
        let c = self.jar.get(&host)?;
        (!c.is_empty()).then(|| {
            c.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub fn remember(&mut self, url: &str, res: &Response) {
        let host = reqwest::Url::parse(url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string();
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            assert!(
                !v.to_ascii_lowercase().contains("domain="),
                "cookies must be host-only: {v}"
            );
            let (k, val) = v.split(';').next().unwrap().split_once('=').unwrap();
            let jar = self.jar.entry(host.clone()).or_default();
            if val.is_empty() || v.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.into(), val.into());
            }
        }
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder, url: &str) -> Response {
        let req = match self.cookie_header(url) {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        let res = req.send().await.unwrap();
        self.remember(url, &res);
        res
    }

    pub async fn get(&mut self, url: &str) -> Response {
        let req = self.client.get(url).header(header::ACCEPT, "text/html");
        self.send(req, url).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Response {
        let req = self.client.post(url).form(form);
        self.send(req, url).await
    }

    pub async fn api(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let url = self.dash(path);
        let res = self.post(&url, form).await;
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Follows redirects (at most 6 hops), returning the final response and the URLs seen.
    /// As a browser does, every hop carries the referrer of the navigation that started the
    /// chain: a dashboard URL is followed as if clicked on a dashboard page (so the
    /// dashboard's origin is the `Referer`), a workspace URL as if typed (no `Referer`).
    pub async fn follow(&mut self, url: &str) -> (Response, Vec<String>) {
        let mut url = url.to_string();
        let mut seen = vec![url.clone()];
        let referer = url
            .starts_with(&self.dash("/"))
            .then(|| self.dash("/workspaces"));
        for _ in 0..6 {
            let mut req = self.client.get(&url).header(header::ACCEPT, "text/html");
            if let Some(r) = &referer {
                req = req.header(header::REFERER, r);
            }
            let res = self.send(req, &url).await;
            if res.status() != StatusCode::FOUND {
                return (res, seen);
            }
            let loc = res.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_string();
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(&loc)
                .unwrap()
                .to_string();
            seen.push(url.clone());
        }
        panic!("redirect loop: {seen:?}");
    }

    pub async fn wait_state(&mut self, name: &str, want: &str) -> Value {
        for _ in 0..300 {
            let (_, page) = self.api("/api/workspaces/list", &[]).await;
            if let Some(w) = page["workspaces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["name"] == name)
            {
                if w["state"] == want {
                    return w.clone();
                }
                assert!(
                    w["state"] != "failed" || want == "failed",
                    "{name} failed: {w}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name} never became {want}");
    }
}

/// Registers `user` and returns their signed-in browser.
pub async fn register(client: &Client, port: u16, user: &str) -> Browser {
    let mut b = Browser::new(client, port);
    let (s, _) = b
        .api(
            "/api/register",
            &[("username", user), ("password", "correct horse battery")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    b
}

/// The stand-in IDE as an operator template file.
pub const TEST_TEMPLATES: &str = r#"[[template]]
id = "test-ide"
name = "Test IDE"
editor = "vscode"
language = "python"
memory_mb = 256
max_processes = 64
health_path = "/healthz"
command = ["/usr/bin/python3", "{editors}/test-ide/test_ide.py", "{socket}", "{files}"]
"#;

/// A server on a free port with the stand-in IDE's template, its own data dir and uid range;
/// its IDEs are killed when it is dropped (they outlive a server by design).
pub struct TestServer {
    _reaper: qingting_core::testing::IdeReaper,
    pub port: u16,
    _server: qingting_server::RunningServer,
    pub dir: tempfile::TempDir,
}

/// Starts a [`TestServer`], its configuration `tweak`ed first.
pub async fn start_server(tweak: impl FnOnce(&mut qingting_core::Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    qingting_core::testing::install_test_ide(&dir.path().join("editors"));
    let templates = dir.path().join("templates.toml");
    std::fs::write(&templates, TEST_TEMPLATES).unwrap();
    let port = qingting_core::testing::free_port();
    let mut config = qingting_core::Config {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://localhost:{port}"),
        data_dir: dir.path().to_path_buf(),
        templates_file: Some(templates),
        ..Default::default()
    };
    config.workspaces.local.uid_base = qingting_core::testing::unique_uid_base();
    tweak(&mut config);
    let server = qingting_server::start(config).await.expect("server starts");
    TestServer {
        _reaper: qingting_core::testing::IdeReaper(dir.path().to_path_buf()),
        port,
        _server: server,
        dir,
    }
}

impl TestServer {
    /// The running server's state (its database, metrics, services).
    pub fn state(&self) -> &qingting_core::AppState {
        &self._server.state
    }
}

impl Browser {
    /// Creates `name` from the stand-in IDE's template and waits until it runs; its row.
    pub async fn create_running(&mut self, name: &str) -> Value {
        let (s, row) = self
            .api(
                "/api/workspaces/create",
                &[("name", name), ("template", "test-ide")],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{row}");
        self.wait_state(name, "running").await;
        row
    }
}

/// GETs `url` (with `cookie`, if any) until it answers `200`, for at most 5 s: an app started
/// in a workspace takes a moment to listen. Returns the last answer.
pub async fn get_until_ok(client: &Client, url: &str, cookie: Option<String>) -> Response {
    let mut tries = 0;
    loop {
        let mut req = client.get(url);
        if let Some(c) = &cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = req.send().await.unwrap();
        tries += 1;
        // Up to 30 s: a process started inside a workspace, on a loaded machine.
        if res.status() == StatusCode::OK || tries >= 600 {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
