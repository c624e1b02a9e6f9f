//! The command line: the subcommands, and every setting as a flag (see `settings`); flags beat
//! the environment, which beats the file.

use crate::{settings, stdout::outln, telemetry::LogFormat};
use clap::{Parser, Subcommand};
use qingting_core::{editors::Editor, templates, Config};

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
    pub sources: settings::Sources,
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

/// The kinds of process the binary runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Runs until stopped; its log is its output.
    Server,
    /// A server's own one-shot command (`migrate`, `admin`, `audit export`, `editors`): its
    /// output is what it prints, its log is for the operator.
    Tool,
    /// The command-line client (`login`, `logout`, `ws`), talking to a server over the API.
    Client,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard and API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets masked) and exit.
    Config {
        /// Print the table of every setting for docs/configuration.md instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Sign this command line in to a QingTing server with a personal API token.
    Login {
        /// The server's address, e.g. https://studio.example.com
        #[arg(long)]
        url: String,
        /// Read the token from standard input without asking (scripts).
        #[arg(long)]
        token_stdin: bool,
    },
    /// Revoke the kept token and forget it.
    Logout,
    /// Your workspaces on the server `qingting login` signed in to.
    Ws {
        #[command(subcommand)]
        action: crate::client::WsAction,
    },
    /// Make an account an admin, or a member again (on the server's machine: no sign-in).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
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
        /// Milliseconds a new function stays Pending (its image cached), and an update that
        /// changes the image InProgress.
        #[arg(long, default_value_t = 300)]
        pending_ms: u64,
        /// Milliseconds any other update stays InProgress (its configuration rolling out).
        #[arg(long, default_value_t = 100)]
        pending_update_ms: u64,
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

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Make USER an admin.
    Grant { user: String },
    /// Make USER a member (refused for the last admin).
    Revoke { user: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Print entries as JSON lines, oldest first.
    Export {
        /// From this time on: Unix seconds, a date (2026-11-30, UTC) or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Before this time (same forms).
        #[arg(long)]
        until: Option<String>,
        /// Only this action (sign_in, workspace_start, ...).
        #[arg(long)]
        action: Option<String>,
        /// Only entries by or about this account.
        #[arg(long)]
        user: Option<String>,
        /// Only this outcome: ok, refused or failed.
        #[arg(long)]
        outcome: Option<String>,
    },
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
    /// What kind of process this command makes, which decides where its logs go.
    pub fn kind(&self) -> Kind {
        match &self.command {
            None | Some(Command::Serve | Command::FcSim { .. } | Command::FakeGithub { .. }) => {
                Kind::Server
            }
            Some(Command::Login { .. } | Command::Logout | Command::Ws { .. }) => Kind::Client,
            Some(
                Command::Migrate
                | Command::Config { .. }
                | Command::Admin { .. }
                | Command::Audit { .. }
                | Command::Editors { .. },
            ) => Kind::Tool,
        }
    }

    pub async fn run(self) -> anyhow::Result<()> {
        if let Some(Command::FcSim {
            listen,
            latency_ms,
            pending_ms,
            pending_update_ms,
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
                pending_update: std::time::Duration::from_millis(pending_update_ms),
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
        // The client commands talk to a server; this machine's server settings are not theirs.
        match self.command {
            Some(Command::Login { url, token_stdin }) => {
                return crate::client::login(&url, token_stdin).await
            }
            Some(Command::Logout) => return crate::client::logout().await,
            Some(Command::Ws { action }) => return crate::client::ws(action).await,
            _ => {}
        }
        if let Some(Command::Config { markdown: true }) = self.command {
            crate::stdout::write(format_args!(
                "{}",
                qingting_core::config::catalog::markdown_table()
            ));
            return Ok(());
        }
        let config = settings::load(&self.sources)?;
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
            Command::Config { .. } => {
                crate::stdout::write(format_args!(
                    "{}",
                    qingting_core::config::layers::describe(&config)
                ));
                Ok(())
            }
            Command::Editors { action } => editors(&config, action).await,
            Command::Admin { action } => admin(&config, action).await,
            Command::Audit { action } => audit_log(&config, action).await,
            Command::FakeGithub { .. }
            | Command::FcSim { .. }
            | Command::Login { .. }
            | Command::Logout
            | Command::Ws { .. } => unreachable!("handled above"),
        }
    }
}

/// The instance's database, migrated (a command may be the first thing run on a data dir).
async fn database(config: &Config) -> anyhow::Result<qingting_core::store::DatabaseConnection> {
    let db = qingting_core::store::connect(&config.effective_database_url()).await?;
    qingting_core::store::migrate(&db).await?;
    Ok(db)
}

async fn admin(config: &Config, action: AdminAction) -> anyhow::Result<()> {
    use qingting_core::{accounts, audit::Actor};
    let db = database(config).await?;
    let (user, role) = match &action {
        AdminAction::Grant { user } => (user, accounts::Role::Admin),
        AdminAction::Revoke { user } => (user, accounts::Role::Member),
    };
    let account = accounts::set_role(&db, &Actor::system(), user, role).await?;
    outln!(
        "{} is now {} {}",
        account.username,
        if role == accounts::Role::Admin {
            "an"
        } else {
            "a"
        },
        role.as_str()
    );
    Ok(())
}

async fn audit_log(config: &Config, action: AuditAction) -> anyhow::Result<()> {
    use anyhow::Context;
    use qingting_core::{accounts, audit};
    let AuditAction::Export {
        since,
        until,
        action,
        user,
        outcome,
    } = action;
    let time = |flag: &str, v: Option<String>| -> anyhow::Result<Option<i64>> {
        v.map(|v| {
            audit::parse_time(&v).with_context(|| {
                format!("--{flag} {v:?}: give Unix seconds, a date (2026-11-30) or RFC 3339")
            })
        })
        .transpose()
    };
    let (since, until) = (time("since", since)?, time("until", until)?);
    let action = action
        .map(|a| {
            audit::Action::parse(&a).with_context(|| {
                let all: Vec<&str> = audit::Action::ALL.iter().map(|a| a.as_str()).collect();
                format!("--action {a:?}: one of {}", all.join(", "))
            })
        })
        .transpose()?;
    let outcome = outcome
        .map(|o| {
            audit::Outcome::parse(&o)
                .with_context(|| format!("--outcome {o:?}: ok, refused or failed"))
        })
        .transpose()?;
    let db = database(config).await?;
    let user_id = match user {
        Some(name) => Some(
            accounts::find_by_username(&db, &name)
                .await?
                .with_context(|| format!("there is no account named {name}"))?
                .id,
        ),
        None => None,
    };
    let filter = audit::Filter {
        action,
        user_id,
        outcome,
        since,
        until,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    audit::for_each(&db, &filter, |entry| {
        use std::io::Write;
        let line = serde_json::to_string(&audit::Exported::from(entry))?;
        writeln!(out, "{line}")
    })
    .await?;
    use std::io::Write;
    out.flush()?;
    Ok(())
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
            outln!("templates:");
            for t in templates::load(config.templates_file.as_deref())? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("qingting").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn every_setting_is_a_flag_anywhere_on_the_line() {
        let cli = parse(&[
            "--insecure-no-sandbox",
            "config",
            "--max-running",
            "4",
            "--trusted-proxies",
            "10.0.0.1,10.0.0.2",
            "--workspaces-fc-region",
            "cn-beijing",
        ]);
        assert!(matches!(
            cli.command,
            Some(Command::Config { markdown: false })
        ));
        let c = settings::load(&cli.sources).unwrap();
        assert!(c.workspaces.local.insecure_no_sandbox);
        assert_eq!(c.workspaces.max_running, 4);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.workspaces.fc.region, "cn-beijing");
        if std::env::var_os("QINGTING_LISTEN").is_none() {
            assert_eq!(c.listen, "127.0.0.1:3000", "unset flags keep the defaults");
        }
    }

    #[test]
    fn a_false_flag_and_a_bad_value_are_understood() {
        let cli = parse(&["--insecure-no-sandbox=false", "--session-days", "0"]);
        let given: Vec<&str> = cli.sources.overrides.iter().map(|o| o.key).collect();
        assert!(
            given.contains(&"workspaces.local.insecure_no_sandbox")
                && given.contains(&"session_days"),
            "{given:?}"
        );
        let e = settings::load(&cli.sources).unwrap_err().to_string();
        assert!(e.contains("session_days"), "{e}");
    }
}
