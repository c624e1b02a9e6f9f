//! The workspace service: create, start, stop, restart, delete, list. Every entry point
//! (server functions, the gateway's Start button, the CLI, the idle reaper, the reconciler)
//! goes through here.
//!
//! Each operation has two halves: `prepare` checks and claims the workspace and persists the
//! transitional state (so the caller can answer at once, and a second click is refused with a
//! clear message), then `finish` makes the runtime calls and persists the outcome. The
//! dashboard runs `finish` in the background and watches the list change over
//! [`WorkspaceService::subscribe`]; tests and the CLI await it.
//!
//! The service's parts: `view` (what it hands out), `queries` (reads), `lifecycle` (claim,
//! prepare, finish, bring up, take down), `recovery` (after a restart), `background` (the
//! idle reaper and the event loop), `idle` (what counts as activity, and when a workspace
//! will stop) and `port_shares`. Each is another `impl WorkspaceService` block.

mod background;
mod hosts;
mod idle;
mod lifecycle;
mod port_shares;
mod queries;
mod recovery;
mod view;

use lifecycle::Prepared;
pub use port_shares::{sharing_of, PortShares, PortSharing};
use view::state_of;
pub use view::{Action, GatewayTarget, WorkspaceLimits, WorkspaceView};

use crate::workspaces::{
    activity::Activity,
    runtime::{Endpoint, Runtime, RuntimeEventKind, WorkspaceSpec},
    validate_name, WorkspaceError, WorkspaceState,
};
use crate::{
    accounts::{self, Account, AccountDeletionHook},
    store::{entity::workspace, now_unix},
    templates::Template,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use serde_json::Value;
use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::broadcast;

#[derive(Debug)]
pub struct WorkspaceService {
    db: DatabaseConnection,
    runtime: Arc<dyn Runtime>,
    templates: Arc<Vec<Template>>,
    limits: WorkspaceLimits,
    /// For runtimes that run editors on this machine: the editors dir to check before create.
    local_editors: Option<PathBuf>,
    /// Workspaces with an operation under way in this process (two clicks on Start run once).
    in_flight: Arc<Mutex<HashSet<i64>>>,
    /// The ids of users whose workspaces just changed (sent by `owner_changed` only).
    changes: broadcast::Sender<i64>,
    hosts: hosts::HostCache,
    activity: Activity,
    /// Held while a user's limits are checked and the result written, so two concurrent
    /// requests cannot both pass the same check.
    user_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Workspaces running (or starting) at once, whoever owns them.
    max_running: u64,
    /// The same for the host-wide count; taken after the user's lock, never before.
    host_lock: Arc<tokio::sync::Mutex<()>>,
    /// Idle stop, once the reaper runs (`spawn_background`).
    idle_stop: std::sync::OnceLock<Duration>,
    /// Each running workspace's CPU time when the reaper last looked, and when.
    cpu_seen: Mutex<HashMap<i64, (f64, Instant)>>,
}

/// Holds a workspace's in-flight claim until dropped.
struct Claim {
    set: Arc<Mutex<HashSet<i64>>>,
    id: i64,
}

impl Drop for Claim {
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
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            changes: broadcast::channel(256).0,
            hosts: hosts::HostCache::default(),
            activity: Activity::default(),
            user_locks: Mutex::new(HashMap::new()),
            max_running: u64::MAX,
            host_lock: Arc::default(),
            idle_stop: std::sync::OnceLock::new(),
            cpu_seen: Mutex::new(HashMap::new()),
        }
    }

    /// Caps the workspaces running at once on this server (`workspaces.max_running`).
    pub fn with_max_running(mut self, max: u64) -> Self {
        self.max_running = max;
        self
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Whether a template's editor can run here (always true for remote runtimes).
    pub fn template_ready(&self, t: &Template) -> bool {
        self.local_editors
            .as_ref()
            .is_none_or(|dir| t.editor.is_installed(dir))
    }

    /// User ids whose workspace list changed (lagging receivers should just reload).
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.changes.subscribe()
    }

    fn claim(&self, id: i64) -> Result<Claim, WorkspaceError> {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(id) {
            return Err(WorkspaceError::Busy("already changing state"));
        }
        Ok(Claim {
            set: self.in_flight.clone(),
            id,
        })
    }

    async fn lock_user(&self, user_id: i64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .user_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(user_id)
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    fn is_claimed(&self, id: i64) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    async fn spec(&self, row: &workspace::Model) -> Result<WorkspaceSpec, WorkspaceError> {
        let owner = accounts::find_by_id(&self.db, row.user_id)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let template = self
            .templates
            .iter()
            .find(|t| t.id == row.template_id)
            .cloned()
            .ok_or_else(|| WorkspaceError::UnknownTemplate(row.template_id.clone()))?;
        Ok(WorkspaceSpec {
            id: row.id,
            owner_id: row.user_id,
            owner: owner.username,
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
        let row = row.update(&self.db).await?;
        self.owner_changed(row.user_id);
        Ok(row)
    }

    async fn count(&self, user_id: i64, active_only: bool) -> Result<u64, WorkspaceError> {
        let mut q = workspace::Entity::find().filter(workspace::Column::UserId.eq(user_id));
        if active_only {
            q = q.filter(workspace::Column::State.is_in(states(WorkspaceState::is_active)));
        }
        Ok(q.count(&self.db).await?)
    }

    /// Refuses a start beyond the user's or the host's running limit. Hold the returned
    /// guard until the new state is written.
    async fn check_running_limit(
        &self,
        user_id: i64,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, WorkspaceError> {
        let max = self.limits.max_running_per_user;
        if self.count(user_id, true).await? >= max {
            return Err(WorkspaceError::LimitReached(format!(
                "You can run at most {max} workspaces at once. Stop one first."
            )));
        }
        let host = self.host_lock.clone().lock_owned().await;
        let running = workspace::Entity::find()
            .filter(workspace::Column::State.is_in(states(WorkspaceState::is_active)))
            .count(&self.db)
            .await?;
        if running >= self.max_running {
            let max = self.max_running;
            return Err(WorkspaceError::LimitReached(format!(
                "This server is at its limit of {max} running workspaces \
                 (workspaces.max_running = {max}). Try again when one has stopped."
            )));
        }
        Ok(host)
    }
}

pub(super) fn states(pred: impl Fn(WorkspaceState) -> bool) -> Vec<&'static str> {
    WorkspaceState::ALL
        .into_iter()
        .filter(|s| pred(*s))
        .map(|s| s.as_str())
        .collect()
}

pub(super) fn runtime_state(row: &workspace::Model) -> Value {
    row.runtime_state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

#[async_trait::async_trait]
impl AccountDeletionHook for WorkspaceService {
    async fn before_account_deletion(&self, user_id: i64) -> Result<(), String> {
        let owner = accounts::find_by_id(&self.db, user_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no such user")?;
        self.delete_all(&owner).await.map_err(|e| e.to_string())
    }
}
