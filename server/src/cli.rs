//! The command line: every option is also an environment variable (`QINGTING_…`) and a key
//! in the optional TOML file; flags beat the environment, which beats the file.

use crate::{settings, stdout::outln, telemetry::LogFormat};
use clap::{Args, Parser, Subcommand};
use qingting_core::{editors::Editor, templates, Config};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "qingting",
    version,
    about = "QingTing Studio: self-hosted, serverless Web IDE workspaces",
    long_about = "QingTing Studio: self-hosted, serverless Web IDE workspaces.\n\n\
        With no arguments, serves a complete local instance on http://localhost:3000 \
        with its data (SQLite database, secrets) under ./data."
)]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,
    /// Log output format.
    #[arg(
        long,
        global = true,
        env = "QINGTING_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct Options {
    /// TOML configuration file (optional; see docs/configuration.md).
    #[arg(long, global = true, env = "QINGTING_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:3000].
    #[arg(long, global = true, env = "QINGTING_LISTEN")]
    pub listen: Option<String>,
    /// URL people use to reach the dashboard [default: http://localhost:3000].
    #[arg(long, global = true, env = "QINGTING_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory for the database, secrets and user data [default: ./data].
    #[arg(long, global = true, env = "QINGTING_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://…, postgres://… or mysql://… [default: SQLite in the data dir].
    #[arg(
        long,
        global = true,
        env = "QINGTING_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Proxy address whose X-Forwarded-For is trusted (repeat, or comma-separate in the
    /// environment).
    #[arg(
        long = "trusted-proxy",
        global = true,
        env = "QINGTING_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Directory with the compiled site (WASM, JS, CSS) [default: found next to the binary].
    #[arg(long, global = true, env = "QINGTING_SITE_ROOT")]
    pub site_root: Option<String>,
    /// GitHub OAuth app client id (enables "Sign in with GitHub").
    #[arg(long, global = true, env = "QINGTING_GITHUB_CLIENT_ID")]
    pub github_client_id: Option<String>,
    /// GitHub OAuth app client secret.
    #[arg(
        long,
        global = true,
        env = "QINGTING_GITHUB_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub github_client_secret: Option<String>,
    /// S3 access key id (with `objects.backend = "s3"`).
    #[arg(
        long,
        global = true,
        env = "QINGTING_S3_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key.
    #[arg(
        long,
        global = true,
        env = "QINGTING_S3_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// Where IDEs are installed [default: <data-dir>/editors].
    #[arg(long, global = true, env = "QINGTING_EDITORS_DIR")]
    pub editors_dir: Option<String>,
    /// Run workspace IDEs without a sandbox where this host cannot isolate them (no
    /// bubblewrap). Never on a machine shared with people you do not trust.
    #[arg(long, global = true, env = "QINGTING_INSECURE_NO_SANDBOX")]
    pub insecure_no_sandbox: bool,
    /// Workspaces running at once on this server, whoever owns them; starts beyond it are
    /// refused [default: one per GiB of memory with the local runtime].
    #[arg(long, global = true, env = "QINGTING_MAX_RUNNING")]
    pub max_running: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard and API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets masked) and exit.
    Config,
    /// Install or inspect the IDEs workspaces run (code-server, JupyterLab).
    Editors {
        #[command(subcommand)]
        action: EditorsAction,
    },
    /// Run the in-repo Function Compute 3.0 simulator (for tests and local trials of the `fc`
    /// runtime). It accepts the credentials in ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET.
    FcSim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3901")]
        listen: String,
        /// Milliseconds added to every answer.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Milliseconds a new or updated function stays Pending.
        #[arg(long, default_value_t = 300)]
        pending_ms: u64,
    },
    /// Run the in-repo stand-in for GitHub OAuth (for tests and local trials).
    FakeGithub {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3900")]
        listen: String,
        /// OAuth client id the fake accepts.
        #[arg(
            long,
            env = "QINGTING_GITHUB_CLIENT_ID",
            default_value = "qingting-dev"
        )]
        client_id: String,
        /// OAuth client secret the fake accepts.
        #[arg(
            long,
            env = "QINGTING_GITHUB_CLIENT_SECRET",
            default_value = "qingting-dev-secret",
            hide_env_values = true
        )]
        client_secret: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EditorsAction {
    /// Install editors from the package registries into the editors dir (all by default).
    Install {
        /// Which editors: vscode, jupyter.
        #[arg(value_enum)]
        editors: Vec<EditorArg>,
    },
    /// Show which editors are installed and which templates can run.
    Status,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EditorArg {
    Vscode,
    Jupyter,
}

impl From<EditorArg> for Editor {
    fn from(e: EditorArg) -> Self {
        match e {
            EditorArg::Vscode => Editor::Vscode,
            EditorArg::Jupyter => Editor::Jupyter,
        }
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        if let Some(Command::FcSim {
            listen,
            latency_ms,
            pending_ms,
        }) = self.command
        {
            let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let (Some(id), Some(secret)) = (
                var("ALIBABA_CLOUD_ACCESS_KEY_ID"),
                var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            ) else {
                anyhow::bail!("set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (the credentials the simulator accepts)");
            };
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            outln!(
                "FC simulator listening on http://{}",
                listener.local_addr()?
            );
            let control = std::sync::Arc::new(qingting_fc::sim::SimControl::default());
            control
                .latency_ms
                .store(latency_ms, std::sync::atomic::Ordering::SeqCst);
            let cfg = qingting_fc::sim::SimConfig {
                access_key_id: id,
                access_key_secret: secret,
                pending: std::time::Duration::from_millis(pending_ms),
                ..Default::default()
            };
            return Ok(qingting_fc::sim::serve(listener, cfg, control).await?);
        }
        if let Some(Command::FakeGithub {
            listen,
            client_id,
            client_secret,
        }) = self.command
        {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            outln!("fake GitHub listening on http://{}", listener.local_addr()?);
            let config = qingting_fake_github::FakeGithubConfig {
                client_id,
                client_secret,
            };
            return Ok(qingting_fake_github::serve(listener, config).await?);
        }
        let config = settings::load(&self.options)?;
        let command = self.command.unwrap_or(Command::Serve);
        if matches!(command, Command::Serve | Command::Migrate) {
            // Database, secrets, objects and logs: the server's user's alone.
            crate::secrets::private_umask();
        }
        match command {
            Command::Serve => {
                let server = crate::start(config).await?;
                server.wait().await
            }
            Command::Migrate => {
                let db = qingting_core::store::connect(&config.effective_database_url()).await?;
                qingting_core::store::migrate(&db).await?;
                outln!("migrations applied");
                Ok(())
            }
            Command::Config => {
                crate::stdout::write(format_args!("{}", settings::describe(&config)));
                Ok(())
            }
            Command::Editors { action } => editors(&config, action).await,
            Command::FakeGithub { .. } | Command::FcSim { .. } => unreachable!("handled above"),
        }
    }
}

async fn editors(config: &Config, action: EditorsAction) -> anyhow::Result<()> {
    let dir = config.editors_dir();
    match action {
        EditorsAction::Install { editors } => {
            let which: Vec<Editor> = if editors.is_empty() {
                Editor::ALL.to_vec()
            } else {
                editors.into_iter().map(Editor::from).collect()
            };
            for editor in which {
                crate::stdout::progress(&format!("==> {}", editor.label()));
                editor.install(&dir, &crate::stdout::progress).await?;
            }
            Ok(())
        }
        EditorsAction::Status => {
            outln!("editors dir: {}", dir.display());
            for e in Editor::ALL {
                let state = if e.is_installed(&dir) {
                    "installed"
                } else {
                    "not installed"
                };
                outln!("  {:<24} {state}", e.label());
            }
            let path = (!config.templates_file.is_empty())
                .then(|| std::path::PathBuf::from(&config.templates_file));
            outln!("templates:");
            for t in templates::load(path.as_deref())? {
                let ready = if t.editor.is_installed(&dir) {
                    "ready"
                } else {
                    "editor missing"
                };
                outln!("  {:<20} {:<24} {ready}", t.id, t.name);
            }
            Ok(())
        }
    }
}
