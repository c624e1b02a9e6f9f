//! The IDEs a workspace can run, and installing them from the package registries into the data
//! dir: code-server (VS Code) from npm, JupyterLab into a Python venv.
//!
//! code-server's npm install needs three things to work without downloads from elsewhere:
//! Kerberos headers (its `kerberos` module compiles from source), permission to run install
//! scripts as root, and its ripgrep step pre-seeded from the system's `rg`.

use serde::{Deserialize, Serialize};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Editor {
    /// VS Code in the browser (code-server).
    Vscode,
    /// JupyterLab.
    Jupyter,
}

/// The newest code-server that runs on Node 20.
pub const CODE_SERVER_VERSION: &str = "4.100.3";
/// Where code-server's install step looks for its ripgrep download.
const RIPGREP_CACHE: &str =
    "vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz";
/// Marks a finished install, so an interrupted one is never taken for usable.
const STAMP: &str = ".installed";

#[derive(Debug, thiserror::Error)]
pub enum EditorError {
    #[error("{0} is needed to install {1} but is not available: {2}")]
    Missing(&'static str, &'static str, String),
    #[error("{step} failed (exit {code:?}); the last output was:\n{tail}")]
    StepFailed {
        step: String,
        code: Option<i32>,
        tail: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Editor {
    pub const ALL: [Editor; 2] = [Editor::Vscode, Editor::Jupyter];

    pub fn label(self) -> &'static str {
        match self {
            Editor::Vscode => "VS Code (code-server)",
            Editor::Jupyter => "JupyterLab",
        }
    }

    /// The editor's own directory under the editors dir.
    pub fn dir(self, editors: &Path) -> PathBuf {
        editors.join(match self {
            Editor::Vscode => "code-server",
            Editor::Jupyter => "jupyter",
        })
    }

    pub fn is_installed(self, editors: &Path) -> bool {
        self.dir(editors).join(STAMP).is_file()
    }

    /// Installs the editor (a no-op when already installed), reporting progress lines.
    pub async fn install(
        self,
        editors: &Path,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), EditorError> {
        if self.is_installed(editors) {
            progress(&format!("{} is already installed", self.label()));
            return Ok(());
        }
        let dir = self.dir(editors);
        // Leftovers of an interrupted install are not trusted.
        if dir.exists() {
            tokio::fs::remove_dir_all(&dir).await?;
        }
        tokio::fs::create_dir_all(&dir).await?;
        match self {
            Editor::Jupyter => install_jupyter(&dir, progress).await?,
            Editor::Vscode => install_code_server(editors, &dir, progress).await?,
        }
        tokio::fs::write(dir.join(STAMP), b"ok\n").await?;
        progress(&format!("{} installed in {}", self.label(), dir.display()));
        Ok(())
    }
}

async fn install_jupyter(dir: &Path, progress: &(dyn Fn(&str) + Sync)) -> Result<(), EditorError> {
    which("python3")
        .ok_or_else(|| EditorError::Missing("python3", "JupyterLab", "not on PATH".into()))?;
    progress("JupyterLab: creating a Python venv");
    run(
        "python3 -m venv",
        Command::new("python3").arg("-m").arg("venv").arg(dir),
        progress,
    )
    .await?;
    progress("JupyterLab: installing jupyterlab and ipykernel from PyPI (about 30 s)");
    let pip = dir.join("bin/pip");
    run(
        "pip install jupyterlab",
        Command::new(&pip).args([
            "install",
            "--disable-pip-version-check",
            "-q",
            "jupyterlab",
            "ipykernel",
        ]),
        progress,
    )
    .await
}

async fn install_code_server(
    editors: &Path,
    dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), EditorError> {
    which("npm").ok_or_else(|| {
        EditorError::Missing("npm (Node.js 20)", "code-server", "not on PATH".into())
    })?;
    let need_rg = which("rg").is_none();
    let need_krb = !Path::new("/usr/include/krb5.h").exists()
        && !Path::new("/usr/include/krb5/krb5.h").exists();
    if need_rg || need_krb {
        let pkgs: Vec<&str> = [(need_krb, "libkrb5-dev"), (need_rg, "ripgrep")]
            .into_iter()
            .filter_map(|(n, p)| n.then_some(p))
            .collect();
        if which("apt-get").is_none() || !is_root() {
            return Err(EditorError::Missing(
                "system packages",
                "code-server",
                format!(
                    "install {} (e.g. apt-get install {})",
                    pkgs.join(", "),
                    pkgs.join(" ")
                ),
            ));
        }
        progress(&format!(
            "code-server: installing system packages {}",
            pkgs.join(", ")
        ));
        run(
            "apt-get update",
            Command::new("apt-get").args(["update", "-qq"]),
            progress,
        )
        .await?;
        run(
            "apt-get install",
            Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(&pkgs)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            progress,
        )
        .await?;
    }
    // Pre-seed the ripgrep download with the system's rg.
    let tmp = editors.join(".tmp");
    let cache = tmp.join(RIPGREP_CACHE);
    let pack = tmp.join("rg-pack");
    tokio::fs::create_dir_all(cache.parent().expect("has parent")).await?;
    tokio::fs::create_dir_all(&pack).await?;
    let rg = which("rg")
        .ok_or_else(|| EditorError::Missing("rg", "code-server", "ripgrep not on PATH".into()))?;
    tokio::fs::copy(&rg, pack.join("rg")).await?;
    run(
        "pack ripgrep",
        Command::new("tar")
            .arg("-C")
            .arg(&pack)
            .arg("-czf")
            .arg(&cache)
            .arg("rg"),
        progress,
    )
    .await?;
    progress(&format!("code-server: npm install code-server@{CODE_SERVER_VERSION} (several minutes: native modules compile)"));
    run(
        "npm install code-server",
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(dir)
            .arg(format!("code-server@{CODE_SERVER_VERSION}"))
            .args(["--foreground-scripts", "--no-audit", "--no-fund"])
            .env("TMPDIR", &tmp)
            .env("npm_config_unsafe_perm", "true")
            .env("npm_config_yes", "true"),
        progress,
    )
    .await?;
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    Ok(())
}

/// Runs one step, passing its output lines to `progress` (prefixed) and keeping the tail for
/// the error.
async fn run(
    step: &str,
    cmd: &mut Command,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), EditorError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Both streams feed one channel, so lines arrive in about the order they were written.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let tx2 = tx.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = tx.send(l);
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(err).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = tx2.send(l);
        }
    });
    let mut tail: Vec<String> = Vec::new();
    while let Some(line) = rx.recv().await {
        progress(&format!("  {line}"));
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let status = child.wait().await?;
    if status.success() {
        Ok(())
    } else {
        Err(EditorError::StepFailed {
            step: step.into(),
            code: status.code(),
            tail: tail.join("\n"),
        })
    }
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(cmd))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    // Avoid a libc dependency: the effective uid is in /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_installed_until_stamped() {
        let d = tempfile::tempdir().unwrap();
        assert!(!Editor::Jupyter.is_installed(d.path()));
        std::fs::create_dir_all(Editor::Jupyter.dir(d.path())).unwrap();
        assert!(
            !Editor::Jupyter.is_installed(d.path()),
            "a half-done install does not count"
        );
        std::fs::write(Editor::Jupyter.dir(d.path()).join(STAMP), "ok").unwrap();
        assert!(Editor::Jupyter.is_installed(d.path()));
    }

    /// Really installs JupyterLab from PyPI (about 30 s); run with QINGTING_TEST_EDITORS=1.
    #[tokio::test]
    async fn installs_jupyterlab_from_pypi() {
        if std::env::var("QINGTING_TEST_EDITORS").as_deref() != Ok("1") {
            eprintln!(
                "SKIPPED: set QINGTING_TEST_EDITORS=1 to install editors from the registries"
            );
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let lines = std::sync::Mutex::new(Vec::new());
        Editor::Jupyter
            .install(d.path(), &|l| lines.lock().unwrap().push(l.to_string()))
            .await
            .unwrap();
        assert!(Editor::Jupyter.is_installed(d.path()));
        assert!(Editor::Jupyter
            .dir(d.path())
            .join("bin/jupyter-lab")
            .is_file());
        assert!(lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("creating a Python venv")));
    }
}
