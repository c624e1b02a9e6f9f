//! The background work: the loop that follows this replica's runtime events, the one that
//! hears other replicas' changes, and, on the leading replica only, recovery, finishing
//! abandoned operations and the idle reaper.

use super::*;
use crate::replicas::lease::{self, Leadership};

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
        let system = crate::audit::Actor::system();
        self.note_cpu_use(rows.iter().map(|r| r.id));
        // Pooled IDEs wait for a user by design; the pool's size bounds them.
        for row in rows.into_iter().filter(|r| r.user_id != POOL_OWNER) {
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
            let prepared = self.prepare(Some(&system), row, Action::Stop, Some(reason));
            if let Ok(Prepared::Job(job)) = prepared.await {
                self.finish(*job).await?;
                stopped += 1;
            }
        }
        Ok(stopped)
    }

    /// Background work, until the service is dropped: runtime events (crashes, give-ups)
    /// into the records, other replicas' changes into the live lists and the gateway; and
    /// while this replica leads (`leads`), recovery when it takes the lead, finishing what
    /// dead replicas left half done, and the idle reaper. A replica that leads from the start
    /// has recovered when this returns.
    pub async fn run_background(self: &Arc<Self>, leads: Leadership, idle: Option<Duration>) {
        self.follow_runtime_events();
        self.hear_other_replicas();
        if !self.runtime.traffic_through_gateway() {
            tracing::info!("idle stop is off: this runtime's traffic does not pass this server");
        }
        let idle = idle.filter(|_| self.runtime.traffic_through_gateway());
        if let Some(idle) = idle {
            let _ = self.idle_stop.set(idle);
        }
        let _ = self.leads.set(leads.clone());
        let mut recovered = false;
        if *leads.borrow() {
            self.recover_logged().await;
            recovered = true;
        }
        self.run_pool(leads.clone());
        self.run_queue(leads.clone());
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut leads = leads;
            let every_idle =
                idle.map(|i| (i / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)));
            let mut next_idle = every_idle.map(|e| tokio::time::Instant::now() + e);
            let mut tick =
                tokio::time::interval(every_idle.map_or(lease::RENEW, |e| e.min(lease::RENEW)));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = leads.changed() => if changed.is_err() { return },
                }
                let Some(this) = weak.upgrade() else { return };
                if !*leads.borrow_and_update() {
                    recovered = false;
                    continue;
                }
                if !recovered {
                    this.recover_logged().await;
                    recovered = true;
                }
                match this.finish_abandoned().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "finishing operations of a stopped replica"),
                    Err(e) => tracing::warn!("looking for abandoned operations failed: {e}"),
                }
                if let (Some(idle), Some(every), Some(next)) =
                    (idle, every_idle, next_idle.as_mut())
                {
                    if tokio::time::Instant::now() >= *next {
                        *next = tokio::time::Instant::now() + every;
                        match this.stop_idle(idle).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(count = n, "stopped idle workspaces"),
                            Err(e) => tracing::warn!("idle check failed: {e}"),
                        }
                    }
                }
            }
        });
    }

    async fn recover_logged(self: &Arc<Self>) {
        if let Err(e) = self.recover().await {
            tracing::error!("workspace recovery failed: {e}");
        }
    }

    fn follow_runtime_events(self: &Arc<Self>) {
        let Some(mut events) = self.runtime.events() else {
            return;
        };
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
                    // Under a claim of its own: an operation under way writes its own outcome.
                    RuntimeEventKind::Failed { reason } => {
                        let Ok(claim) = this.claim(ev.workspace_id).await else {
                            continue;
                        };
                        if let Err(e) = this
                            .set_state(ev.workspace_id, WorkspaceState::Failed, Some(reason))
                            .await
                        {
                            tracing::warn!(
                                workspace = ev.workspace_id,
                                "cannot record the failure: {e}"
                            );
                        }
                        claim.release().await;
                    }
                    RuntimeEventKind::Restarted { attempt } => {
                        tracing::info!(
                            workspace = ev.workspace_id,
                            attempt,
                            "IDE restarted by its supervisor"
                        );
                    }
                }
            }
        });
    }

    fn hear_other_replicas(self: &Arc<Self>) {
        let Some(feed) = self.feed.clone() else {
            return;
        };
        tracing::info!(replica = %self.replica, feed = feed.describe(), "listening for other replicas' changes");
        let weak = Arc::downgrade(self);
        feed.listen(move |change| match weak.upgrade() {
            Some(this) => {
                this.heard(change);
                true
            }
            None => false,
        });
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
