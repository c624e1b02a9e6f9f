//! The IDE inside the container: started on a local Unix socket (so only this shell can reach
//! it), restarted with backoff when it exits, stopped as a whole process group.

use crate::config::ShellConfig;
use qingting_gateway::proxy::{healthy, Upstream};
use std::{os::unix::process::CommandExt, process::Stdio, sync::Arc, time::Duration};
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
}

impl Ide {
    pub fn new(cfg: Arc<ShellConfig>) -> Self {
        Self {
            cfg,
            state: Arc::default(),
        }
    }

    pub fn upstream(&self) -> Upstream {
        Upstream::Unix(self.cfg.socket.clone())
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
