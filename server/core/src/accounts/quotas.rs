//! Per-user quotas: an admin gives one account more (or less) room than the instance's
//! defaults: workspaces it may have, run at once, and memory per workspace.

use super::{Account, AccountError};
use crate::{
    audit::{self, Actor, Subject},
    store::entity::user,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, TransactionTrait,
};
use serde::{Deserialize, Serialize};

pub const MAX_WORKSPACES: u64 = 1000;
pub const MAX_RUNNING: u64 = 100;
pub const MEMORY_MB: std::ops::RangeInclusive<u64> = 128..=262_144;

/// An account's overrides; `None` keeps the instance's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub workspaces: Option<u64>,
    pub running: Option<u64>,
    pub memory_mb: Option<u64>,
}

impl Quota {
    pub fn of(u: &user::Model) -> Self {
        let n = |v: Option<i64>| v.map(|v| v.max(0) as u64);
        Self {
            workspaces: n(u.quota_workspaces),
            running: n(u.quota_running),
            memory_mb: n(u.quota_memory_mb),
        }
    }

    /// Refuses values out of range, naming the field.
    pub fn validate(&self) -> Result<(), AccountError> {
        let bad = |field, message: String| Err(AccountError::InvalidField { field, message });
        if self.workspaces.is_some_and(|w| w > MAX_WORKSPACES) {
            return bad(
                "workspaces",
                format!("At most {MAX_WORKSPACES} workspaces."),
            );
        }
        if self.running.is_some_and(|r| r > MAX_RUNNING) {
            return bad("running", format!("At most {MAX_RUNNING} running at once."));
        }
        if self.memory_mb.is_some_and(|m| !MEMORY_MB.contains(&m)) {
            return bad(
                "memory_mb",
                format!(
                    "Memory per workspace is {} to {} MiB.",
                    MEMORY_MB.start(),
                    MEMORY_MB.end()
                ),
            );
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let v = |o: Option<u64>| o.map_or("default".to_string(), |v| v.to_string());
        format!(
            "workspaces={} running={} memory_mb={}",
            v(self.workspaces),
            v(self.running),
            v(self.memory_mb)
        )
    }
}

pub async fn quota_of(db: &DatabaseConnection, user_id: i64) -> Result<Quota, AccountError> {
    let row = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(format!("#{user_id}")))?;
    Ok(Quota::of(&row))
}

/// Sets an account's quota (an admin's decision), with its audit entry.
pub async fn set_quota(
    db: &DatabaseConnection,
    by: &Actor,
    user_id: i64,
    quota: Quota,
) -> Result<Account, AccountError> {
    quota.validate()?;
    let txn = db.begin().await?;
    let row = user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(format!("#{user_id}")))?;
    let account = Account::from(row.clone());
    let mut active: user::ActiveModel = row.into();
    let i = |v: Option<u64>| v.map(|v| v as i64);
    active.quota_workspaces = Set(i(quota.workspaces));
    active.quota_running = Set(i(quota.running));
    active.quota_memory_mb = Set(i(quota.memory_mb));
    active.update(&txn).await?;
    audit::record(
        &txn,
        by,
        audit::Action::QuotaChange,
        &Subject::user(&account),
        audit::Outcome::Ok,
        Some(&quota.describe()),
    )
    .await?;
    txn.commit().await?;
    Ok(account)
}
