//! The warm pool: IDEs started ahead, per template, so that creating a workspace can hand
//! over one that already answers instead of starting one (`workspaces.pool`).
//!
//! A pooled IDE is an ordinary workspace row owned by nobody ([`POOL_OWNER`], a user id no
//! account has) with a generated name: it is provisioned, started, supervised, adopted after
//! a restart and cleaned up like any other, is invisible to every user and to the gateway
//! (no user name leads to it), and carries no user identity. A create takes one over in the
//! transaction that checks the user's limits, by moving the row to the user (`take_pooled`).
//!
//! Pooled IDEs count against the host-wide cap (`max_running`) and give way to users: a start
//! that finds the host full retires one (`evict_pooled`), and the pool is refilled by the
//! leading replica one IDE at a time, never while a user's workspace is starting.
//!
//! A runtime that cannot give a running IDE its owner afterwards (Function Compute: identity,
//! files and address are the function's configuration) pools workspaces provisioned but not
//! started (`Runtime::pool_starts_ides`): ready means `stopped`, and a create that takes one
//! starts it, handing it over to its owner first (`Runtime::hand_over`).

use super::lifecycle::Job;
use super::*;
use rand::Rng;
use sea_orm::{sea_query::Expr, Condition, DatabaseTransaction};

/// The owner of pooled IDEs: no account has this id (ids start at 1).
pub const POOL_OWNER: i64 = 0;

/// How often the pool is looked at when nothing wakes it.
const TICK: Duration = Duration::from_secs(2);
/// The pause after each refill, so that a whole pool coming up never hogs the host.
const PACE: Duration = Duration::from_millis(300);
/// The first wait after a pooled IDE failed to start; doubled up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a pooled IDE whose removal failed is left before the next try.
const REMOVAL_RETRY: Duration = Duration::from_secs(60);

/// The pool's targets and what the refill loop remembers.
#[derive(Debug, Default)]
pub(super) struct Pool {
    /// (template, IDEs to keep ready), as configured.
    sizes: Vec<(String, u32)>,
    wake: Arc<tokio::sync::Notify>,
    /// Per template, after a failed start: not before this, and the next wait.
    backoff: Mutex<HashMap<String, (Instant, Duration)>>,
    /// Pooled IDEs whose removal failed, and when.
    removal_failed: Mutex<HashMap<i64, Instant>>,
}

/// How one template's pool stands (for `/healthz` and the logs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolStatus {
    pub template: String,
    pub target: u32,
    /// Free to take: running (local), or created and waiting (Function Compute).
    pub ready: u32,
    /// Being created or started.
    pub starting: u32,
}

/// What a create took from the pool.
pub(super) enum Taken {
    /// Running already: the create is done.
    Running(workspace::Model),
    /// Provisioned ahead, now `starting` and claimed: the create starts it.
    ToStart(workspace::Model, Claim),
}

/// What one look at the pool did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolStep {
    /// A pooled IDE was started (or failed to), or a broken one removed.
    Worked,
    /// Every template's pool is full, or cannot be filled now (host full, users starting,
    /// backing off after failures).
    Idle,
}

impl WorkspaceService {
    /// Keeps `sizes` workspaces prepared ahead per template (`Config::pool_sizes`). Refuses a
    /// template it does not know.
    pub fn with_pool(mut self, sizes: Vec<(String, u32)>) -> Result<Self, String> {
        if let Some((t, _)) = sizes
            .iter()
            .find(|(t, _)| !self.templates.iter().any(|x| &x.id == t))
        {
            return Err(format!(
                "workspaces.pool names {t:?}, which is not a template"
            ));
        }
        self.pool.sizes = sizes;
        Ok(self)
    }

    fn pool_target(&self, template_id: &str) -> u32 {
        self.pool
            .sizes
            .iter()
            .find(|(t, _)| t == template_id)
            .map_or(0, |(_, n)| *n)
    }

    /// What a pooled workspace ready to be taken is: running, or only provisioned.
    fn pool_ready_state(&self) -> WorkspaceState {
        if self.runtime.pool_starts_ides() {
            WorkspaceState::Running
        } else {
            WorkspaceState::Stopped
        }
    }

    /// Moves a ready pooled workspace of `template_id` to `owner` as `name`, in `txn` (which
    /// holds the owner's limits lock); one that still has to start turns `starting`, claimed
    /// for the start. None when the template has no pool or none is ready.
    pub(super) async fn take_pooled(
        &self,
        txn: &DatabaseTransaction,
        owner: &Account,
        name: &str,
        template_id: &str,
    ) -> Result<Option<Taken>, WorkspaceError> {
        if self.pool_target(template_id) == 0 {
            return Ok(None);
        }
        let ready = self.pool_ready_state();
        let to_start = ready != WorkspaceState::Running;
        // Another replica may take the same row between the read and the write: the write is
        // conditional, and the next candidate is tried.
        for _ in 0..3 {
            let now = now_unix();
            let Some(row) = ready_pooled(template_id, ready, now).one(txn).await? else {
                return Ok(None);
            };
            // One that still has to start is claimed as it is taken, like a new row: never a
            // moment when it looks abandoned.
            let claim = match to_start {
                true => match self.hold_locally(row.id, self.claim_token()) {
                    Ok(c) => Some(c),
                    Err(_) => return Ok(None),
                },
                false if self.is_claimed(row.id) => return Ok(None),
                false => None,
            };
            let mut take = workspace::Entity::update_many()
                .col_expr(workspace::Column::UserId, Expr::value(owner.id))
                .col_expr(workspace::Column::Name, Expr::value(name))
                .col_expr(workspace::Column::Reason, Expr::value(None::<String>))
                .col_expr(workspace::Column::UpdatedAt, Expr::value(now));
            if let Some(claim) = &claim {
                take = take
                    .col_expr(
                        workspace::Column::State,
                        Expr::value(WorkspaceState::Starting.as_str()),
                    )
                    .col_expr(workspace::Column::ClaimedBy, Expr::value(claim.token()))
                    .col_expr(
                        workspace::Column::ClaimExpires,
                        Expr::value(now + claims::CLAIM_SECS),
                    );
            }
            let taken = take
                .filter(workspace::Column::Id.eq(row.id))
                .filter(workspace::Column::UserId.eq(POOL_OWNER))
                .filter(workspace::Column::State.eq(ready.as_str()))
                .filter(unclaimed(now))
                .exec(txn)
                .await;
            match taken {
                Ok(r) if r.rows_affected == 1 => {
                    let row = workspace::Entity::find_by_id(row.id)
                        .one(txn)
                        .await?
                        .ok_or(WorkspaceError::NotFound)?;
                    return Ok(Some(match claim {
                        None => Taken::Running(row),
                        Some(claim) => Taken::ToStart(row, claim),
                    }));
                }
                Ok(_) => continue,
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    return Err(WorkspaceError::NameTaken)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Retires one ready pooled IDE to make room on a full host, in `txn`: its row turns
    /// `deleting`, unclaimed, so it no longer counts, and the pool's loop (or, on another
    /// replica, the leader's sweep of abandoned operations) removes it within seconds. False
    /// when there is none to retire.
    pub(super) async fn evict_pooled(
        &self,
        txn: &DatabaseTransaction,
    ) -> Result<bool, WorkspaceError> {
        // Pooled workspaces that are not started take no room.
        if self.pool.sizes.is_empty() || !self.runtime.pool_starts_ides() {
            return Ok(false);
        }
        let now = now_unix();
        // A create on another replica may take a candidate first (it needs no host lock):
        // the write is conditional, and the next candidate is tried.
        let candidates = workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(POOL_OWNER))
            .filter(workspace::Column::State.eq(WorkspaceState::Running.as_str()))
            .filter(unclaimed(now))
            .order_by_desc(workspace::Column::Id)
            .limit(8)
            .all(txn)
            .await?;
        for row in candidates {
            let evicted = workspace::Entity::update_many()
                .col_expr(
                    workspace::Column::State,
                    Expr::value(WorkspaceState::Deleting.as_str()),
                )
                .col_expr(
                    workspace::Column::Reason,
                    Expr::value(Some("retired to make room for a user's workspace")),
                )
                .col_expr(workspace::Column::ClaimedBy, Expr::value(None::<String>))
                .col_expr(workspace::Column::ClaimExpires, Expr::value(None::<i64>))
                .col_expr(workspace::Column::UpdatedAt, Expr::value(now))
                .filter(workspace::Column::Id.eq(row.id))
                .filter(workspace::Column::UserId.eq(POOL_OWNER))
                .filter(workspace::Column::State.eq(WorkspaceState::Running.as_str()))
                .filter(unclaimed(now))
                .exec(txn)
                .await?;
            if evicted.rows_affected == 1 {
                tracing::info!(
                    workspace = row.id,
                    "retiring a pooled IDE: the host is full"
                );
                self.pool.wake.notify_one();
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Called after a create took a pooled IDE: the pool refills.
    pub(super) fn pooled_taken(&self) {
        self.pool.wake.notify_one();
    }

    /// How each template's pool stands.
    pub async fn pool_status(&self) -> Result<Vec<PoolStatus>, WorkspaceError> {
        if self.pool.sizes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.pool_rows().await?;
        let ready = self.pool_ready_state();
        Ok(self
            .pool
            .sizes
            .iter()
            .map(|(template, target)| {
                let of = |pred: &dyn Fn(WorkspaceState) -> bool| {
                    rows.iter()
                        .filter(|r| &r.template_id == template && pred(state_of(r)))
                        .count() as u32
                };
                PoolStatus {
                    template: template.clone(),
                    target: *target,
                    ready: of(&|s| s == ready),
                    starting: of(&|s| {
                        matches!(s, WorkspaceState::Creating | WorkspaceState::Starting)
                    }),
                }
            })
            .collect())
    }

    async fn pool_rows(&self) -> Result<Vec<workspace::Model>, WorkspaceError> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::UserId.eq(POOL_OWNER))
            .order_by_asc(workspace::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// One look at the pool: removes one broken pooled IDE, or starts one where a template
    /// has fewer than its target (and waits for it), or does nothing. The refill loop calls
    /// this; tests call it directly.
    pub async fn tend_pool(&self) -> Result<PoolStep, WorkspaceError> {
        let rows = self.pool_rows().await?;
        let now = now_unix();
        // More running than the cap allows (it was lowered under a full pool): pooled IDEs go
        // first. Only pooled IDEs that run take room.
        let over_cap = self.runtime.pool_starts_ides()
            && self.max_running != u64::MAX
            && self.active_on_host(&self.db).await? > self.max_running;
        let ready = self.pool_ready_state();
        // Failed ones, and stopped or running ones where the other is ready, are of no use;
        // retired ones (`deleting`, unclaimed) are waiting for this; a template no longer
        // pooled keeps none.
        let retire = rows.iter().find(|r| {
            let st = state_of(r);
            let lapsed = r.claim_expires.is_none_or(|t| t < now);
            let settled = matches!(st, WorkspaceState::Stopped | WorkspaceState::Running);
            !self.removal_failed_lately(r.id)
                && (st == WorkspaceState::Failed
                    || (settled && st != ready)
                    || (st == WorkspaceState::Deleting && lapsed)
                    || (st == ready && (over_cap || self.pool_target(&r.template_id) == 0)))
        });
        if let Some(row) = retire {
            self.remove_pooled(row.clone()).await;
            return Ok(PoolStep::Worked);
        }
        // IDEs starting here compete for the host's CPU; functions created ahead do not.
        if self.runtime.pool_starts_ides() && self.users_starting().await? {
            return Ok(PoolStep::Idle);
        }
        // People waiting for room come before IDEs for people who might come.
        let queued = workspace::Entity::find()
            .filter(workspace::Column::State.eq(WorkspaceState::Queued.as_str()))
            .one(&self.db)
            .await?
            .is_some();
        if queued {
            return Ok(PoolStep::Idle);
        }
        for (template, target) in &self.pool.sizes {
            let kept = rows
                .iter()
                .filter(|r| {
                    &r.template_id == template && {
                        let st = state_of(r);
                        st == ready || st.is_active()
                    }
                })
                .count() as u32;
            if kept >= *target || self.backing_off(template) {
                continue;
            }
            let job = match self.prepare_pooled(template).await {
                Ok(job) => job,
                // The host is full: users come first.
                Err(WorkspaceError::LimitReached(_) | WorkspaceError::HostFull(_)) => {
                    return Ok(PoolStep::Idle)
                }
                Err(WorkspaceError::EditorMissing(_)) => {
                    self.back_off(template, "its editor is not installed");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let view = self.finish(job).await?;
            match view.state {
                st if st == ready => {
                    self.pool
                        .backoff
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(template);
                }
                _ => self.back_off(
                    template,
                    view.reason.as_deref().unwrap_or("it did not start"),
                ),
            }
            return Ok(PoolStep::Worked);
        }
        Ok(PoolStep::Idle)
    }

    /// Removes a pooled IDE, if it is still the pool's once claimed (a create may have taken
    /// it since the caller looked). A removal that fails is logged and not tried again for a
    /// minute, so one broken IDE never holds up the rest of the pool.
    async fn remove_pooled(&self, row: workspace::Model) {
        let id = row.id;
        let failed = |why: &dyn std::fmt::Display| {
            tracing::warn!(workspace = id, "cannot remove a pooled IDE: {why}");
            self.pool
                .removal_failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, Instant::now());
        };
        let claim = match self.claim(id).await {
            Ok(c) => c,
            Err(e) => return failed(&e),
        };
        let still_pooled = workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .ok()
            .flatten()
            .is_some_and(|now| now.user_id == POOL_OWNER);
        if !still_pooled {
            claim.release().await;
            return;
        }
        let outcome = match self
            .prepare_claimed(None, claim, row, Action::Delete, None)
            .await
        {
            Ok(Prepared::Job(job)) => self.finish(*job).await.map(|_| ()),
            Ok(Prepared::Done(_)) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            failed(&e);
        }
    }

    fn removal_failed_lately(&self, id: i64) -> bool {
        let failed = self
            .pool
            .removal_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        failed
            .get(&id)
            .is_some_and(|at| at.elapsed() < REMOVAL_RETRY)
    }

    /// Tends the pool until there is nothing left to do (tests, and the bench's warm-up).
    pub async fn fill_pool(&self) -> Result<(), WorkspaceError> {
        while self.tend_pool().await? == PoolStep::Worked {}
        Ok(())
    }

    /// Whether a user's workspace is being created or started (on any replica).
    async fn users_starting(&self) -> Result<bool, WorkspaceError> {
        let n = workspace::Entity::find()
            .filter(workspace::Column::UserId.ne(POOL_OWNER))
            .filter(workspace::Column::State.is_in([
                WorkspaceState::Creating.as_str(),
                WorkspaceState::Starting.as_str(),
            ]))
            .count(&self.db)
            .await?;
        Ok(n > 0)
    }

    fn backing_off(&self, template: &str) -> bool {
        let backoff = self.pool.backoff.lock().unwrap_or_else(|e| e.into_inner());
        backoff
            .get(template)
            .is_some_and(|(until, _)| Instant::now() < *until)
    }

    fn back_off(&self, template: &str, why: &str) {
        let mut backoff = self.pool.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let wait = backoff
            .get(template)
            .map_or(FIRST_BACKOFF, |(_, w)| (*w * 2).min(MAX_BACKOFF));
        backoff.insert(template.to_string(), (Instant::now() + wait, wait));
        tracing::warn!(
            template,
            retry_in_secs = wait.as_secs(),
            "a pooled IDE could not be started: {why}"
        );
    }

    /// Records a new pooled IDE (`creating`), claimed for its bring-up, if the host has room.
    async fn prepare_pooled(&self, template_id: &str) -> Result<Job, WorkspaceError> {
        self.check_template(template_id)?;
        let txn = self.limits_txn(POOL_OWNER).await?;
        let host = match self.runtime.pool_starts_ides() {
            // One slot stays free for users: a pooled IDE still starting cannot make way for
            // them.
            true => self.take_host_slot(&txn, false, 1).await?,
            // A function created ahead takes no room on the host.
            false => self.host_lock.clone().lock_owned().await,
        };
        let name = format!("pool-{:08x}", rand::thread_rng().gen::<u32>());
        self.insert_creating(txn, host, POOL_OWNER, &name, template_id)
            .await
    }

    /// On the leading replica, keeps the pool filled until the service is dropped (and,
    /// without a pool, removes what an earlier configuration's pool left).
    pub(super) fn run_pool(self: &Arc<Self>, leads: crate::replicas::lease::Leadership) {
        if !self.pool.sizes.is_empty() {
            tracing::info!(pool = ?self.pool.sizes, "keeping workspaces prepared ahead");
        }
        let wake = self.pool.wake.clone();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let step = match weak.upgrade() {
                    None => return,
                    Some(_) if !*leads.borrow() => PoolStep::Idle,
                    Some(this) => this.tend_pool().await.unwrap_or_else(|e| {
                        tracing::warn!("tending the pool failed: {e}");
                        PoolStep::Idle
                    }),
                };
                match step {
                    PoolStep::Worked => tokio::time::sleep(PACE).await,
                    PoolStep::Idle => {
                        let _ = tokio::time::timeout(TICK, wake.notified()).await;
                    }
                }
            }
        });
    }
}

/// The oldest pooled workspace of a template that is ready (in state `ready`).
fn ready_pooled(
    template_id: &str,
    ready: WorkspaceState,
    now: i64,
) -> sea_orm::Select<workspace::Entity> {
    workspace::Entity::find()
        .filter(workspace::Column::UserId.eq(POOL_OWNER))
        .filter(workspace::Column::TemplateId.eq(template_id))
        .filter(workspace::Column::State.eq(ready.as_str()))
        .filter(unclaimed(now))
        .order_by_asc(workspace::Column::Id)
}

fn unclaimed(now: i64) -> Condition {
    Condition::any()
        .add(workspace::Column::ClaimedBy.is_null())
        .add(workspace::Column::ClaimExpires.lt(now))
}
