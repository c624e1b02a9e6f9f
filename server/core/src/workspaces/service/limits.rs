//! The workspace limits: how many a user may have, how many may run per user and on the host.
//! A check and the write it allows happen in one transaction that first takes the user's row
//! lock (and, for a host-wide cap, the `workspace-limits` row's), so two requests, on this
//! replica or on two, cannot both pass a check only one of them should. In-process mutexes go
//! first, so requests of one process queue there instead of holding connections.

use super::*;
use crate::accounts::Quota;
use crate::store::entity::{lease, user};
use sea_orm::{
    sea_query::Expr, DatabaseBackend, DatabaseTransaction, DbErr, IsolationLevel, TransactionTrait,
};

/// The answer to "may one more run on this host?".
pub(super) enum Slot {
    /// Yes: hold the guard until the transaction that writes the new state ends.
    Free(tokio::sync::OwnedMutexGuard<()>),
    /// No, and why (the cap).
    Full(String),
}

/// The row whose lock serializes host-wide checks across replicas (made by migration m0006).
pub(super) const HOST_LOCK_ROW: &str = "workspace-limits";

impl WorkspaceService {
    /// A transaction holding `user_id`'s row lock: every replica's limit check for that user
    /// waits until it ends. The lock is taken by a write, so that SQLite takes its write lock
    /// at once too (a read first could not be upgraded if another connection wrote meanwhile).
    pub(super) async fn limits_txn(&self, user_id: i64) -> Result<DatabaseTransaction, DbErr> {
        // Each count must see what committed while this waited for a lock: MySQL's default
        // (repeatable read) would answer from the snapshot of the transaction's first read.
        let isolation = match self.db.get_database_backend() {
            DatabaseBackend::Sqlite => None,
            _ => Some(IsolationLevel::ReadCommitted),
        };
        let txn = self.db.begin_with_config(isolation, None).await?;
        user::Entity::update_many()
            .col_expr(
                user::Column::CreatedAt,
                Expr::col(user::Column::CreatedAt).into(),
            )
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        Ok(txn)
    }

    pub(super) async fn count(
        &self,
        c: &impl ConnectionTrait,
        user_id: i64,
        active_only: bool,
    ) -> Result<u64, WorkspaceError> {
        let mut q = workspace::Entity::find().filter(workspace::Column::UserId.eq(user_id));
        if active_only {
            q = q.filter(workspace::Column::State.is_in(states(WorkspaceState::is_active)));
        }
        Ok(q.count(c).await?)
    }

    /// The user's quota (an admin's override, or nothing).
    async fn quota(&self, c: &impl ConnectionTrait, user_id: i64) -> Result<Quota, DbErr> {
        Ok(user::Entity::find_by_id(user_id)
            .one(c)
            .await?
            .map(|u| Quota::of(&u))
            .unwrap_or_default())
    }

    /// Refuses one more workspace beyond the user's limit.
    pub(super) async fn check_workspace_limit(
        &self,
        txn: &DatabaseTransaction,
        user_id: i64,
    ) -> Result<(), WorkspaceError> {
        let (max, whose) = match self.quota(txn, user_id).await?.workspaces {
            Some(q) => (q, "your quota"),
            None => (self.limits.max_per_user, "workspaces.max_per_user"),
        };
        if self.count(txn, user_id, false).await? >= max {
            return Err(WorkspaceError::LimitReached(format!(
                "You can have at most {max} workspaces ({whose}). Delete one first."
            )));
        }
        Ok(())
    }

    /// Refuses a start beyond the user's or the host's running limit. Hold the returned
    /// guard, and write the new state in `txn`, before either is let go.
    pub(super) async fn check_running_limit(
        &self,
        txn: &DatabaseTransaction,
        user_id: i64,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, WorkspaceError> {
        self.check_user_running_limit(txn, user_id).await?;
        // Users may push pooled IDEs out; the pool never pushes out its own.
        self.take_host_slot(txn, user_id != POOL_OWNER, 0).await
    }

    /// Refuses one more running workspace beyond the user's own limit.
    pub(super) async fn check_user_running_limit(
        &self,
        txn: &DatabaseTransaction,
        user_id: i64,
    ) -> Result<(), WorkspaceError> {
        // The pool's size is its limit (`tend_pool`).
        if user_id == POOL_OWNER {
            return Ok(());
        }
        let (max, whose) = match self.quota(txn, user_id).await?.running {
            Some(q) => (q, "your quota"),
            None => (
                self.limits.max_running_per_user,
                "workspaces.max_running_per_user",
            ),
        };
        if self.count(txn, user_id, true).await? >= max {
            return Err(WorkspaceError::LimitReached(format!(
                "You can run at most {max} workspaces at once ({whose}). Stop one first."
            )));
        }
        Ok(())
    }

    /// How many workspaces take room under `max_running`: those running or on their way up,
    /// except pooled ones that never run here (functions created ahead).
    pub(super) async fn active_on_host(&self, c: &impl ConnectionTrait) -> Result<u64, DbErr> {
        let mut q = workspace::Entity::find()
            .filter(workspace::Column::State.is_in(states(WorkspaceState::takes_host_room)));
        if !self.runtime.pool_starts_ides() {
            q = q.filter(workspace::Column::UserId.ne(POOL_OWNER));
        }
        q.count(c).await
    }

    /// Refuses one more running workspace unless the host then still has `spare` slots free
    /// (the pool keeps one for users); with `may_evict`, pooled IDEs are retired to make the
    /// room (more than one when the cap was lowered under a full pool). Hold the returned
    /// guard until `txn` ends.
    pub(super) async fn take_host_slot(
        &self,
        txn: &DatabaseTransaction,
        may_evict: bool,
        spare: u64,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, WorkspaceError> {
        let host = self.host_lock.clone().lock_owned().await;
        if self.max_running == u64::MAX {
            return Ok(host);
        }
        lease::Entity::update_many()
            .col_expr(
                lease::Column::ExpiresAt,
                Expr::col(lease::Column::ExpiresAt).into(),
            )
            .filter(lease::Column::Name.eq(HOST_LOCK_ROW))
            .exec(txn)
            .await?;
        let mut running = self.active_on_host(txn).await?;
        while may_evict && running + spare >= self.max_running && self.evict_pooled(txn).await? {
            running -= 1;
        }
        if running + spare >= self.max_running {
            let max = self.max_running;
            return Err(WorkspaceError::HostFull(format!(
                "This server is at its limit of {max} running workspaces \
                 (workspaces.max_running = {max})."
            )));
        }
        Ok(host)
    }

    /// A host slot, or word that the host is full (a user's request then waits in line).
    pub(super) async fn host_slot(
        &self,
        txn: &DatabaseTransaction,
    ) -> Result<Slot, WorkspaceError> {
        match self.take_host_slot(txn, true, 0).await {
            Ok(g) => Ok(Slot::Free(g)),
            Err(WorkspaceError::HostFull(why)) => Ok(Slot::Full(why)),
            Err(e) => Err(e),
        }
    }
}
