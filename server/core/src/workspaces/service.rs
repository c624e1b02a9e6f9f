//! The workspace service: create, start, stop, restart, delete, list. Every entry point
//! (server functions, CLI, idle reaper, reconciler) goes through here.

use super::{
    runtime::{Runtime, WorkspaceSpec},
    validate_name, WorkspaceError, WorkspaceState,
};
use crate::{
    accounts::{Account, AccountDeletionHook},
    store::{entity::workspace, now_unix},
    templates::Template,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, SqlErr,
};
use serde_json::Value;
use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, Mutex},
};

#[derive(Debug, Clone, Copy)]
pub struct WorkspaceLimits {
    pub max_per_user: u64,
    pub max_running_per_user: u64,
}

/// A workspace as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceView {
    pub id: i64,
    pub name: String,
    pub template_id: String,
    pub state: WorkspaceState,
    pub reason: Option<String>,
}

impl From<&workspace::Model> for WorkspaceView {
    fn from(m: &workspace::Model) -> Self {
        Self {
            id: m.id,
            name: m.name.clone(),
            template_id: m.template_id.clone(),
            // An unknown state can only come from a newer version; show it as failed.
            state: WorkspaceState::parse(&m.state).unwrap_or(WorkspaceState::Failed),
            reason: m.reason.clone(),
        }
    }
}

#[derive(Debug)]
pub struct WorkspaceService {
    db: DatabaseConnection,
    runtime: Arc<dyn Runtime>,
    templates: Arc<Vec<Template>>,
    limits: WorkspaceLimits,
    /// For runtimes that run editors on this machine: the editors dir to check before create.
    local_editors: Option<PathBuf>,
    /// Workspaces with a runtime call under way in this process (two clicks on Start run once).
    in_flight: Mutex<HashSet<i64>>,
}

/// Releases a workspace's in-flight claim when dropped.
struct Claim<'a> {
    set: &'a Mutex<HashSet<i64>>,
    id: i64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl WorkspaceService {
    pub fn new(
        db: DatabaseConnection,
        runtime: Arc<dyn Runtime>,
        templates: Vec<Template>,
        limits: WorkspaceLimits,
        local_editors: Option<PathBuf>,
    ) -> Self {
        Self {
            db,
            runtime,
            templates: Arc::new(templates),
            limits,
            local_editors,
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    fn claim(&self, id: i64, busy: &'static str) -> Result<Claim<'_>, WorkspaceError> {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(id) {
            return Err(WorkspaceError::Busy(busy));
        }
        Ok(Claim {
            set: &self.in_flight,
            id,
        })
    }

    fn spec(
        &self,
        owner: &Account,
        row: &workspace::Model,
    ) -> Result<WorkspaceSpec, WorkspaceError> {
        let template = self
            .templates
            .iter()
            .find(|t| t.id == row.template_id)
            .cloned()
            .ok_or_else(|| WorkspaceError::UnknownTemplate(row.template_id.clone()))?;
        Ok(WorkspaceSpec {
            id: row.id,
            owner: owner.username.clone(),
            name: row.name.clone(),
            template,
        })
    }

    async fn load(&self, owner: &Account, id: i64) -> Result<workspace::Model, WorkspaceError> {
        workspace::Entity::find_by_id(id)
            .filter(workspace::Column::UserId.eq(owner.id))
            .one(&self.db)
            .await?
            .ok_or(WorkspaceError::NotFound)
    }

    async fn set_state(
        &self,
        id: i64,
        state: WorkspaceState,
        reason: Option<String>,
    ) -> Result<workspace::Model, WorkspaceError> {
        let row = workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let mut row: workspace::ActiveModel = row.into();
        row.state = Set(state.as_str().to_string());
        row.reason = Set(reason);
        row.updated_at = Set(now_unix());
        Ok(row.update(&self.db).await?)
    }

    async fn count(&self, user_id: i64, active_only: bool) -> Result<u64, WorkspaceError> {
        let mut q = workspace::Entity::find().filter(workspace::Column::UserId.eq(user_id));
        if active_only {
            let active: Vec<&str> = WorkspaceState::ALL
                .iter()
                .filter(|s| s.is_active())
                .map(|s| s.as_str())
                .collect();
            q = q.filter(workspace::Column::State.is_in(active));
        }
        Ok(q.count(&self.db).await?)
    }

    async fn check_running_limit(&self, user_id: i64) -> Result<(), WorkspaceError> {
        let max = self.limits.max_running_per_user;
        if self.count(user_id, true).await? >= max {
            return Err(WorkspaceError::LimitReached(format!(
                "You can run at most {max} workspaces at once. Stop one first."
            )));
        }
        Ok(())
    }

    pub async fn list(&self, owner: &Account) -> Result<Vec<WorkspaceView>, WorkspaceError> {
        let rows = workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .order_by_asc(workspace::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows.iter().map(Into::into).collect())
    }

    /// Creates a workspace and brings it up. Validation and limits come first, so a refusal
    /// leaves no row; a runtime failure leaves the row `failed` with the reason.
    pub async fn create(
        &self,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<WorkspaceView, WorkspaceError> {
        validate_name(name)?;
        let template = self
            .templates
            .iter()
            .find(|t| t.id == template_id)
            .ok_or_else(|| WorkspaceError::UnknownTemplate(template_id.to_string()))?;
        if let Some(dir) = &self.local_editors {
            if !template.editor.is_installed(dir) {
                return Err(WorkspaceError::EditorMissing(template.editor.label()));
            }
        }
        let max = self.limits.max_per_user;
        if self.count(owner.id, false).await? >= max {
            return Err(WorkspaceError::LimitReached(format!(
                "You can have at most {max} workspaces. Delete one first."
            )));
        }
        self.check_running_limit(owner.id).await?;
        let now = now_unix();
        let row = workspace::ActiveModel {
            user_id: Set(owner.id),
            name: Set(name.to_string()),
            template_id: Set(template_id.to_string()),
            state: Set(WorkspaceState::Creating.as_str().into()),
            reason: Set(None),
            runtime_state: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let row = match row.insert(&self.db).await {
            Ok(r) => r,
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(WorkspaceError::NameTaken)
            }
            Err(e) => return Err(e.into()),
        };
        let _claim = self.claim(row.id, "being created")?;
        self.bring_up(owner, row).await
    }

    /// Provisions when needed, then starts. Persists each step.
    async fn bring_up(
        &self,
        owner: &Account,
        row: workspace::Model,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let spec = self.spec(owner, &row)?;
        let state: Value = match row.runtime_state.as_deref().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => match self.runtime.provision(&spec).await {
                Ok(v) => {
                    let mut r: workspace::ActiveModel = row.clone().into();
                    r.runtime_state = Set(Some(v.to_string()));
                    r.update(&self.db).await?;
                    v
                }
                Err(e) => {
                    let row = self
                        .set_state(row.id, WorkspaceState::Failed, Some(e.0))
                        .await?;
                    return Ok((&row).into());
                }
            },
        };
        self.set_state(row.id, WorkspaceState::Starting, None)
            .await?;
        let row = match self.runtime.start(&spec, &state).await {
            Ok(()) => {
                self.set_state(row.id, WorkspaceState::Running, None)
                    .await?
            }
            Err(e) => {
                self.set_state(row.id, WorkspaceState::Failed, Some(e.0))
                    .await?
            }
        };
        Ok((&row).into())
    }

    pub async fn start(&self, owner: &Account, id: i64) -> Result<WorkspaceView, WorkspaceError> {
        let _claim = self.claim(id, "already changing state")?;
        let row = self.load(owner, id).await?;
        let st = WorkspaceState::parse(&row.state).unwrap_or(WorkspaceState::Failed);
        if st == WorkspaceState::Running {
            return Ok((&row).into());
        }
        if !st.can_start() {
            return Err(WorkspaceError::Busy(st.as_str()));
        }
        self.check_running_limit(owner.id).await?;
        self.bring_up(owner, row).await
    }

    pub async fn stop(
        &self,
        owner: &Account,
        id: i64,
        reason: Option<String>,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let _claim = self.claim(id, "already changing state")?;
        let row = self.load(owner, id).await?;
        let st = WorkspaceState::parse(&row.state).unwrap_or(WorkspaceState::Failed);
        if st == WorkspaceState::Stopped {
            return Ok((&row).into());
        }
        if !st.can_stop() {
            return Err(WorkspaceError::Busy(st.as_str()));
        }
        let spec = self.spec(owner, &row)?;
        let state = runtime_state(&row);
        self.set_state(id, WorkspaceState::Stopping, None).await?;
        let row = match self.runtime.stop(&spec, &state).await {
            Ok(()) => self.set_state(id, WorkspaceState::Stopped, reason).await?,
            Err(e) => {
                self.set_state(
                    id,
                    WorkspaceState::Failed,
                    Some(format!("stop failed: {}", e.0)),
                )
                .await?
            }
        };
        Ok((&row).into())
    }

    pub async fn restart(&self, owner: &Account, id: i64) -> Result<WorkspaceView, WorkspaceError> {
        let v = self.stop(owner, id, None).await?;
        if v.state != WorkspaceState::Stopped {
            return Ok(v);
        }
        self.start(owner, id).await
    }

    /// Deletes a workspace in any settled state (a running one is stopped by the runtime's
    /// destroy). Files and runtime resources go first; the row last.
    pub async fn delete(&self, owner: &Account, id: i64) -> Result<(), WorkspaceError> {
        let _claim = self.claim(id, "already changing state")?;
        let row = self.load(owner, id).await?;
        let spec = self.spec(owner, &row)?;
        let state = runtime_state(&row);
        self.set_state(id, WorkspaceState::Deleting, None).await?;
        if let Err(e) = self.runtime.destroy(&spec, &state).await {
            self.set_state(
                id,
                WorkspaceState::Failed,
                Some(format!("delete failed: {}", e.0)),
            )
            .await?;
            return Err(WorkspaceError::Runtime {
                action: "deleted",
                reason: e.0,
            });
        }
        workspace::Entity::delete_by_id(id).exec(&self.db).await?;
        Ok(())
    }

    /// Deletes every workspace of a user (account deletion).
    pub async fn delete_all(&self, owner: &Account) -> Result<(), WorkspaceError> {
        for ws in self.list(owner).await? {
            self.delete(owner, ws.id).await?;
        }
        Ok(())
    }
}

fn runtime_state(row: &workspace::Model) -> Value {
    row.runtime_state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

#[async_trait::async_trait]
impl AccountDeletionHook for WorkspaceService {
    async fn before_account_deletion(&self, user_id: i64) -> Result<(), String> {
        let owner = crate::accounts::find_by_id(&self.db, user_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no such user")?;
        self.delete_all(&owner).await.map_err(|e| e.to_string())
    }
}
