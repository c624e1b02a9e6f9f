//! The shell's settings, all from the environment the runtime gives the function (see
//! images/README.md): which workspace it guards, the dashboard's public key, where the IDE's
//! data lives, and the IDE's command line (after `--`).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ShellConfig {
    pub listen: String,
    pub workspace_id: i64,
    pub owner_id: i64,
    /// The dashboard's origin, where a browser without a workspace cookie is sent.
    pub dashboard_url: String,
    pub owner: String,
    pub workspace: String,
    pub public_key: [u8; 32],
    pub files_dir: PathBuf,
    pub ide_dir: PathBuf,
    pub socket: PathBuf,
    pub health_path: String,
    /// `https` behind FC's custom domain; decides the `Secure` cookie flag and `Origin` checks.
    pub proto: &'static str,
    pub cookie_hours: i64,
    /// The workspace owner's own uid (and gid), which owns their files on the NAS: the IDE
    /// runs as it when the shell starts as root (tenants never share an identity).
    pub ide_uid: Option<u32>,
    pub command: Vec<String>,
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

impl ShellConfig {
    pub fn from_env(command: Vec<String>) -> anyhow::Result<Self> {
        if command.is_empty() {
            bail!("usage: qingting-shell -- <IDE command with {{socket}}, {{files}}, {{ide}}>");
        }
        let key = hex::decode(var("QINGTING_TOKEN_PUBLIC_KEY")?.trim())
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .context("QINGTING_TOKEN_PUBLIC_KEY must be 32 bytes of hex (the dashboard's Ed25519 public key)")?;
        let owner = var("QINGTING_OWNER")?;
        let workspace = var("QINGTING_WORKSPACE")?;
        if !(qingting_gateway::names::is_username(&owner)
            && qingting_gateway::names::is_workspace_name(&workspace))
        {
            bail!("QINGTING_OWNER / QINGTING_WORKSPACE do not match the name grammars");
        }
        let proto = match var_or("QINGTING_PUBLIC_SCHEME", "https").as_str() {
            "http" => "http",
            "https" => "https",
            other => bail!("QINGTING_PUBLIC_SCHEME must be http or https, not {other:?}"),
        };
        let run = PathBuf::from(var_or("QINGTING_RUN_DIR", "/run/qingting"));
        Ok(Self {
            listen: var_or("QINGTING_LISTEN", "0.0.0.0:9000"),
            workspace_id: var("QINGTING_WORKSPACE_ID")?
                .parse()
                .context("QINGTING_WORKSPACE_ID")?,
            owner_id: var("QINGTING_OWNER_ID")?
                .parse()
                .context("QINGTING_OWNER_ID")?,
            dashboard_url: var("QINGTING_DASHBOARD_URL")?
                .trim_end_matches('/')
                .to_string(),
            owner,
            workspace,
            public_key: key,
            files_dir: PathBuf::from(var_or("QINGTING_FILES_DIR", "/workspace")),
            ide_dir: PathBuf::from(var_or("QINGTING_IDE_DIR", "/ide")),
            socket: run.join("ide.sock"),
            health_path: var_or("QINGTING_HEALTH_PATH", "/healthz"),
            proto,
            cookie_hours: var_or("QINGTING_COOKIE_HOURS", "12")
                .parse()
                .context("QINGTING_COOKIE_HOURS")?,
            ide_uid: match std::env::var("QINGTING_IDE_UID") {
                Ok(v) => Some(v.parse().context("QINGTING_IDE_UID must be a uid")?),
                Err(_) => None,
            },
            command,
        })
    }

    /// The IDE's argv with the placeholders filled in (the image has no editors dir).
    pub fn argv(&self) -> Vec<String> {
        qingting_gateway::ide::fill(
            &self.command,
            Path::new(""),
            &self.files_dir,
            &self.ide_dir,
            &self.socket,
        )
    }
}
