//! What keeps a workspace from idle stop besides requests and open WebSockets: CPU use
//! inside it (a long build or training run with the tab closed is work, not idleness), and
//! the owner's "Keep running". Also when an idle workspace will stop, for its card.

use super::*;

/// CPU use, as a share of one core averaged since the reaper last looked, that counts as
/// activity: well above what an idle code-server or JupyterLab uses (under 1 %), well below
/// any build.
pub const BUSY_CPU_SHARE: f64 = 0.05;

/// A workspace idle for less than this (or half its idle time, if shorter) shows no
/// countdown.
const NOTICE_AFTER: Duration = Duration::from_secs(60);

impl WorkspaceService {
    /// Counts recent CPU use of `running` workspaces as activity.
    pub(super) fn note_cpu_use(&self, running: impl Iterator<Item = i64>) {
        let now = Instant::now();
        let mut seen = self.cpu_seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut kept = HashMap::new();
        for id in running {
            let Some(cpu) = self.runtime.cpu_seconds(id) else {
                continue;
            };
            if let Some((before, at)) = seen.get(&id) {
                let elapsed = now.duration_since(*at).as_secs_f64();
                if elapsed > 0.0 && (cpu - before) / elapsed >= BUSY_CPU_SHARE {
                    self.activity.touch(id);
                }
            }
            kept.insert(id, (cpu, now));
        }
        // Workspaces no longer running are forgotten.
        *seen = kept;
    }

    /// How long until idle stop takes `v`, once it has been idle for a minute (`None`: in
    /// use, not running, or no idle stop here).
    pub fn idle_stop_in(&self, v: &WorkspaceView) -> Option<Duration> {
        let idle = *self.idle_stop.get()?;
        if v.state != WorkspaceState::Running {
            return None;
        }
        let now = Instant::now();
        let running_for = Duration::from_secs((now_unix() - v.updated_at).max(0) as u64);
        let since = now.checked_sub(running_for).unwrap_or(now);
        let idle_for = now.duration_since(self.activity.idle_since(v.id, since)?);
        (idle_for >= NOTICE_AFTER.min(idle / 2)).then(|| idle.saturating_sub(idle_for))
    }

    /// The owner's "Keep running": counts as activity now.
    pub async fn keep_running(
        &self,
        owner: &Account,
        id: i64,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let row = self.load(owner, id).await?;
        self.activity.touch(row.id);
        Ok((&row).into())
    }
}
