//! After a restart: adopt IDEs that outlived the server, finish what it left half done.

use super::*;

impl WorkspaceService {
    /// Brings records and the runtime back in line after a restart: adopts (or restarts)
    /// what should run, finishes interrupted operations, removes orphans. Visits only
    /// workspaces that are not settled as stopped or failed.
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
            let st = state_of(&row);
            let action = match st {
                WorkspaceState::Running | WorkspaceState::Creating | WorkspaceState::Starting => {
                    Action::Start
                }
                WorkspaceState::Stopping => Action::Stop,
                WorkspaceState::Deleting => Action::Delete,
                _ => continue,
            };
            // Let `prepare` accept the interrupted state as its starting point.
            let from = match action {
                Action::Start => WorkspaceState::Failed,
                Action::Stop => WorkspaceState::Running,
                _ => st,
            };
            let row = self
                .set_state(row.id, from, Some("interrupted by a server restart".into()))
                .await?;
            tracing::info!(
                workspace = row.id,
                from = st.as_str(),
                "finishing an interrupted operation"
            );
            if let Ok(Prepared::Job(job)) = self.prepare(row, action, None).await {
                self.spawn_finish(*job);
            }
        }
        Ok(())
    }
}
