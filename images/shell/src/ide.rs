//! The IDE inside the container: started on a local Unix socket (so only this shell can reach
//! it), restarted with backoff when it exits, stopped as a whole process group.

use crate::config::ShellConfig;
use qingting_gateway::proxy::{healthy, Upstream};
use std::{
    os::unix::process::CommandExt,
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::sync::Mutex;

const START_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_RESTARTS: u32 = 5;

#[derive(Debug, Default)]
struct State {
    pgid: Option<i32>,
    stopping: bool,
    restarts: u32,
}

#[derive(Debug, Clone)]
pub struct Ide {
    cfg: Arc<ShellConfig>,
    state: Arc<Mutex<State>>,
    /// Answered its health check since it last started; read on every request, so requests
    /// cost the IDE no extra health probe.
    ready: Arc<AtomicBool>,
}

impl Ide {
    pub fn new(cfg: Arc<ShellConfig>) -> Self {
        Self {
            cfg,
            state: Arc::default(),
            ready: Arc::default(),
        }
    }

    pub fn upstream(&self) -> Upstream {
        Upstream::Unix(self.cfg.socket.clone())
    }

    /// Whether the IDE is up and has answered its health check (see `ensure_started`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub async fn healthy(&self) -> bool {
        healthy(&self.upstream(), &self.cfg.health_path).await
    }

    /// Starts the IDE unless it runs, and waits until it answers its health check.
    pub async fn ensure_started(&self) -> Result<(), String> {
        {
            let mut st = self.state.lock().await;
            st.stopping = false;
            if st.pgid.is_none() {
                st.pgid = Some(self.spawn()?);
            }
        }
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if self.healthy().await {
                self.ready.store(true, Ordering::Release);
                return Ok(());
            }
            if self.state.lock().await.pgid.is_none() {
                return Err("the IDE exited during start-up".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "the IDE did not answer {} within {} s",
            self.cfg.health_path,
            START_TIMEOUT.as_secs()
        ))
    }

    fn spawn(&self) -> Result<i32, String> {
        let cfg = &self.cfg;
        for d in [&cfg.files_dir, &cfg.ide_dir.join("home")] {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        if let Some(run) = cfg.socket.parent() {
            std::fs::create_dir_all(run)
                .map_err(|e| format!("cannot create {}: {e}", run.display()))?;
        }
        let _ = std::fs::remove_file(&cfg.socket);
        let run_as = tenant_identity(cfg)?;
        let argv = cfg.argv();
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&cfg.files_dir)
            .env_clear()
            .envs(qingting_gateway::ide::env(
                &cfg.ide_dir,
                &std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            ))
            .stdin(Stdio::null())
            .process_group(0);
        if let Some(uid) = run_as {
            // std drops supplementary groups too when root sets a uid.
            cmd.uid(uid).gid(uid);
        }
        // The IDE never outlives the shell, however the shell ends (even SIGKILL): nothing
        // would guard it any more. (The signal follows the spawning thread, a runtime worker
        // that lives as long as the shell.)
        // SAFETY: prctl is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = tokio::process::Command::from(cmd)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
        let pgid = child.id().ok_or("the IDE exited at once")? as i32;
        tracing::info!(pid = pgid, "IDE started");
        let this = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let mut st = this.state.lock().await;
            if st.pgid == Some(pgid) {
                st.pgid = None;
                this.ready.store(false, Ordering::Release);
            }
            if st.stopping {
                return;
            }
            st.restarts += 1;
            let n = st.restarts;
            drop(st);
            tracing::warn!(?status, restarts = n, "the IDE exited");
            if n > MAX_RESTARTS {
                tracing::error!("the IDE keeps failing; not restarting it again until /initialize");
                return;
            }
            tokio::time::sleep(Duration::from_secs(1 << n.min(5))).await;
            if let Err(e) = this.ensure_started().await {
                tracing::error!("restart failed: {e}");
            }
        });
        Ok(pgid)
    }

    /// Stops the IDE's whole process group (SIGTERM, then SIGKILL after 3 s).
    pub async fn stop(&self) {
        let pgid = {
            let mut st = self.state.lock().await;
            st.stopping = true;
            st.restarts = 0;
            self.ready.store(false, Ordering::Release);
            st.pgid.take()
        };
        let Some(pgid) = pgid else { return };
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        for _ in 0..30 {
            if unsafe { libc::kill(pgid, 0) } != 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// The uid the IDE runs as: the owner's own (`QINGTING_IDE_UID`) when the shell is root,
/// after handing it the workspace's directories (private to it); else the shell's own.
fn tenant_identity(cfg: &ShellConfig) -> Result<Option<u32>, String> {
    let Some(uid) = cfg.ide_uid else {
        return Ok(None);
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let run = cfg.socket.parent().map(|p| p.to_path_buf());
    let home = cfg.ide_dir.join("home");
    for dir in [
        Some(cfg.files_dir.clone()),
        Some(cfg.ide_dir.clone()),
        Some(home),
        run,
    ]
    .into_iter()
    .flatten()
    {
        use std::os::unix::fs::PermissionsExt;
        std::os::unix::fs::chown(&dir, Some(uid), Some(uid))
            .map_err(|e| format!("cannot hand {} to uid {uid}: {e}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
    }
    Ok(Some(uid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn the_ide_gets_the_owners_own_identity_and_private_directories() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: handing directories to another uid needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = ShellConfig {
            listen: String::new(),
            workspace_id: 1,
            owner_id: 1,
            dashboard_url: String::new(),
            owner: "alice".into(),
            workspace: "nb".into(),
            public_key: [0; 32],
            files_dir: dir.path().join("workspace"),
            ide_dir: dir.path().join("ide"),
            socket: dir.path().join("run/ide.sock"),
            health_path: "/".into(),
            proto: "http",
            cookie_hours: 1,
            ide_uid: Some(100_042),
            command: vec!["true".into()],
        };
        for d in [
            &cfg.files_dir,
            &cfg.ide_dir.join("home"),
            &dir.path().join("run"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        assert_eq!(tenant_identity(&cfg), Ok(Some(100_042)));
        for d in [&cfg.files_dir, &cfg.ide_dir, &cfg.ide_dir.join("home")] {
            let m = std::fs::metadata(d).unwrap();
            assert_eq!((m.uid(), m.gid()), (100_042, 100_042), "{}", d.display());
            assert_eq!(m.permissions().mode() & 0o777, 0o700, "{}", d.display());
        }
        let without = ShellConfig {
            ide_uid: None,
            ..cfg
        };
        assert_eq!(tenant_identity(&without), Ok(None));
    }
}
