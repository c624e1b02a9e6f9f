//! Who is carrying out an operation on a workspace: this process (`in_flight`, so two clicks
//! on Start run once) and, on the workspace's row, which replica (so two replicas never work
//! on one workspace at once, and the leader can tell an operation whose replica died from one
//! still under way). A row's claim names the replica and the claim
//! (`<replica>#<n>`), lapses unless renewed, and is cleared when the operation ends.

use super::*;
use sea_orm::{sea_query::Expr, Condition, DbErr};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a request that found a workspace claimed waits for.
enum Holder {
    /// Nobody any more: claim it.
    Gone,
    /// The outcome is written; only the audit entry and the release are left.
    Settling,
    /// Still under way: the request is refused.
    Working,
}

/// How long a person's request waits for an operation that has written its outcome to give
/// up its claim, rather than being told the workspace is busy.
const SETTLING: Duration = Duration::from_secs(2);

/// A claim lapses this long after its last renewal.
pub(super) const CLAIM_SECS: i64 = 10;
/// How often a held claim is renewed.
const RENEW: Duration = Duration::from_secs(3);

static NEXT_CLAIM: AtomicU64 = AtomicU64::new(1);

/// Holds a workspace's claim until dropped.
pub(super) struct Claim {
    set: Arc<Mutex<HashMap<i64, bool>>>,
    id: i64,
    db: DatabaseConnection,
    token: String,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl Claim {
    /// What the row's `claimed_by` says while this is held.
    pub(super) fn token(&self) -> String {
        self.token.clone()
    }

    /// Gives the claim up now (the row's mark is cleared before this returns).
    pub(super) async fn release(mut self) {
        self.let_go();
        let token = std::mem::take(&mut self.token);
        if let Err(e) = clear(&self.db, self.id, token).await {
            tracing::warn!(
                workspace = self.id,
                "cannot release the claim (it lapses): {e}"
            );
        }
    }

    fn let_go(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        if let Some(renew) = self.renew.take() {
            renew.abort();
        }
    }
}

/// Clears the row's mark if it is still `token`'s: a later claim carries another token.
async fn clear(db: &DatabaseConnection, id: i64, token: String) -> Result<(), DbErr> {
    workspace::Entity::update_many()
        .col_expr(workspace::Column::ClaimedBy, Expr::value(None::<String>))
        .col_expr(workspace::Column::ClaimExpires, Expr::value(None::<i64>))
        .filter(workspace::Column::Id.eq(id))
        .filter(workspace::Column::ClaimedBy.eq(token))
        .exec(db)
        .await?;
    Ok(())
}

/// A claim dropped without `release` (an error path) is released in the background.
impl Drop for Claim {
    fn drop(&mut self) {
        self.let_go();
        if self.token.is_empty() {
            return;
        }
        let (db, id, token) = (self.db.clone(), self.id, std::mem::take(&mut self.token));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = clear(&db, id, token).await {
                    tracing::warn!(workspace = id, "cannot release the claim (it lapses): {e}");
                }
            });
        }
    }
}

impl WorkspaceService {
    /// A new claim token of this replica.
    pub(super) fn claim_token(&self) -> String {
        let n = NEXT_CLAIM.fetch_add(1, Ordering::Relaxed);
        format!("{}#{n}", self.replica)
    }

    /// Claims workspace `id`: refused while this process or another live replica works on
    /// it. A claim of this replica that no operation here holds is left over from before a
    /// restart, and is taken over.
    pub(super) async fn claim(&self, id: i64) -> Result<Claim, WorkspaceError> {
        let token = self.claim_token();
        let mut claim = self.hold_locally(id, token.clone())?;
        let now = now_unix();
        let taken = workspace::Entity::update_many()
            .col_expr(workspace::Column::ClaimedBy, Expr::value(token))
            .col_expr(
                workspace::Column::ClaimExpires,
                Expr::value(now + CLAIM_SECS),
            )
            .filter(workspace::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(workspace::Column::ClaimedBy.is_null())
                    .add(workspace::Column::ClaimExpires.lt(now))
                    .add(workspace::Column::ClaimedBy.like(format!("{}#%", self.replica))),
            )
            .exec(&self.db)
            .await?;
        if taken.rows_affected == 0 {
            // Never written to the row: nothing there to clear.
            claim.token.clear();
            workspace::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or(WorkspaceError::NotFound)?;
            return Err(WorkspaceError::Busy("being changed on another server"));
        }
        Ok(self.renewing(claim))
    }

    /// `claim` for a person's request. The state it shows is written before the operation
    /// gives its claim up, so whoever saw it settle (a person, a script polling the API) and
    /// acts at once would be told "busy": such a request waits, up to `SETTLING`, for the
    /// claim instead. One that comes while the operation is still under way is refused.
    pub(super) async fn claim_after_settling(&self, id: i64) -> Result<Claim, WorkspaceError> {
        let give_up = Instant::now() + SETTLING;
        loop {
            let busy = match self.claim(id).await {
                Err(e @ WorkspaceError::Busy(_)) => e,
                other => return other,
            };
            // Watched, not contended for: the holder needs the row (and on SQLite the
            // database's one writer) to finish.
            loop {
                if Instant::now() >= give_up {
                    return Err(busy);
                }
                match self.holder(id).await? {
                    Holder::Gone => break,
                    Holder::Settling => tokio::time::sleep(Duration::from_millis(20)).await,
                    Holder::Working => return Err(busy),
                }
            }
        }
    }

    /// What holds `id`'s claim, as far as a waiting request is concerned.
    async fn holder(&self, id: i64) -> Result<Holder, WorkspaceError> {
        let here = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied();
        match here {
            Some(true) => return Ok(Holder::Settling),
            Some(false) => return Ok(Holder::Working),
            None => {}
        }
        let row = workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let free = match (&row.claimed_by, row.claim_expires) {
            (None, _) => true,
            (Some(_), Some(until)) if until < now_unix() => true,
            // This replica's, left over from before a restart: `claim` takes it over.
            (Some(by), _) => by.starts_with(&format!("{}#", self.replica)),
        };
        Ok(match free {
            true => Holder::Gone,
            // Another replica's: its row tells whether the outcome is written.
            false if state_of(&row).is_transitional() => Holder::Working,
            false => Holder::Settling,
        })
    }

    /// Records whether the operation this process runs on `id` has written its outcome.
    pub(super) fn mark_settled(&self, id: i64, settled: bool) {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = set.get_mut(&id) {
            *s = settled;
        }
    }

    /// The in-process half of a claim; `token` is already on the row or about to be.
    pub(super) fn hold_locally(&self, id: i64, token: String) -> Result<Claim, WorkspaceError> {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if set.contains_key(&id) {
            return Err(WorkspaceError::Busy("already changing state"));
        }
        set.insert(id, false);
        Ok(Claim {
            set: self.in_flight.clone(),
            id,
            db: self.db.clone(),
            token,
            renew: None,
        })
    }

    /// Keeps the row's claim from lapsing while `claim` is held.
    pub(super) fn renewing(&self, mut claim: Claim) -> Claim {
        let (db, id, token) = (self.db.clone(), claim.id, claim.token.clone());
        claim.renew = Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(RENEW);
            every.tick().await;
            loop {
                every.tick().await;
                let renewed = workspace::Entity::update_many()
                    .col_expr(
                        workspace::Column::ClaimExpires,
                        Expr::value(now_unix() + CLAIM_SECS),
                    )
                    .filter(workspace::Column::Id.eq(id))
                    .filter(workspace::Column::ClaimedBy.eq(token.as_str()))
                    .exec(&db)
                    .await;
                match renewed {
                    Ok(r) if r.rows_affected == 0 => {
                        // Only after it lapsed (a database outage longer than the claim) can
                        // the leader have taken it over.
                        tracing::error!(
                            workspace = id,
                            "this replica's claim was taken over while its operation ran"
                        );
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(workspace = id, "cannot renew the claim: {e}"),
                }
            }
        }));
        claim
    }

    pub(super) fn is_claimed(&self, id: i64) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
    }
}
