//! Fixed-window attempt counters keyed by (what, who), e.g. ("login-ip", "10.0.0.1"), kept in
//! the database so that every replica counts against the same windows: a guesser gains
//! nothing by landing on another replica.
//!
//! Sign-in has its own entry points ([`RateLimiter::check_login`],
//! [`RateLimiter::remember_sign_in`]): an address gets its own share of an account's attempts,
//! and addresses that signed in to it before cannot be locked out by a crowd of others.

use crate::{
    config::Limit,
    store::{
        entity::{known_sign_in, rate_window},
        now_unix,
    },
};
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait,
};
use std::sync::atomic::{AtomicI64, Ordering};

/// All addresses together get this many times one address's sign-in attempts on an account.
/// High enough that the owner is not locked out by one guesser (who now only exhausts their
/// own address's share), low enough that a crowd of addresses still cannot guess freely.
const ACCOUNT_OVERALL_FACTOR: u32 = 10;
/// How long an address that signed in to an account stays exempt from that account's overall
/// limit: about as long as people go between sign-ins on a device they use.
pub const KNOWN_ADDRESS_SECS: i64 = 30 * 24 * 3600;
/// Windows and remembered addresses this far past their end are swept, at most this often.
const SWEEP_EVERY_SECS: i64 = 600;
/// A window is swept once it started this long ago (longer than any sensible limit's window;
/// sweeping a longer one early only resets it).
const WINDOW_KEEP_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug)]
pub struct RateLimiter {
    db: DatabaseConnection,
    last_sweep: AtomicI64,
}

/// Why an attempt is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Over the limit; the window resets in this many seconds (for `Retry-After`).
    Limited { retry_after_secs: u64 },
    /// The counters cannot be read: the attempt is not let through unchecked.
    Unavailable(String),
}

impl From<DbErr> for Refused {
    fn from(e: DbErr) -> Self {
        Refused::Unavailable(e.to_string())
    }
}

impl RateLimiter {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            last_sweep: AtomicI64::new(0),
        }
    }

    /// Counts one attempt; refuses it when the window already holds `limit.max`.
    pub async fn check(&self, bucket: &str, key: &str, limit: Limit) -> Result<(), Refused> {
        self.check_at(bucket, key, limit, now_unix()).await
    }

    /// Counts one sign-in attempt on `account` from `address`. One address gets `limit`
    /// attempts per window on an account, so a guesser locks out only themselves; all
    /// addresses together get [`ACCOUNT_OVERALL_FACTOR`] times that, except addresses that
    /// signed in to the account before, which a crowd of guessers cannot lock out.
    pub async fn check_login(
        &self,
        account: &str,
        address: &str,
        limit: Limit,
    ) -> Result<(), Refused> {
        self.check_login_at(account, address, limit, now_unix())
            .await
    }

    /// Records a successful sign-in, exempting `address` from `account`'s overall limit.
    pub async fn remember_sign_in(&self, account: &str, address: &str) -> Result<(), DbErr> {
        self.remember_sign_in_at(account, address, now_unix()).await
    }

    pub async fn check_login_at(
        &self,
        account: &str,
        address: &str,
        limit: Limit,
        now: i64,
    ) -> Result<(), Refused> {
        let pair = pair(account, address);
        self.check_at("login-account-address", &pair, limit, now)
            .await?;
        if self.is_known_at(&pair, now).await? {
            return Ok(());
        }
        let overall = Limit {
            max: limit.max.saturating_mul(ACCOUNT_OVERALL_FACTOR),
            ..limit
        };
        self.check_at("login-account", account, overall, now).await
    }

    pub async fn remember_sign_in_at(
        &self,
        account: &str,
        address: &str,
        now: i64,
    ) -> Result<(), DbErr> {
        let row = known_sign_in::ActiveModel {
            key: Set(pair(account, address)),
            until: Set(now + KNOWN_ADDRESS_SECS),
        };
        known_sign_in::Entity::insert(row)
            .on_conflict(
                OnConflict::column(known_sign_in::Column::Key)
                    .update_column(known_sign_in::Column::Until)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    async fn is_known_at(&self, pair: &str, now: i64) -> Result<bool, DbErr> {
        let row = known_sign_in::Entity::find_by_id(pair.to_string())
            .one(&self.db)
            .await?;
        Ok(row.is_some_and(|r| r.until > now))
    }

    /// One fixed window, counted in one transaction: create it if missing, then start it over
    /// (if it ended) or add one, then read it back. The update locks the row, so what is read
    /// back is this attempt's own count, whichever replica counted before.
    pub async fn check_at(
        &self,
        bucket: &str,
        key: &str,
        limit: Limit,
        now: i64,
    ) -> Result<(), Refused> {
        self.sweep(now).await;
        let id = window_key(bucket, key);
        let period = limit.per_seconds as i64;
        let txn = self.db.begin().await?;
        let fresh = rate_window::ActiveModel {
            key: Set(id.clone()),
            started_at: Set(now),
            count: Set(0),
        };
        match rate_window::Entity::insert(fresh)
            .on_conflict(
                // "Update the key to itself": the one way to say "keep the row" that every
                // backend's upsert accepts.
                OnConflict::column(rate_window::Column::Key)
                    .update_column(rate_window::Column::Key)
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
        {
            Ok(_) | Err(DbErr::RecordNotInserted) => {}
            Err(e) => return Err(e.into()),
        }
        let ended = Expr::col(rate_window::Column::StartedAt).lte(now - period);
        // `count` first: MySQL applies assignments in order, and `started_at` must still be
        // the old one when `count` is decided.
        rate_window::Entity::update_many()
            .col_expr(
                rate_window::Column::Count,
                Expr::case(ended.clone(), 1)
                    .finally(Expr::col(rate_window::Column::Count).add(1))
                    .into(),
            )
            .col_expr(
                rate_window::Column::StartedAt,
                Expr::case(ended, now)
                    .finally(Expr::col(rate_window::Column::StartedAt))
                    .into(),
            )
            .filter(rate_window::Column::Key.eq(id.clone()))
            .exec(&txn)
            .await?;
        let window = rate_window::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| Refused::Unavailable("rate window vanished".into()))?;
        txn.commit().await?;
        if window.count as i64 > limit.max as i64 {
            let left = window.started_at + period - now;
            return Err(Refused::Limited {
                retry_after_secs: left.max(1) as u64,
            });
        }
        Ok(())
    }

    /// Deletes windows and remembered addresses long past, at most every few minutes per
    /// replica. A failure is only logged: the rows are harmless, just kept longer.
    async fn sweep(&self, now: i64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_SECS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let windows = rate_window::Entity::delete_many()
            .filter(rate_window::Column::StartedAt.lt(now - WINDOW_KEEP_SECS))
            .exec(&self.db)
            .await;
        let known = known_sign_in::Entity::delete_many()
            .filter(known_sign_in::Column::Until.lt(now))
            .exec(&self.db)
            .await;
        if let Err(e) = windows.and(known) {
            tracing::warn!("rate-limit sweep failed: {e}");
        }
    }
}

/// An address never contains a newline, so a pair cannot collide with another. Keys are
/// capped to the column's length by hashing long ones (a user name or address is short; a
/// long key is someone probing).
fn pair(account: &str, address: &str) -> String {
    bounded(format!("{account}\n{address}"))
}

fn window_key(bucket: &str, key: &str) -> String {
    bounded(format!("{bucket}\n{key}"))
}

fn bounded(key: String) -> String {
    if key.len() <= 200 {
        return key;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!(
        "{}\n#{}",
        &key[..key.floor_char_boundary(100)],
        hex::encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_bounded_and_distinct() {
        let a = window_key("login-ip", &"a".repeat(500));
        let b = window_key("login-ip", &format!("{}b", "a".repeat(499)));
        assert!(a.len() <= 255 && b.len() <= 255);
        assert_ne!(a, b);
        assert_eq!(window_key("login-ip", "10.0.0.1"), "login-ip\n10.0.0.1");
        let wide = bounded("é".repeat(150));
        assert!(wide.len() <= 255);
    }
}
