//! The background work: the idle reaper, and the loop that follows runtime events.

use super::*;

impl WorkspaceService {
    /// Stops running workspaces that saw no request, have no open WebSocket and used no
    /// more than a trickle of CPU for `idle`. Returns how many it stopped.
    pub async fn stop_idle(&self, idle: Duration) -> Result<usize, WorkspaceError> {
        let rows = workspace::Entity::find()
            .filter(workspace::Column::State.eq(WorkspaceState::Running.as_str()))
            .all(&self.db)
            .await?;
        let now = Instant::now();
        let now_unix = now_unix();
        let mut stopped = 0;
        self.note_cpu_use(rows.iter().map(|r| r.id));
        for row in rows {
            // Never idle for less than the time since it became running.
            let running_for = Duration::from_secs((now_unix - row.updated_at).max(0) as u64);
            let since = now.checked_sub(running_for).unwrap_or(now);
            let Some(last) = self.activity.idle_since(row.id, since) else {
                continue;
            };
            if now.duration_since(last) < idle || self.is_claimed(row.id) {
                continue;
            }
            let reason = format!("Stopped after {} without activity.", human(idle));
            if let Ok(Prepared::Job(job)) = self.prepare(row, Action::Stop, Some(reason)).await {
                self.finish(*job).await?;
                stopped += 1;
            }
        }
        Ok(stopped)
    }

    /// Background work: runtime events (crashes, give-ups) into the records, and the idle
    /// reaper. Runs until the service is dropped.
    pub fn spawn_background(self: &Arc<Self>, idle: Option<Duration>) {
        if let Some(mut events) = self.runtime.events() {
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                loop {
                    let ev = match events.recv().await {
                        Ok(ev) => ev,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    };
                    let Some(this) = weak.upgrade() else { return };
                    match ev.kind {
                        RuntimeEventKind::Failed { reason }
                            if !this.is_claimed(ev.workspace_id) =>
                        {
                            if let Err(e) = this
                                .set_state(ev.workspace_id, WorkspaceState::Failed, Some(reason))
                                .await
                            {
                                tracing::warn!(
                                    workspace = ev.workspace_id,
                                    "cannot record the failure: {e}"
                                );
                            }
                        }
                        RuntimeEventKind::Restarted { attempt } => {
                            tracing::info!(
                                workspace = ev.workspace_id,
                                attempt,
                                "IDE restarted by its supervisor"
                            );
                        }
                        _ => {}
                    }
                }
            });
        }
        if !self.runtime.traffic_through_gateway() {
            tracing::info!("idle stop is off: this runtime's traffic does not pass this server");
        }
        if let Some(idle) = idle.filter(|_| self.runtime.traffic_through_gateway()) {
            let _ = self.idle_stop.set(idle);
            let weak = Arc::downgrade(self);
            let every = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(this) = weak.upgrade() else { return };
                    match this.stop_idle(idle).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(count = n, "stopped idle workspaces"),
                        Err(e) => tracing::warn!("idle check failed: {e}"),
                    }
                }
            });
        }
    }
}

pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} seconds"),
        120..=7199 => format!("{} minutes", s / 60),
        _ => format!("{} hours", s / 3600),
    }
}
