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
mod claims;
mod hosts;
mod idle;
mod lifecycle;
mod limits;
mod pool;
mod port_shares;
mod queries;
mod queue;
mod recovery;
mod view;

use claims::Claim;
use lifecycle::Prepared;
pub use pool::{PoolStatus, PoolStep, POOL_OWNER};
pub use port_shares::{sharing_of, PortShares, PortSharing};
pub use queries::Census;
use view::state_of;
pub use view::{Action, GatewayTarget, WorkspaceLimits, WorkspaceView};

pub use crate::replicas::feed::Changed;
use crate::workspaces::{
    activity::Activity,
    runtime::{Endpoint, Runtime, RuntimeEventKind, WorkspaceSpec},
    validate_name, WorkspaceError, WorkspaceState,
};
use crate::{
    accounts::{self, Account, AccountDeletionHook},
    replicas::feed::ChangeFeed,
    store::{entity::workspace, now_unix},
    templates::Template,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
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
    /// Workspaces with an operation under way in this process (two clicks on Start run once),
    /// each `true` once its outcome is written and only the claim is left to give up.
    in_flight: Arc<Mutex<HashMap<i64, bool>>>,
    /// Whose workspaces just changed, here or on another replica (sent by `owner_changed`
    /// and `heard` only).
    changes: broadcast::Sender<Changed>,
    /// This replica's name, on the claims it takes.
    replica: String,
    /// Announces this replica's changes to the others (none on SQLite).
    feed: Option<ChangeFeed>,
    hosts: hosts::HostCache,
    activity: Activity,
    /// Held while a user's limits are checked and the result written, so two concurrent
    /// requests cannot both pass the same check.
    user_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Workspaces running (or starting) at once, whoever owns them.
    max_running: u64,
    /// The same for the host-wide count; taken after the user's lock, never before.
    host_lock: Arc<tokio::sync::Mutex<()>>,
    /// Whether this replica leads the background work, once it runs (`run_background`).
    leads: std::sync::OnceLock<crate::replicas::lease::Leadership>,
    /// Idle stop, once the reaper runs (`run_background`).
    idle_stop: std::sync::OnceLock<Duration>,
    /// Each running workspace's CPU time when the reaper last looked, and when.
    cpu_seen: Mutex<HashMap<i64, (f64, Instant)>>,
    /// Workspaces prepared ahead (`pool`).
    pool: pool::Pool,
    /// This process's counters (start durations, runtime errors), scraped at `/metrics`.
    metrics: Arc<crate::metrics::Metrics>,
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
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            changes: broadcast::channel(256).0,
            replica: crate::replicas::new_id(),
            feed: None,
            hosts: hosts::HostCache::default(),
            activity: Activity::default(),
            user_locks: Mutex::new(HashMap::new()),
            max_running: u64::MAX,
            host_lock: Arc::default(),
            leads: std::sync::OnceLock::new(),
            idle_stop: std::sync::OnceLock::new(),
            cpu_seen: Mutex::new(HashMap::new()),
            pool: pool::Pool::default(),
            metrics: crate::metrics::Metrics::new(),
        }
    }

    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Runs as replica `id` among others on the same database, announcing changes on `feed`.
    pub fn with_replica(mut self, id: String, feed: Option<ChangeFeed>) -> Self {
        self.replica = id;
        self.feed = feed;
        self
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Whether this replica leads the background work (`None` before it runs).
    pub fn leads(&self) -> Option<bool> {
        self.leads.get().map(|l| *l.borrow())
    }

    /// How changes reach the other replicas, if there can be any.
    pub fn feed(&self) -> Option<&ChangeFeed> {
        self.feed.as_ref()
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

    /// Whose workspace lists changed (lagging receivers should just reload).
    pub fn subscribe(&self) -> broadcast::Receiver<Changed> {
        self.changes.subscribe()
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

    async fn spec(&self, row: &workspace::Model) -> Result<WorkspaceSpec, WorkspaceError> {
        // A pooled IDE has no owner, and runs with no user's name in it.
        let (owner, quota) = match row.user_id {
            POOL_OWNER => (String::new(), accounts::Quota::default()),
            id => {
                let u = crate::store::entity::user::Entity::find_by_id(id)
                    .one(&self.db)
                    .await?
                    .ok_or(WorkspaceError::NotFound)?;
                (u.username.clone(), accounts::Quota::of(&u))
            }
        };
        let mut template = self
            .templates
            .iter()
            .find(|t| t.id == row.template_id)
            .cloned()
            .ok_or_else(|| WorkspaceError::UnknownTemplate(row.template_id.clone()))?;
        // An admin's memory quota for this user replaces the template's.
        if let Some(mb) = quota.memory_mb {
            template.memory_mb = mb;
        }
        Ok(WorkspaceSpec {
            id: row.id,
            owner_id: row.user_id,
            owner,
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
        // Marked first: whoever reads the new state may act on it at once.
        self.mark_settled(id, !state.is_transitional());
        let row = write_state(&self.db, id, state, reason).await?;
        self.owner_changed(row.user_id);
        Ok(row)
    }
}

/// Writes a workspace's state on `c` (a transaction, or the pool); the caller announces it.
async fn write_state(
    c: &impl ConnectionTrait,
    id: i64,
    state: WorkspaceState,
    reason: Option<String>,
) -> Result<workspace::Model, WorkspaceError> {
    let row = workspace::Entity::find_by_id(id)
        .one(c)
        .await?
        .ok_or(WorkspaceError::NotFound)?;
    let mut row: workspace::ActiveModel = row.into();
    row.state = Set(state.as_str().to_string());
    row.reason = Set(reason);
    row.updated_at = Set(now_unix());
    Ok(row.update(c).await?)
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
    async fn before_account_deletion(
        &self,
        by: &crate::audit::Actor,
        user_id: i64,
    ) -> Result<(), String> {
        let owner = accounts::find_by_id(&self.db, user_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no such user")?;
        self.delete_all(by, &owner).await.map_err(|e| e.to_string())
    }
}
