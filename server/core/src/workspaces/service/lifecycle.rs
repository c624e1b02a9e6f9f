//! Create, start, stop, restart, delete: each claims the workspace and persists the
//! transitional state (`prepare`), then makes the runtime calls and persists the outcome
//! (`finish`).

use super::{limits::Slot, pool::Taken, *};
use crate::audit::{self, Actor, Subject};
use sea_orm::TransactionTrait;

/// What an action is called in the audit log.
pub(super) fn audit_action(action: Action) -> audit::Action {
    match action {
        Action::Start => audit::Action::WorkspaceStart,
        Action::Stop => audit::Action::WorkspaceStop,
        Action::Restart => audit::Action::WorkspaceRestart,
        Action::Delete => audit::Action::WorkspaceDelete,
    }
}

/// Writes a new workspace row in `state` on `txn`, claimed with `claim` if given; a name the
/// user already has is `NameTaken` (the unique index decides between two at once).
async fn insert_row(
    txn: &sea_orm::DatabaseTransaction,
    user_id: i64,
    name: &str,
    template_id: &str,
    state: WorkspaceState,
    claim: Option<&str>,
) -> Result<workspace::Model, WorkspaceError> {
    let now = now_unix();
    let row = workspace::ActiveModel {
        claimed_by: Set(claim.map(str::to_string)),
        claim_expires: Set(claim.map(|_| now + claims::CLAIM_SECS)),
        user_id: Set(user_id),
        name: Set(name.to_string()),
        template_id: Set(template_id.to_string()),
        state: Set(state.as_str().into()),
        reason: Set(None),
        runtime_state: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    match row.insert(txn).await {
        Ok(r) => Ok(r),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(WorkspaceError::NameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Records a refused (or failed before any change) request; nothing changed, so it has no
/// transaction to join.
async fn record_refusal(
    db: &DatabaseConnection,
    by: &Actor,
    action: audit::Action,
    subject: &Subject,
    e: &WorkspaceError,
) {
    let outcome = match e {
        WorkspaceError::Store(_) => audit::Outcome::Failed,
        _ => audit::Outcome::Refused,
    };
    audit::record_alone(db, by, action, subject, outcome, Some(&e.to_string())).await;
}

/// A prepared operation: claimed, checked, transitional state persisted.
pub(super) struct Job {
    pub(super) claim: Claim,
    pub(super) action: Action,
    pub(super) row: workspace::Model,
    pub(super) spec: WorkspaceSpec,
    /// Why it stops (idle), shown in the list.
    pub(super) reason: Option<String>,
    /// Who asked, for the audit log (`None`: the service's own upkeep, not audited).
    pub(super) by: Option<Actor>,
    /// When it was asked for: a user's start is timed from here (`metrics`).
    pub(super) since: Instant,
    /// What the request was, in the audit log (a create's bring-up is a `Start` job).
    pub(super) audited_as: audit::Action,
}

pub(super) enum Prepared {
    /// Nothing to do (e.g. Start on a running workspace).
    Done(WorkspaceView),
    Job(Box<Job>),
}

impl WorkspaceService {
    /// Validates and records a new workspace: one taken over from the pool (running at
    /// once, or `starting`, claimed for its start), else a new one (`creating`), claimed for
    /// its bring-up.
    pub(super) async fn prepare_create(
        &self,
        by: &Actor,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<Prepared, WorkspaceError> {
        let prepared = self
            .prepare_create_unaudited(by, owner, name, template_id)
            .await;
        if let Err(e) = &prepared {
            let subject = Subject::of(owner, name);
            record_refusal(&self.db, by, audit::Action::WorkspaceCreate, &subject, e).await;
        }
        prepared
    }

    async fn prepare_create_unaudited(
        &self,
        by: &Actor,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<Prepared, WorkspaceError> {
        let since = Instant::now();
        validate_name(name)?;
        self.check_template(template_id)?;
        let _limits = self.lock_user(owner.id).await;
        let txn = self.limits_txn(owner.id).await?;
        self.check_workspace_limit(&txn, owner.id).await?;
        self.check_user_running_limit(&txn, owner.id).await?;
        // A pooled workspace that still has to start needs a host slot as a new one does,
        // checked before the take turns it `starting` (and so counted).
        let host = match self.runtime.pool_starts_ides() {
            true => None,
            false => Some(self.host_slot(&txn).await?),
        };
        // In the transaction that writes the row: rolled back with it if the name is taken.
        let subject = Subject::of(owner, name);
        let record = |txn, detail: String| async move {
            let ok = audit::Outcome::Ok;
            let action = audit::Action::WorkspaceCreate;
            audit::record(txn, by, action, &subject, ok, Some(&detail)).await
        };
        let pooled = match &host {
            Some(Slot::Full(_)) => None,
            _ => self.take_pooled(&txn, owner, name, template_id).await?,
        };
        if let Some(taken) = pooled {
            record(&txn, template_id.to_string()).await?;
            txn.commit().await?;
            drop(host);
            let (row, claim) = match taken {
                // A pooled IDE already counts on the host: taking it needs no host slot.
                Taken::Running(row) => (row, None),
                Taken::ToStart(row, claim) => (row, Some(self.renewing(claim))),
            };
            self.owner_changed(owner.id);
            self.pooled_taken();
            tracing::info!(
                workspace = row.id,
                template = template_id,
                starting = claim.is_some(),
                "created from the pool"
            );
            let Some(claim) = claim else {
                self.activity.touch(row.id);
                self.metrics
                    .workspace_started(template_id, true, since.elapsed());
                return Ok(Prepared::Done((&row).into()));
            };
            let spec = self.spec(&row).await?;
            return Ok(Prepared::Job(Box::new(Job {
                claim,
                action: Action::Start,
                row,
                spec,
                reason: None,
                by: Some(by.clone()),
                since,
                audited_as: audit::Action::WorkspaceCreate,
            })));
        }
        let host = match host {
            Some(slot) => slot,
            None => self.host_slot(&txn).await?,
        };
        let host = match host {
            Slot::Free(h) => h,
            Slot::Full(why) => {
                record(&txn, format!("{template_id}; queued: {why}")).await?;
                let row = self.insert_queued(txn, owner.id, name, template_id).await?;
                self.owner_changed(owner.id);
                return Ok(Prepared::Done((&row).into()));
            }
        };
        record(&txn, template_id.to_string()).await?;
        let mut job = self
            .insert_creating(txn, host, owner.id, name, template_id)
            .await?;
        job.by = Some(by.clone());
        job.since = since;
        self.owner_changed(owner.id);
        Ok(Prepared::Job(Box::new(job)))
    }

    /// Writes a new workspace that waits for room on the host (`queued`, unclaimed: the
    /// leader starts it in its turn) in `txn`, and commits.
    async fn insert_queued(
        &self,
        txn: sea_orm::DatabaseTransaction,
        user_id: i64,
        name: &str,
        template_id: &str,
    ) -> Result<workspace::Model, WorkspaceError> {
        let state = WorkspaceState::Queued;
        let row = insert_row(&txn, user_id, name, template_id, state, None).await?;
        txn.commit().await?;
        tracing::info!(workspace = row.id, "the host is full: queued");
        Ok(row)
    }

    /// A template new workspaces can be made from here.
    pub(super) fn check_template(&self, template_id: &str) -> Result<(), WorkspaceError> {
        let template = self
            .templates
            .iter()
            .find(|t| t.id == template_id)
            .ok_or_else(|| WorkspaceError::UnknownTemplate(template_id.to_string()))?;
        if !self.template_ready(template) {
            return Err(WorkspaceError::EditorMissing(template.editor.label()));
        }
        Ok(())
    }

    /// Writes a new workspace row (`creating`) in `txn`, commits, lets the host slot go and
    /// returns its bring-up, claimed.
    pub(super) async fn insert_creating(
        &self,
        txn: sea_orm::DatabaseTransaction,
        host: tokio::sync::OwnedMutexGuard<()>,
        user_id: i64,
        name: &str,
        template_id: &str,
    ) -> Result<Job, WorkspaceError> {
        // Claimed as it is written: never a moment when it looks abandoned to the leader.
        let token = self.claim_token();
        let state = WorkspaceState::Creating;
        let row = insert_row(&txn, user_id, name, template_id, state, Some(&token)).await?;
        txn.commit().await?;
        // Let go at once: whoever waits for it may hold the connection a query below needs.
        drop(host);
        let claim = self.renewing(self.hold_locally(row.id, token)?);
        let spec = self.spec(&row).await?;
        Ok(Job {
            claim,
            action: Action::Start,
            row,
            spec,
            reason: None,
            by: None,
            since: Instant::now(),
            audited_as: audit::Action::WorkspaceCreate,
        })
    }

    /// Creates a workspace and waits until it runs (or failed, with the reason); the owner
    /// acts, from no known address (the CLI, tests).
    pub async fn create(
        &self,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let by = Actor::user(owner, None);
        match self.prepare_create(&by, owner, name, template_id).await? {
            Prepared::Done(v) => Ok(v),
            Prepared::Job(job) => self.finish(*job).await,
        }
    }

    /// Creates a workspace and brings it up in the background; returns it `creating` (or
    /// `running`, when it came from the pool).
    pub async fn create_in_background(
        self: &Arc<Self>,
        by: &Actor,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<WorkspaceView, WorkspaceError> {
        match self.prepare_create(by, owner, name, template_id).await? {
            Prepared::Done(v) => Ok(v),
            Prepared::Job(job) => {
                let view = (&job.row).into();
                self.spawn_finish(*job);
                Ok(view)
            }
        }
    }

    /// Checks, claims and persists the transitional state; audited as `by`'s (the refusal
    /// too), unless `by` is `None` (the service's own upkeep).
    pub(super) async fn prepare(
        &self,
        by: Option<&Actor>,
        row: workspace::Model,
        action: Action,
        reason: Option<String>,
    ) -> Result<Prepared, WorkspaceError> {
        let subject = Subject {
            user_id: Some(row.user_id),
            name: Some(row.name.clone()),
        };
        // Only a person's request waits: the service's own upkeep (the idle reaper) acting on
        // what just settled would act on something a person just did.
        let claimed = match by.is_some_and(|b| b.id.is_some()) {
            true => self.claim_after_settling(row.id).await,
            false => self.claim(row.id).await,
        };
        let prepared = match claimed {
            Ok(claim) => self.prepare_claimed(by, claim, row, action, reason).await,
            Err(e) => Err(e),
        };
        if let (Err(e), Some(by)) = (&prepared, by) {
            let subject = self.named_subject(subject).await;
            record_refusal(&self.db, by, audit_action(action), &subject, e).await;
        }
        prepared
    }

    /// `prepare` under a claim the caller already holds.
    pub(super) async fn prepare_claimed(
        &self,
        by: Option<&Actor>,
        claim: Claim,
        row: workspace::Model,
        action: Action,
        reason: Option<String>,
    ) -> Result<Prepared, WorkspaceError> {
        let since = Instant::now();
        // Re-read under the claim: the state may have moved since the caller looked.
        let row = workspace::Entity::find_by_id(row.id)
            .one(&self.db)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let st = state_of(&row);
        // Before the limits transaction: a query on another connection while it is open
        // could wait for the very connection it holds (SQLite has one).
        let spec = self.spec(&row).await?;
        // Starting counts against the running limit: check and write under the user's locks.
        let starting = matches!(action, Action::Start | Action::Restart) && st.can_start();
        let _limits = if starting {
            Some(self.lock_user(row.user_id).await)
        } else {
            None
        };
        let txn = match starting {
            true => Some(self.limits_txn(row.user_id).await?),
            false => None,
        };
        let mut host = None;
        // Why the new state needs no runtime call (it is where the request ends).
        let mut settled = None;
        let next = match action {
            Action::Start if st == WorkspaceState::Running => {
                return Ok(Prepared::Done((&row).into()))
            }
            Action::Stop if st == WorkspaceState::Stopped => {
                return Ok(Prepared::Done((&row).into()))
            }
            Action::Start | Action::Restart if st.can_start() => {
                let txn = txn.as_ref().expect("begun for a start");
                match self.check_running_limit(txn, row.user_id).await {
                    Ok(guard) => {
                        host = Some(guard);
                        WorkspaceState::Starting
                    }
                    // A user's start waits its turn; the pool's simply does not happen.
                    Err(WorkspaceError::HostFull(why)) if row.user_id != POOL_OWNER => {
                        settled = Some(format!("queued: {why}"));
                        WorkspaceState::Queued
                    }
                    Err(e) => return Err(e),
                }
            }
            Action::Stop | Action::Restart if st.can_stop() => WorkspaceState::Stopping,
            // Taken out of the line: it never started, so nothing is to be stopped.
            Action::Stop if st.can_cancel() => {
                settled = Some("taken out of the queue".into());
                WorkspaceState::Stopped
            }
            // Under our claim nothing else is changing it: a transitional state here is left
            // over from a crash, and deleting is the way out of any state.
            Action::Delete => WorkspaceState::Deleting,
            _ => return Err(WorkspaceError::Busy(st.as_str())),
        };
        let txn = match txn {
            Some(txn) => txn,
            None => self.db.begin().await?,
        };
        let row = write_state(&txn, row.id, next, None).await?;
        if let Some(by) = by {
            let subject = Subject {
                user_id: Some(row.user_id),
                name: Some(format!("{}/{}", spec.owner, row.name)),
            };
            let detail = settled.as_deref().or(reason.as_deref());
            audit::record(
                &txn,
                by,
                audit_action(action),
                &subject,
                audit::Outcome::Ok,
                detail,
            )
            .await?;
        }
        if settled.is_some() {
            self.mark_settled(row.id, true);
        }
        txn.commit().await?;
        drop(host);
        self.owner_changed(row.user_id);
        if settled.is_some() {
            claim.release().await;
            return Ok(Prepared::Done((&row).into()));
        }
        Ok(Prepared::Job(Box::new(Job {
            claim,
            action,
            row,
            spec,
            reason,
            by: by.cloned(),
            since,
            audited_as: audit_action(action),
        })))
    }

    /// Runs the runtime calls of a prepared operation and persists the outcome; the claim
    /// is given up before this returns, so the next action, through any replica, may follow
    /// at once.
    pub(super) async fn finish(&self, job: Job) -> Result<WorkspaceView, WorkspaceError> {
        let result = self.carry_out(&job).await;
        self.mark_settled(job.row.id, true);
        self.record_failure(&job, &result).await;
        self.time_start(&job, &result);
        job.claim.release().await;
        result
    }

    /// A user's start (or create) that ended running or failed, timed from the request.
    fn time_start(&self, job: &Job, result: &Result<WorkspaceView, WorkspaceError>) {
        let starts = matches!(job.action, Action::Start | Action::Restart);
        if !starts || job.row.user_id == POOL_OWNER {
            return;
        }
        let running = match result {
            Ok(v) if v.state == WorkspaceState::Running => true,
            Ok(v) if v.state == WorkspaceState::Failed => false,
            Ok(_) => return,
            Err(_) => false,
        };
        let template = &job.row.template_id;
        self.metrics
            .workspace_started(template, running, job.since.elapsed());
    }

    /// An accepted request that then failed gets a second audit entry saying so and why.
    async fn record_failure(&self, job: &Job, result: &Result<WorkspaceView, WorkspaceError>) {
        let Some(by) = &job.by else { return };
        let why = match result {
            Ok(v) if v.state == WorkspaceState::Failed => v.reason.clone(),
            Ok(_) => return,
            Err(e) => Some(e.to_string()),
        };
        let subject = Subject {
            user_id: Some(job.row.user_id),
            name: Some(format!("{}/{}", job.spec.owner, job.row.name)),
        };
        let action = job.audited_as;
        let detail = why.as_deref();
        audit::record_alone(
            &self.db,
            by,
            action,
            &subject,
            audit::Outcome::Failed,
            detail,
        )
        .await;
    }

    /// A workspace subject named `owner/name` (the owner's name read now).
    async fn named_subject(&self, mut subject: Subject) -> Subject {
        if let Some(uid) = subject.user_id {
            if let Ok(Some(owner)) = accounts::find_by_id(&self.db, uid).await {
                let name = subject.name.take().unwrap_or_default();
                subject.name = Some(format!("{}/{name}", owner.username));
            }
        }
        subject
    }

    async fn carry_out(&self, job: &Job) -> Result<WorkspaceView, WorkspaceError> {
        let id = job.row.id;
        let state = runtime_state(&job.row);
        match job.action {
            Action::Start => self.bring_up(job).await,
            Action::Stop => self.take_down(job, &state, job.reason.clone()).await,
            Action::Restart => {
                if state_of(&job.row) == WorkspaceState::Stopping {
                    let v = self.take_down(job, &state, None).await?;
                    if v.state != WorkspaceState::Stopped {
                        return Ok(v);
                    }
                }
                self.bring_up(job).await
            }
            Action::Delete => {
                if let Err(e) = self.runtime.destroy(&job.spec, &state).await {
                    self.metrics.runtime_error("destroy");
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
                self.forget_port_shares(id).await?;
                workspace::Entity::delete_by_id(id).exec(&self.db).await?;
                self.activity.forget(id);
                self.owner_changed(job.row.user_id);
                let mut v: WorkspaceView = (&job.row).into();
                v.state = WorkspaceState::Deleting;
                Ok(v)
            }
        }
    }

    pub(super) fn spawn_finish(self: &Arc<Self>, job: Job) {
        let this = self.clone();
        tokio::spawn(async move {
            let id = job.row.id;
            if let Err(e) = this.finish(job).await {
                tracing::warn!(workspace = id, "background workspace operation failed: {e}");
            }
        });
    }

    /// Provisions when needed, hands a workspace taken from the pool over to its owner, then
    /// starts. Persists each step. A pooled workspace of a runtime that does not start them
    /// ahead stops after provisioning (`stopped` is its ready state).
    pub(super) async fn bring_up(&self, job: &Job) -> Result<WorkspaceView, WorkspaceError> {
        let id = job.row.id;
        let failed = |why: String| async move {
            let row = self
                .set_state(id, WorkspaceState::Failed, Some(why))
                .await?;
            Ok::<_, WorkspaceError>((&row).into())
        };
        let state: Value = match job.row.runtime_state.as_deref().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => match self.runtime.provision(&job.spec).await {
                Ok(v) => {
                    self.save_runtime_state(id, &v).await?;
                    v
                }
                Err(e) => {
                    self.metrics.runtime_error("provision");
                    return failed(e.0).await;
                }
            },
        };
        if job.row.user_id == POOL_OWNER && !self.runtime.pool_starts_ides() {
            let row = self.set_state(id, WorkspaceState::Stopped, None).await?;
            return Ok((&row).into());
        }
        let state = match self.runtime.hand_over(&job.spec, &state).await {
            Ok(None) => state,
            Ok(Some(v)) => {
                self.save_runtime_state(id, &v).await?;
                v
            }
            Err(e) => {
                self.metrics.runtime_error("hand_over");
                return failed(format!("could not hand the workspace over: {}", e.0)).await;
            }
        };
        self.set_state(id, WorkspaceState::Starting, None).await?;
        let row = match self.runtime.start(&job.spec, &state).await {
            Ok(()) => {
                self.activity.touch(id);
                self.set_state(id, WorkspaceState::Running, None).await?
            }
            Err(e) => {
                self.metrics.runtime_error("start");
                // Leave nothing half-started behind.
                let _ = self.runtime.stop(&job.spec, &state).await;
                self.set_state(id, WorkspaceState::Failed, Some(e.0))
                    .await?
            }
        };
        Ok((&row).into())
    }

    async fn save_runtime_state(&self, id: i64, state: &Value) -> Result<(), WorkspaceError> {
        let row = workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let mut r: workspace::ActiveModel = row.into();
        r.runtime_state = Set(Some(state.to_string()));
        r.update(&self.db).await?;
        Ok(())
    }

    pub(super) async fn take_down(
        &self,
        job: &Job,
        state: &Value,
        reason: Option<String>,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let id = job.row.id;
        let row = match self.runtime.stop(&job.spec, state).await {
            Ok(()) => self.set_state(id, WorkspaceState::Stopped, reason).await?,
            Err(e) => {
                self.metrics.runtime_error("stop");
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
    pub(super) async fn prepare_owned(
        &self,
        by: &Actor,
        owner: &Account,
        id: i64,
        action: Action,
    ) -> Result<Prepared, WorkspaceError> {
        let row = match self.load(owner, id).await {
            Ok(row) => row,
            Err(e) => {
                // Someone else's workspace, or none: logged without naming anything.
                let subject = Subject {
                    user_id: Some(owner.id),
                    name: None,
                };
                record_refusal(&self.db, by, audit_action(action), &subject, &e).await;
                return Err(e);
            }
        };
        self.prepare(Some(by), row, action, None).await
    }

    /// Runs an action as the owner, from no known address (the CLI, tests), and waits.
    pub(super) async fn run(
        &self,
        owner: &Account,
        id: i64,
        action: Action,
    ) -> Result<WorkspaceView, WorkspaceError> {
        let by = Actor::user(owner, None);
        match self.prepare_owned(&by, owner, id, action).await? {
            Prepared::Done(v) => Ok(v),
            Prepared::Job(job) => self.finish(*job).await,
        }
    }

    /// Starts, stops, restarts or deletes in the background; returns the transitional state.
    pub async fn begin(
        self: &Arc<Self>,
        by: &Actor,
        owner: &Account,
        id: i64,
        action: Action,
    ) -> Result<WorkspaceView, WorkspaceError> {
        match self.prepare_owned(by, owner, id, action).await? {
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

    /// Deletes every workspace of a user (account deletion, by `by`).
    pub async fn delete_all(&self, by: &Actor, owner: &Account) -> Result<(), WorkspaceError> {
        for ws in self.list(owner).await? {
            match self.prepare_owned(by, owner, ws.id, Action::Delete).await? {
                Prepared::Done(_) => {}
                Prepared::Job(job) => {
                    self.finish(*job).await?;
                }
            }
        }
        Ok(())
    }
}
