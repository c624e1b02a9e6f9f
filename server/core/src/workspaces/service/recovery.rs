//! Bringing records and the runtime back in line: after a restart (adopt IDEs that outlived
//! the server, finish what it left half done), and, on the leading replica, whenever an
//! operation's replica died before finishing it (its claim lapsed).

use super::lifecycle::{audit_action, Job};
use super::*;

impl WorkspaceService {
    /// Adopts (or restarts) what should run, finishes interrupted operations, removes
    /// orphans. Visits only workspaces that are not settled as stopped or failed, and leaves
    /// alone those another live replica is working on. Run by the leading replica when it
    /// takes the lead.
    pub async fn recover(self: &Arc<Self>) -> Result<(), WorkspaceError> {
        let unsettled = workspace::Entity::find()
            .filter(workspace::Column::State.is_in(states(|s| {
                s != WorkspaceState::Stopped && s != WorkspaceState::Failed
            })))
            .all(&self.db)
            .await?;
        let mut later = Vec::new();
        for row in unsettled {
            if state_of(&row) == WorkspaceState::Running {
                let Ok(spec) = self.spec(&row).await else {
                    continue;
                };
                match self.runtime.adopt(&spec, &runtime_state(&row)).await {
                    Ok(true) => {
                        self.activity.touch(row.id);
                        continue;
                    }
                    Ok(false) => tracing::info!(
                        workspace = row.id,
                        "IDE gone after the restart; starting it again"
                    ),
                    Err(e) => tracing::warn!(workspace = row.id, "cannot adopt: {e}"),
                }
            }
            later.push(row);
        }
        let existing: HashSet<i64> = workspace::Entity::find()
            .select_only()
            .column(workspace::Column::Id)
            .into_tuple::<i64>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        if let Err(e) = self.runtime.clean_orphans(&existing).await {
            tracing::warn!("cleaning orphans failed: {e}");
        }
        for row in later {
            self.resume(row, "interrupted by a server restart").await?;
        }
        Ok(())
    }

    /// Finishes operations left half done by a replica that stopped renewing its claim.
    /// Returns how many it took over.
    pub async fn finish_abandoned(self: &Arc<Self>) -> Result<usize, WorkspaceError> {
        let now = now_unix();
        let rows = workspace::Entity::find()
            .filter(workspace::Column::State.is_in(states(WorkspaceState::is_transitional)))
            .filter(
                sea_orm::Condition::any()
                    .add(workspace::Column::ClaimedBy.is_null())
                    .add(workspace::Column::ClaimExpires.lt(now)),
            )
            .all(&self.db)
            .await?;
        let mut taken = 0;
        for row in rows {
            if self
                .resume(row, "its server stopped; finished by another")
                .await?
            {
                taken += 1;
            }
        }
        Ok(taken)
    }

    /// Claims a workspace left in `row`'s state and carries its operation on in the
    /// background: a running one is started again, a transitional one finished. False when
    /// someone else has it or there is nothing to do.
    async fn resume(
        self: &Arc<Self>,
        row: workspace::Model,
        why: &str,
    ) -> Result<bool, WorkspaceError> {
        let st = state_of(&row);
        let action = match st {
            WorkspaceState::Running | WorkspaceState::Creating | WorkspaceState::Starting => {
                Action::Start
            }
            WorkspaceState::Stopping => Action::Stop,
            WorkspaceState::Deleting => Action::Delete,
            _ => return Ok(false),
        };
        let claim = match self.claim(row.id).await {
            Ok(c) => c,
            Err(WorkspaceError::Busy(_) | WorkspaceError::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        // Read again under the claim: while this replica looked at others, the operation may
        // have finished and the user moved on.
        match workspace::Entity::find_by_id(row.id).one(&self.db).await? {
            Some(now) if now.state == row.state => {}
            _ => return Ok(false),
        }
        // Carried on in the state it names, never through one the owner would take for its
        // outcome (a `failed` that a moment later is `starting`). It held its room on the
        // host and counted against its owner's limits all along: nothing to check again.
        let next = match action {
            Action::Start => WorkspaceState::Starting,
            _ => st,
        };
        let id = row.id;
        let spec = match self.spec(&row).await {
            Ok(spec) => spec,
            Err(e) => {
                // Failed, with the reason, rather than transitional and picked up again and
                // again.
                tracing::warn!(workspace = id, "cannot resume: {e}");
                let reason = format!("could not be finished: {e}");
                self.set_state(id, WorkspaceState::Failed, Some(reason))
                    .await?;
                claim.release().await;
                return Ok(false);
            }
        };
        let row = self.set_state(id, next, None).await?;
        tracing::info!(
            workspace = id,
            from = st.as_str(),
            why,
            "finishing an interrupted operation"
        );
        self.spawn_finish(Job {
            claim,
            action,
            row,
            spec,
            reason: None,
            by: None,
            since: Instant::now(),
            audited_as: audit_action(action),
        });
        Ok(true)
    }
}
