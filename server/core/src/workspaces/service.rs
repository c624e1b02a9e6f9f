//! The workspace service: create, start, stop, restart, delete, list. Every entry point
//! (server functions, the gateway's Start button, the CLI, the idle reaper, the reconciler)
//! goes through here.
//!
//! Each operation has two halves: `prepare` checks and claims the workspace and persists the
//! transitional state (so the caller can answer at once, and a second click is refused with a
//! clear message), then `finish` makes the runtime calls and persists the outcome. The
//! dashboard runs `finish` in the background and watches the list change over
//! [`WorkspaceService::subscribe`]; tests and the CLI await it.

use super::{
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
            state: state_of(m),
            reason: m.reason.clone(),
        }
    }
}

/// An unknown state can only come from a newer version; treat it as failed.
fn state_of(m: &workspace::Model) -> WorkspaceState {
    WorkspaceState::parse(&m.state).unwrap_or(WorkspaceState::Failed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Delete,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(Self::Start),
            "stop" => Some(Self::Stop),
            "restart" => Some(Self::Restart),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// What the gateway needs to route to a workspace.
#[derive(Debug, Clone)]
pub struct GatewayTarget {
    pub id: i64,
    pub owner_id: i64,
    pub state: WorkspaceState,
    pub endpoint: Option<Endpoint>,
}

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
    /// The ids of users whose workspaces just changed.
    changes: broadcast::Sender<i64>,
    activity: Activity,
    /// Held while a user's limits are checked and the result written, so two concurrent
    /// requests cannot both pass the same check.
    user_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Workspaces running (or starting) at once, whoever owns them.
    max_running: u64,
    /// The same for the host-wide count; taken after the user's lock, never before.
    host_lock: Arc<tokio::sync::Mutex<()>>,
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

/// A prepared operation: claimed, checked, transitional state persisted.
struct Job {
    _claim: Claim,
    action: Action,
    row: workspace::Model,
    spec: WorkspaceSpec,
    /// Why it stops (idle), shown in the list.
    reason: Option<String>,
}

enum Prepared {
    /// Nothing to do (e.g. Start on a running workspace).
    Done(WorkspaceView),
    Job(Box<Job>),
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
            activity: Activity::default(),
            user_locks: Mutex::new(HashMap::new()),
            max_running: u64::MAX,
            host_lock: Arc::default(),
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
        let _ = self.changes.send(row.user_id);
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

    pub async fn list(&self, owner: &Account) -> Result<Vec<WorkspaceView>, WorkspaceError> {
        let rows = workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .order_by_asc(workspace::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows.iter().map(Into::into).collect())
    }

    pub async fn get(&self, owner: &Account, id: i64) -> Result<WorkspaceView, WorkspaceError> {
        Ok((&self.load(owner, id).await?).into())
    }

    pub async fn find_by_name(
        &self,
        owner: &Account,
        name: &str,
    ) -> Result<Option<WorkspaceView>, WorkspaceError> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .filter(workspace::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .as_ref()
            .map(Into::into))
    }

    /// The workspace `<user>-<name>` names, for the gateway; `None` when either is unknown.
    pub async fn resolve(
        &self,
        user: &str,
        name: &str,
    ) -> Result<Option<GatewayTarget>, WorkspaceError> {
        let Some(owner) = accounts::find_by_username(&self.db, user).await? else {
            return Ok(None);
        };
        let Some(row) = workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(owner.id))
            .filter(workspace::Column::Name.eq(name))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let endpoint = self.runtime.endpoint(row.id, &runtime_state(&row));
        Ok(Some(GatewayTarget {
            id: row.id,
            owner_id: owner.id,
            state: state_of(&row),
            endpoint,
        }))
    }

    /// Validates and records a new workspace (`creating`), claimed for its bring-up.
    async fn prepare_create(
        &self,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<Job, WorkspaceError> {
        validate_name(name)?;
        let template = self
            .templates
            .iter()
            .find(|t| t.id == template_id)
            .ok_or_else(|| WorkspaceError::UnknownTemplate(template_id.to_string()))?;
        if !self.template_ready(template) {
            return Err(WorkspaceError::EditorMissing(template.editor.label()));
        }
        let _limits = self.lock_user(owner.id).await;
        let max = self.limits.max_per_user;
        if self.count(owner.id, false).await? >= max {
            return Err(WorkspaceError::LimitReached(format!(
                "You can have at most {max} workspaces. Delete one first."
            )));
        }
        let _host = self.check_running_limit(owner.id).await?;
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
        let _ = self.changes.send(owner.id);
        let claim = self.claim(row.id)?;
        let spec = self.spec(&row).await?;
        Ok(Job {
            _claim: claim,
            action: Action::Start,
            row,
            spec,
            reason: None,
        })
    }

    /// Creates a workspace and waits until it runs (or failed, with the reason).
    pub async fn create(
        &self,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let job = self.prepare_create(owner, name, template_id).await?;
        self.finish(job).await
    }

    /// Creates a workspace and brings it up in the background; returns it `creating`.
    pub async fn create_in_background(
        self: &Arc<Self>,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let job = self.prepare_create(owner, name, template_id).await?;
        let view = (&job.row).into();
        self.spawn_finish(job);
        Ok(view)
    }

    async fn prepare(
        &self,
        row: workspace::Model,
        action: Action,
        reason: Option<String>,
    ) -> Result<Prepared, WorkspaceError> {
        let claim = self.claim(row.id)?;
        // Re-read under the claim: the state may have moved since the caller looked.
        let row = workspace::Entity::find_by_id(row.id)
            .one(&self.db)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let st = state_of(&row);
        // Starting counts against the running limit: check and write under the user's lock.
        let _limits = if matches!(action, Action::Start | Action::Restart) {
            Some(self.lock_user(row.user_id).await)
        } else {
            None
        };
        let mut _host = None;
        let next = match action {
            Action::Start if st == WorkspaceState::Running => {
                return Ok(Prepared::Done((&row).into()))
            }
            Action::Stop if st == WorkspaceState::Stopped => {
                return Ok(Prepared::Done((&row).into()))
            }
            Action::Start | Action::Restart if st.can_start() => {
                _host = Some(self.check_running_limit(row.user_id).await?);
                WorkspaceState::Starting
            }
            Action::Stop | Action::Restart if st.can_stop() => WorkspaceState::Stopping,
            // Under our claim nothing else is changing it: a transitional state here is left
            // over from a crash, and deleting is the way out of any state.
            Action::Delete => WorkspaceState::Deleting,
            _ => return Err(WorkspaceError::Busy(st.as_str())),
        };
        let spec = self.spec(&row).await?;
        let row = self.set_state(row.id, next, None).await?;
        Ok(Prepared::Job(Box::new(Job {
            _claim: claim,
            action,
            row,
            spec,
            reason,
        })))
    }

    /// Runs the runtime calls of a prepared operation and persists the outcome.
    async fn finish(&self, job: Job) -> Result<WorkspaceView, WorkspaceError> {
        let id = job.row.id;
        let state = runtime_state(&job.row);
        match job.action {
            Action::Start => self.bring_up(&job).await,
            Action::Stop => self.take_down(&job, &state, job.reason.clone()).await,
            Action::Restart => {
                if state_of(&job.row) == WorkspaceState::Stopping {
                    let v = self.take_down(&job, &state, None).await?;
                    if v.state != WorkspaceState::Stopped {
                        return Ok(v);
                    }
                }
                self.bring_up(&job).await
            }
            Action::Delete => {
                if let Err(e) = self.runtime.destroy(&job.spec, &state).await {
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
                self.activity.forget(id);
                let _ = self.changes.send(job.row.user_id);
                let mut v: WorkspaceView = (&job.row).into();
                v.state = WorkspaceState::Deleting;
                Ok(v)
            }
        }
    }

    fn spawn_finish(self: &Arc<Self>, job: Job) {
        let this = self.clone();
        tokio::spawn(async move {
            let id = job.row.id;
            if let Err(e) = this.finish(job).await {
                tracing::warn!(workspace = id, "background workspace operation failed: {e}");
            }
        });
    }

    /// Provisions when needed, then starts. Persists each step.
    async fn bring_up(&self, job: &Job) -> Result<WorkspaceView, WorkspaceError> {
        let id = job.row.id;
        let state: Value = match job.row.runtime_state.as_deref().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => match self.runtime.provision(&job.spec).await {
                Ok(v) => {
                    let row = workspace::Entity::find_by_id(id)
                        .one(&self.db)
                        .await?
                        .ok_or(WorkspaceError::NotFound)?;
                    let mut r: workspace::ActiveModel = row.into();
                    r.runtime_state = Set(Some(v.to_string()));
                    r.update(&self.db).await?;
                    v
                }
                Err(e) => {
                    let row = self
                        .set_state(id, WorkspaceState::Failed, Some(e.0))
                        .await?;
                    return Ok((&row).into());
                }
            },
        };
        self.set_state(id, WorkspaceState::Starting, None).await?;
        let row = match self.runtime.start(&job.spec, &state).await {
            Ok(()) => {
                self.activity.touch(id);
                self.set_state(id, WorkspaceState::Running, None).await?
            }
            Err(e) => {
                // Leave nothing half-started behind.
                let _ = self.runtime.stop(&job.spec, &state).await;
                self.set_state(id, WorkspaceState::Failed, Some(e.0))
                    .await?
            }
        };
        Ok((&row).into())
    }

    async fn take_down(
        &self,
        job: &Job,
        state: &Value,
        reason: Option<String>,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let id = job.row.id;
        let row = match self.runtime.stop(&job.spec, state).await {
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

    /// `prepare` for a workspace of `owner` (anyone else's is `NotFound`).
    async fn prepare_owned(
        &self,
        owner: &Account,
        id: i64,
        action: Action,
    ) -> Result<Prepared, WorkspaceError> {
        let row = self.load(owner, id).await?;
        self.prepare(row, action, None).await
    }

    async fn run(
        &self,
        owner: &Account,
        id: i64,
        action: Action,
    ) -> Result<WorkspaceView, WorkspaceError> {
        match self.prepare_owned(owner, id, action).await? {
            Prepared::Done(v) => Ok(v),
            Prepared::Job(job) => self.finish(*job).await,
        }
    }

    /// Starts, stops, restarts or deletes in the background; returns the transitional state.
    pub async fn begin(
        self: &Arc<Self>,
        owner: &Account,
        id: i64,
        action: Action,
    ) -> Result<WorkspaceView, WorkspaceError> {
        match self.prepare_owned(owner, id, action).await? {
            Prepared::Done(v) => Ok(v),
            Prepared::Job(job) => {
                let view = (&job.row).into();
                self.spawn_finish(*job);
                Ok(view)
            }
        }
    }

    pub async fn start(&self, owner: &Account, id: i64) -> Result<WorkspaceView, WorkspaceError> {
        self.run(owner, id, Action::Start).await
    }

    pub async fn stop(&self, owner: &Account, id: i64) -> Result<WorkspaceView, WorkspaceError> {
        self.run(owner, id, Action::Stop).await
    }

    pub async fn restart(&self, owner: &Account, id: i64) -> Result<WorkspaceView, WorkspaceError> {
        self.run(owner, id, Action::Restart).await
    }

    /// Deletes a workspace in any state (a running one is stopped by the runtime's destroy).
    /// Files and runtime resources go first; the row last.
    pub async fn delete(&self, owner: &Account, id: i64) -> Result<(), WorkspaceError> {
        self.run(owner, id, Action::Delete).await.map(|_| ())
    }

    /// Deletes every workspace of a user (account deletion).
    pub async fn delete_all(&self, owner: &Account) -> Result<(), WorkspaceError> {
        for ws in self.list(owner).await? {
            self.delete(owner, ws.id).await?;
        }
        Ok(())
    }

    /// Stops running workspaces that saw no request and have no open WebSocket for `idle`.
    /// Returns how many it stopped.
    pub async fn stop_idle(&self, idle: Duration) -> Result<usize, WorkspaceError> {
        let rows = workspace::Entity::find()
            .filter(workspace::Column::State.eq(WorkspaceState::Running.as_str()))
            .all(&self.db)
            .await?;
        let now = Instant::now();
        let now_unix = now_unix();
        let mut stopped = 0;
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

fn states(pred: impl Fn(WorkspaceState) -> bool) -> Vec<&'static str> {
    WorkspaceState::ALL
        .into_iter()
        .filter(|s| pred(*s))
        .map(|s| s.as_str())
        .collect()
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} seconds"),
        120..=7199 => format!("{} minutes", s / 60),
        _ => format!("{} hours", s / 3600),
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
        let owner = accounts::find_by_id(&self.db, user_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no such user")?;
        self.delete_all(&owner).await.map_err(|e| e.to_string())
    }
}
