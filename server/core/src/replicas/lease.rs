//! A lease row per kind of singleton work: the replica that holds `background` runs recovery,
//! finishes operations whose replica died, and stops idle workspaces. It renews the lease
//! every [`RENEW`]; when it stops renewing (it died, or lost the database), another replica
//! takes the lease once it expires, within [`TTL`].

use crate::store::{entity::lease, now_unix};
use sea_orm::{
    sea_query::Expr, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, SqlErr,
};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a lease holds without renewal.
pub const TTL: Duration = Duration::from_secs(6);
/// How often the holder renews it (and the others try to take it).
pub const RENEW: Duration = Duration::from_secs(2);

/// The lease of the background work.
pub const BACKGROUND: &str = "background";

/// Takes or renews lease `name` for `holder` until `now + ttl` when it is free, lapsed, or
/// already `holder`'s. True when `holder` holds it now.
pub async fn try_acquire(
    db: &DatabaseConnection,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, DbErr> {
    let now = now_unix();
    let until = now + ttl.as_secs() as i64;
    // One conditional UPDATE: the database decides between replicas racing for it.
    let taken = lease::Entity::update_many()
        .col_expr(lease::Column::Holder, Expr::value(holder))
        .col_expr(lease::Column::ExpiresAt, Expr::value(until))
        .filter(lease::Column::Name.eq(name))
        .filter(
            lease::Column::Holder
                .eq(holder)
                .or(lease::Column::ExpiresAt.lt(now)),
        )
        .exec(db)
        .await?;
    if taken.rows_affected == 1 {
        return Ok(true);
    }
    let row = lease::ActiveModel {
        name: Set(name.to_string()),
        holder: Set(holder.to_string()),
        expires_at: Set(until),
    };
    match lease::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(true),
        // The row exists and someone else holds it.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives lease `name` up if `holder` has it (on shutdown), so another replica need not wait.
pub async fn release(db: &DatabaseConnection, name: &str, holder: &str) -> Result<(), DbErr> {
    lease::Entity::delete_many()
        .filter(lease::Column::Name.eq(name))
        .filter(lease::Column::Holder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether this replica leads, kept current by [`hold`].
pub type Leadership = watch::Receiver<bool>;

/// Keeps trying to take lease `name` and renewing it while held, for as long as the returned
/// receiver (or a clone) lives. The first attempt is made before returning, so a lone
/// replica leads from its first moment.
pub async fn hold(db: DatabaseConnection, name: &'static str, holder: String) -> Leadership {
    let asked = Instant::now();
    let first = try_acquire(&db, name, &holder, TTL).await.unwrap_or(false);
    let (tx, rx) = watch::channel(first);
    if first {
        tracing::info!(replica = %holder, lease = name, "this replica leads");
    }
    tokio::spawn(async move {
        // Until when this replica may act as leader: a little less than the lease it last
        // wrote (its expiry is counted in whole seconds from when it was asked for). Past it,
        // it steps down even while a renewal is still under way, so two replicas never lead
        // at once when renewals fail or hang.
        let mut valid_until = first.then(|| asked + TTL - Duration::from_secs(1));
        let mut every = tokio::time::interval(RENEW);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = tx.closed() => {
                    let _ = release(&db, name, &holder).await;
                    return;
                }
            }
            let asked = Instant::now();
            let wait = valid_until.map_or(TTL, |v| v.saturating_duration_since(asked));
            let leads = match tokio::time::timeout(wait, try_acquire(&db, name, &holder, TTL)).await
            {
                Ok(Ok(true)) => {
                    valid_until = Some(asked + TTL - Duration::from_secs(1));
                    true
                }
                Ok(Ok(false)) => {
                    valid_until = None;
                    false
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = name, "cannot renew the lease: {e}");
                    valid_until = valid_until.filter(|v| Instant::now() < *v);
                    valid_until.is_some()
                }
                Err(_) => {
                    tracing::warn!(
                        lease = name,
                        "renewing the lease takes too long: stepping down"
                    );
                    valid_until = None;
                    false
                }
            };
            if *tx.borrow() != leads {
                if leads {
                    tracing::info!(replica = %holder, lease = name, "this replica leads");
                } else {
                    tracing::info!(replica = %holder, lease = name, "another replica leads");
                }
                let _ = tx.send(leads);
            }
        }
    });
    rx
}
