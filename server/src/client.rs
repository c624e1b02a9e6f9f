//! The command-line client of the JSON API (`qingting login`, `logout`, `ws …`): for people
//! at a terminal and for scripts (`--json`). Its token lives in the user's config dir, 0600;
//! `QINGTING_URL` and `QINGTING_TOKEN` override the file (CI jobs).

use crate::stdout::outln;
use anyhow::{bail, Context};
use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    time::Duration,
};
use tokio::signal::unix::{signal, Signal, SignalKind};

#[derive(Debug, Subcommand)]
pub enum WsAction {
    /// List your workspaces.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a workspace.
    Create {
        name: String,
        /// Template id (`qingting ws templates` lists them).
        #[arg(long, short)]
        template: String,
        /// Wait until it runs (or failed).
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the templates workspaces are made from.
    Templates {
        #[arg(long)]
        json: bool,
    },
    /// Start a workspace.
    Start {
        name: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stop a workspace.
    Stop {
        name: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Restart a workspace.
    Restart {
        name: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a workspace and its files.
    Delete {
        name: String,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Open a workspace in the browser (through a one-time link; `--print` only prints it).
    Open {
        name: String,
        #[arg(long)]
        print: bool,
        #[arg(long)]
        json: bool,
    },
}

/// What `qingting login` stores.
#[derive(Debug, Serialize, Deserialize)]
struct Credentials {
    url: String,
    token: String,
}

fn config_file() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("QINGTING_CLI_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(base.join("qingting").join("cli.toml"))
}

fn load() -> anyhow::Result<Credentials> {
    let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
    if let (Some(url), Some(token)) = (env("QINGTING_URL"), env("QINGTING_TOKEN")) {
        return Ok(Credentials { url, token });
    }
    let path = config_file()?;
    let text = std::fs::read_to_string(&path).map_err(|_| {
        anyhow::anyhow!("not signed in: run `qingting login --url <the server's address>` first")
    })?;
    let mut c: Credentials =
        toml::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
    if let Some(url) = env("QINGTING_URL") {
        c.url = url;
    }
    Ok(c)
}

/// Writes the credentials readable by the user only (a new file is never world-readable,
/// not even for a moment).
fn save(c: &Credentials) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let path = config_file()?;
    let dir = path.parent().context("config path has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(toml::to_string(c)?.as_bytes())?;
    f.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(c: &Credentials) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            base: c.url.trim_end_matches('/').to_string(),
            token: c.token.clone(),
        })
    }

    /// Calls the API; an error answer becomes its message.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let (status, json) = self.exchange(method, path, body).await?;
        if status.is_success() {
            return Ok(json);
        }
        match json.get("message").and_then(Value::as_str) {
            Some(m) => bail!("{m}"),
            None => bail!("{}/api/v1{path} answered {status}", self.base),
        }
    }

    /// A workspace's row; `None` once it is gone.
    async fn workspace(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let path = format!("/workspaces/{name}");
        match self.exchange(Method::GET, &path, None).await? {
            (StatusCode::NOT_FOUND, _) => Ok(None),
            _ => self.call(Method::GET, &path, None).await.map(Some),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// `qingting login --url URL`: checks a token and keeps it.
pub async fn login(url: &str, token_stdin: bool) -> anyhow::Result<()> {
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("--url must start with http:// or https://");
    }
    let stdin = std::io::stdin();
    let (token, mut interrupt) = if !token_stdin && stdin.is_terminal() {
        // Ctrl-C is caught from before the prompt shows, so it never meets the echo off; and
        // since a handler, once there, stays, it is caught for the rest of the login too.
        let mut interrupt = signal(SignalKind::interrupt())?;
        // Not echoed: a token on the screen is one in the scrollback and in screenshots. Off
        // before the prompt shows, so a paste at once is not echoed either.
        let _hidden = EchoOff::on_stdin();
        eprint!("Create a token at {url}/settings/tokens and paste it here: ");
        std::io::stderr().flush()?;
        let line = unless_interrupted(Some(&mut interrupt), read_line()).await?;
        (line, Some(interrupt))
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        (line, None)
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("no token given");
    }
    let creds = Credentials { url, token };
    let api = Api::new(&creds)?;
    let me = unless_interrupted(interrupt.as_mut(), api.call(Method::GET, "/me", None)).await?;
    let path = save(&creds)?;
    outln!(
        "Signed in to {} as {} (token kept in {})",
        creds.url,
        me["username"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(())
}

/// `qingting logout`: revokes the kept token and forgets it.
pub async fn logout() -> anyhow::Result<()> {
    let creds = load()?;
    let revoked = Api::new(&creds)?
        .call(Method::DELETE, "/tokens/current", None)
        .await;
    let path = config_file()?;
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    match revoked {
        Ok(_) => outln!("Signed out; the token is revoked."),
        Err(e) => outln!("Signed out here; the server said: {e}"),
    }
    Ok(())
}

/// `qingting ws …`.
pub async fn ws(action: WsAction) -> anyhow::Result<()> {
    let api = Api::new(&load()?)?;
    match action {
        WsAction::List { json } => {
            let v = api.call(Method::GET, "/workspaces", None).await?;
            print_rows(&v["workspaces"], json)
        }
        WsAction::Templates { json } => {
            let v = api.call(Method::GET, "/templates", None).await?;
            if json {
                return print_json(&v["templates"]);
            }
            for t in v["templates"].as_array().into_iter().flatten() {
                let ready = if t["ready"].as_bool() == Some(true) {
                    ""
                } else {
                    "  (not installed here)"
                };
                outln!("{:<20} {}{ready}", s(&t["id"]), s(&t["name"]));
            }
            Ok(())
        }
        WsAction::Create {
            name,
            template,
            wait,
            json,
        } => {
            let body = serde_json::json!({ "name": name, "template": template });
            let row = api.call(Method::POST, "/workspaces", Some(body)).await?;
            finish(&api, &name, row, wait, json, false).await
        }
        WsAction::Start { name, wait, json } => act(&api, &name, "start", wait, json).await,
        WsAction::Stop { name, wait, json } => act(&api, &name, "stop", wait, json).await,
        WsAction::Restart { name, wait, json } => act(&api, &name, "restart", wait, json).await,
        WsAction::Delete { name, wait, json } => {
            let row = api
                .call(Method::DELETE, &format!("/workspaces/{name}"), None)
                .await?;
            finish(&api, &name, row, wait, json, true).await
        }
        WsAction::Open { name, print, json } => {
            let v = api
                .call(Method::POST, &format!("/workspaces/{name}/open"), None)
                .await?;
            let url = s(&v["url"]);
            if json {
                return print_json(&v);
            }
            if !print && launch(url) {
                outln!("Opened {name} in your browser (confirm there).");
            } else {
                outln!("{url}");
            }
            Ok(())
        }
    }
}

async fn act(api: &Api, name: &str, action: &str, wait: bool, json: bool) -> anyhow::Result<()> {
    let row = api
        .call(Method::POST, &format!("/workspaces/{name}/{action}"), None)
        .await?;
    finish(api, name, row, wait, json, false).await
}

/// Prints the row, after waiting (with `--wait`) until it settled; a workspace that ended
/// `failed` is an error (exit status 1) with its reason.
async fn finish(
    api: &Api,
    name: &str,
    mut row: Value,
    wait: bool,
    json: bool,
    deleting: bool,
) -> anyhow::Result<()> {
    if wait {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while row["controls"]["busy"].as_bool() == Some(true) {
            if tokio::time::Instant::now() > deadline {
                bail!("{name} is still {} after 10 minutes", s(&row["state"]));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            match api.workspace(name).await? {
                Some(r) => row = r,
                None if deleting => {
                    if json {
                        return print_json(
                            &serde_json::json!({ "name": name, "state": "deleted" }),
                        );
                    }
                    outln!("{name} deleted");
                    return Ok(());
                }
                None => bail!("{name} is gone"),
            }
        }
    }
    if json {
        print_json(&row)?;
    } else {
        print_rows(&Value::Array(vec![row.clone()]), false)?;
    }
    if row["state"] == "failed" {
        bail!("{name} failed: {}", s(&row["reason"]));
    }
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_rows(rows: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(rows);
    }
    let rows = rows.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        outln!("No workspaces yet: `qingting ws create NAME --template ID`.");
        return Ok(());
    }
    outln!("{:<24} {:<20} {:<10} REASON", "NAME", "TEMPLATE", "STATE");
    for r in rows {
        outln!(
            "{:<24} {:<20} {:<10} {}",
            s(&r["name"]),
            s(&r["template_id"]),
            s(&r["state"]),
            s(&r["reason"])
        );
    }
    Ok(())
}

/// Hands the URL to the desktop's browser; false when there is none to hand it to.
fn launch(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let has_display = cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some();
    has_display
        && std::process::Command::new(opener)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `work`, or an error as soon as `interrupt` (if any) catches Ctrl-C. Returning the error,
/// rather than dying of the signal, lets the caller's guards (the terminal's echo) undo
/// themselves.
async fn unless_interrupted<T>(
    interrupt: Option<&mut Signal>,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let Some(interrupt) = interrupt else {
        return work.await;
    };
    tokio::select! {
        done = work => done,
        _ = interrupt.recv() => {
            let _ = writeln!(std::io::stderr());
            bail!("interrupted: no token kept")
        }
    }
}

/// A line from standard input, read on a thread of its own rather than the runtime's blocking
/// pool: the runtime waits for its blocking tasks at exit, and this read ends only with a line.
async fn read_line() -> anyhow::Result<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().lock().read_line(&mut line).map(|_| line));
    });
    Ok(rx.await.context("standard input closed")??)
}

/// The terminal on standard input without echo, until dropped.
struct EchoOff {
    before: Option<libc::termios>,
}

impl EchoOff {
    fn on_stdin() -> Self {
        // SAFETY: termios is plain data that tcgetattr fills in; fd 0 is standard input.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return Self { before: None };
            }
            let before = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return Self { before: None };
            }
            Self {
                before: Some(before),
            }
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(before) = &self.before {
            // SAFETY: restores the settings read in `on_stdin`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, before);
            }
        }
    }
}
