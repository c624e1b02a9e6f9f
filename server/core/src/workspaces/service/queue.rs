//! The line for the host's room: a user's create or start that finds the host at
//! `workspaces.max_running` waits as `queued` instead of being refused, and the leading
//! replica starts the waiting ones, oldest first, as room frees up (checked every second).
//! Cancel (Stop) takes one out of the line.

use super::{lifecycle::Job, limits::Slot, *};
use crate::{
    audit::{self, Actor},
    replicas::lease::Leadership,
};

/// How often the leader looks for room for the line.
const EVERY: Duration = Duration::from_secs(1);

impl WorkspaceService {
    /// The queued workspaces, first in line first.
    async fn line(&self) -> Result<Vec<workspace::Model>, WorkspaceError> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::State.eq(WorkspaceState::Queued.as_str()))
            .order_by_asc(workspace::Column::UpdatedAt)
            .order_by_asc(workspace::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Each queued workspace's place in line (1: next to start).
    pub async fn queue_positions(&self) -> Result<HashMap<i64, u64>, WorkspaceError> {
        Ok(self
            .line()
            .await?
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id, i as u64 + 1))
            .collect())
    }

    /// Starts queued workspaces in order while the host has room; answers how many.
    pub async fn start_queued(self: &Arc<Self>) -> Result<usize, WorkspaceError> {
        let mut started = 0;
        for row in self.line().await? {
            match self.start_from_line(row).await? {
                Some(job) => {
                    self.spawn_finish(job);
                    started += 1;
                }
                // The host is full again (or it left the line): the rest keep their places.
                None => break,
            }
        }
        Ok(started)
    }

    /// Turns the first in line `starting` if the host has room; `None` when it has none.
    async fn start_from_line(&self, row: workspace::Model) -> Result<Option<Job>, WorkspaceError> {
        let Ok(claim) = self.claim(row.id).await else {
            // Someone is cancelling or deleting it right now.
            return Ok(None);
        };
        let spec = match self.spec(&row).await {
            Ok(s) => s,
            Err(e) => {
                claim.release().await;
                return Err(e);
            }
        };
        let _user = self.lock_user(row.user_id).await;
        let txn = self.limits_txn(row.user_id).await?;
        let still = workspace::Entity::find_by_id(row.id).one(&txn).await?;
        if still.as_ref().map(state_of) != Some(WorkspaceState::Queued) {
            drop(txn);
            claim.release().await;
            return Ok(None);
        }
        let host = match self.host_slot(&txn).await? {
            Slot::Free(h) => h,
            Slot::Full(_) => {
                drop(txn);
                claim.release().await;
                return Ok(None);
            }
        };
        let row = write_state(&txn, row.id, WorkspaceState::Starting, None).await?;
        txn.commit().await?;
        drop(host);
        self.owner_changed(row.user_id);
        tracing::info!(
            workspace = row.id,
            "room on the host: starting from the queue"
        );
        // Never provisioned: it joined the line as a create.
        let audited_as = match row.runtime_state {
            None => audit::Action::WorkspaceCreate,
            Some(_) => audit::Action::WorkspaceStart,
        };
        Ok(Some(Job {
            claim,
            action: Action::Start,
            row,
            spec,
            reason: None,
            // Its request was logged when it joined the line; a failure now is the system's.
            by: Some(Actor::system()),
            since: Instant::now(),
            audited_as,
        }))
    }

    /// On the leading replica, starts the line's workspaces as room frees up, until the
    /// service is dropped.
    pub(super) fn run_queue(self: &Arc<Self>, mut leads: Leadership) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = leads.changed() => if changed.is_err() { return },
                }
                let Some(this) = weak.upgrade() else { return };
                if !*leads.borrow_and_update() {
                    continue;
                }
                match this.start_queued().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "started from the queue"),
                    Err(e) => tracing::warn!("starting the queue failed: {e}"),
                }
            }
        });
    }
}
