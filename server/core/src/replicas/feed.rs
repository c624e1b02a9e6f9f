//! The change feed between replicas: "user N's workspaces changed", so every replica's live
//! dashboards reload and its gateway forgets what it knew of those hosts.
//!
//! - Postgres: `NOTIFY` on [`CHANNEL`], `LISTEN`ed on a connection of its own.
//! - MySQL/MariaDB (and Postgres with `database.change_feed = "table"`, e.g. behind a pooler
//!   that drops `LISTEN`): a row in `changes`, read every [`POLL`] by a query on the primary
//!   key. Rows are kept a minute.
//! - SQLite: none (one replica; the in-process broadcast is the whole feed).
//!
//! A replica skips its own announcements (it applied them as it made them). When it may have
//! missed some (the listening connection broke), it hears [`Changed::Everything`].

use crate::{
    config::ChangeFeedKind,
    store::{entity::change, now_unix},
};
use sea_orm::{
    sqlx::postgres::PgListener, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend,
    DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

/// The Postgres notification channel.
pub const CHANNEL: &str = "qingting_changes";
/// How often the `changes` table is read.
pub const POLL: Duration = Duration::from_millis(200);
/// How long a row stays in `changes`.
const KEEP_SECS: i64 = 60;
/// A gap in the table's ids may be a row whose transaction has not committed yet: it is read
/// again for this long before it is taken for a rolled-back insert.
const GAP_WAIT: Duration = Duration::from_secs(5);
/// How long a Postgres listener hears nothing before it checks its connection with a ping
/// (and as long again for the ping to come back).
const HEARTBEAT: Duration = Duration::from_secs(30);
const PING: &str = "ping";
/// Rows read per query at most (the rest come with the next one).
const BATCH: u64 = 1000;

/// What changed: one user's workspaces, or (when some news may have been missed) anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    User(i64),
    /// Some announcements may have been missed: treat everything as changed.
    Everything,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Notify,
    Table,
}

#[derive(Debug, Clone)]
pub struct ChangeFeed {
    db: DatabaseConnection,
    origin: String,
    transport: Transport,
}

impl ChangeFeed {
    /// The feed for this database, or `None` on SQLite.
    pub fn new(db: DatabaseConnection, origin: String, kind: ChangeFeedKind) -> Option<Self> {
        let transport = match (db.get_database_backend(), kind) {
            (DatabaseBackend::Sqlite, _) => return None,
            (DatabaseBackend::Postgres, ChangeFeedKind::Auto) => Transport::Notify,
            _ => Transport::Table,
        };
        Some(Self {
            db,
            origin,
            transport,
        })
    }

    /// How this feed travels, for `/healthz` and the start-up log.
    pub fn describe(&self) -> &'static str {
        match self.transport {
            Transport::Notify => "postgres notify",
            Transport::Table => "changes table",
        }
    }

    /// Tells the other replicas that `user_id`'s workspaces changed.
    pub async fn publish(&self, user_id: i64) -> Result<(), DbErr> {
        match self.transport {
            Transport::Notify => self.notify(&format!("{} {user_id}", self.origin)).await?,
            Transport::Table => {
                let row = change::ActiveModel {
                    origin: Set(self.origin.clone()),
                    user_id: Set(user_id),
                    at: Set(now_unix()),
                    ..Default::default()
                };
                change::Entity::insert(row).exec(&self.db).await?;
            }
        }
        Ok(())
    }

    async fn notify(&self, payload: &str) -> Result<(), DbErr> {
        self.db
            .execute(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        Ok(())
    }

    /// Delivers what the other replicas announce to `deliver`, until `deliver` says stop
    /// (returns false). Runs on its own task.
    pub fn listen(self, deliver: impl FnMut(Changed) -> bool + Send + 'static) {
        match self.transport {
            Transport::Notify => tokio::spawn(self.listen_notify(deliver)),
            Transport::Table => tokio::spawn(self.listen_table(deliver)),
        };
    }

    async fn listen_notify(self, mut deliver: impl FnMut(Changed) -> bool + Send) {
        let pool = self.db.get_postgres_connection_pool().clone();
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("change feed: cannot connect to listen: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!("change feed: LISTEN failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever happened while not listening is unknown.
            if !deliver(Changed::Everything) {
                return;
            }
            // A connection can die without telling (a load balancer or failover dropping it
            // silently): when nothing came for a while, this replica pings itself, and a ping
            // that does not come back means listen again.
            let mut ping_sent = false;
            loop {
                match tokio::time::timeout(HEARTBEAT, listener.try_recv()).await {
                    Ok(Ok(Some(n))) => match parse(n.payload(), &self.origin) {
                        // `deliver` says false once nobody listens any more.
                        Some(Heard::Change(change)) if !deliver(change) => return,
                        Some(Heard::OwnPing) => ping_sent = false,
                        _ => {}
                    },
                    // The connection broke; the listener reconnects on the next call.
                    Ok(Ok(None)) => {
                        if !deliver(Changed::Everything) {
                            return;
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("change feed: listening failed: {e}");
                        break;
                    }
                    Err(_) if ping_sent => {
                        tracing::warn!(
                            "change feed: the listening connection went quiet; listening again"
                        );
                        break;
                    }
                    Err(_) => {
                        ping_sent = true;
                        if let Err(e) = self.notify(&format!("{} {PING}", self.origin)).await {
                            tracing::warn!("change feed: cannot ping: {e}");
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn listen_table(self, mut deliver: impl FnMut(Changed) -> bool + Send) {
        let mut cursor: Option<Cursor> = None;
        let mut failing = false;
        let mut last_trim = Instant::now();
        let mut every = tokio::time::interval(POLL);
        loop {
            every.tick().await;
            let Some(c) = cursor.as_mut() else {
                // Start after what is there: older changes are already in what we will read.
                match self.newest_id().await {
                    Ok(id) => cursor = Some(Cursor::after(id)),
                    Err(e) => tracing::warn!("change feed: cannot read the changes table: {e}"),
                }
                continue;
            };
            match self.read_after(c.low).await {
                Ok(rows) => {
                    // After a spell of failed reads, rows may have been trimmed unread.
                    if std::mem::take(&mut failing) && !deliver(Changed::Everything) {
                        return;
                    }
                    for (id, origin, user) in rows {
                        if c.take(id) && origin != self.origin && !deliver(Changed::User(user)) {
                            return;
                        }
                    }
                    c.settle(Instant::now());
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("change feed: cannot read the changes table: {e}");
                    }
                    failing = true;
                }
            }
            if last_trim.elapsed() > Duration::from_secs(KEEP_SECS as u64 / 2) {
                last_trim = Instant::now();
                if let Err(e) = change::Entity::delete_many()
                    .filter(change::Column::At.lt(now_unix() - KEEP_SECS))
                    .exec(&self.db)
                    .await
                {
                    tracing::warn!("change feed: cannot trim the changes table: {e}");
                }
            }
        }
    }

    async fn newest_id(&self) -> Result<i64, DbErr> {
        let id: Option<i64> = change::Entity::find()
            .select_only()
            .column(change::Column::Id)
            .order_by_desc(change::Column::Id)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(id.unwrap_or(0))
    }

    async fn read_after(&self, id: i64) -> Result<Vec<(i64, String, i64)>, DbErr> {
        change::Entity::find()
            .select_only()
            .columns([
                change::Column::Id,
                change::Column::Origin,
                change::Column::UserId,
            ])
            .filter(change::Column::Id.gt(id))
            .order_by_asc(change::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await
    }
}

/// What a notification says to its listener.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    Change(Changed),
    /// This replica's own heartbeat came back.
    OwnPing,
}

/// `"<origin> <user id>"` from another replica, or `"<origin> ping"` from this one; `None` for
/// this replica's own changes, others' pings and anything malformed.
fn parse(payload: &str, own: &str) -> Option<Heard> {
    let (origin, what) = payload.rsplit_once(' ')?;
    match (origin == own, what) {
        (true, PING) => Some(Heard::OwnPing),
        (false, PING) | (true, _) => None,
        (false, user) => user.parse().ok().map(|u| Heard::Change(Changed::User(u))),
    }
}

/// Where a reader of the `changes` table stands: everything up to `low` is settled; above it,
/// the ids it has seen and the gaps it is still waiting for (an id is handed out before its
/// row commits, so a later id can be visible first).
#[derive(Debug)]
struct Cursor {
    low: i64,
    seen: BTreeSet<i64>,
    gaps: BTreeMap<i64, Instant>,
}

impl Cursor {
    fn after(low: i64) -> Self {
        Self {
            low,
            seen: BTreeSet::new(),
            gaps: BTreeMap::new(),
        }
    }

    /// Records `id`; true the first time it is seen.
    fn take(&mut self, id: i64) -> bool {
        self.gaps.remove(&id);
        id > self.low && self.seen.insert(id)
    }

    /// Notes new gaps below the highest id seen, and moves `low` up past what is seen and
    /// past gaps waited for long enough.
    fn settle(&mut self, now: Instant) {
        let Some(&high) = self.seen.last() else {
            return;
        };
        let mut id = self.low + 1;
        while id < high {
            if !self.seen.contains(&id) {
                self.gaps.entry(id).or_insert(now);
            }
            id += 1;
        }
        loop {
            let next = self.low + 1;
            if self.seen.remove(&next) {
                self.low = next;
                continue;
            }
            match self.gaps.get(&next) {
                Some(since) if now.duration_since(*since) >= GAP_WAIT => {
                    self.gaps.remove(&next);
                    self.low = next;
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_malformed_payloads_are_skipped() {
        let change = |u| Some(Heard::Change(Changed::User(u)));
        assert_eq!(parse("replica-b 42", "replica-a"), change(42));
        assert_eq!(parse("replica-a 42", "replica-a"), None);
        assert_eq!(parse("replica-b forty-two", "replica-a"), None);
        assert_eq!(parse("", "replica-a"), None);
        assert_eq!(parse("replica-a ping", "replica-a"), Some(Heard::OwnPing));
        assert_eq!(parse("replica-b ping", "replica-a"), None);
    }

    #[test]
    fn a_late_commit_below_a_seen_id_is_still_delivered() {
        let t0 = Instant::now();
        let mut c = Cursor::after(10);
        assert!(c.take(11));
        assert!(c.take(13), "12 is not visible yet");
        c.settle(t0);
        assert_eq!(c.low, 11, "12 is awaited");
        assert!(!c.take(13), "read again, not delivered again");
        assert!(c.take(12), "12 commits later and is delivered");
        c.settle(t0 + Duration::from_secs(1));
        assert_eq!(c.low, 13);
        assert!(c.seen.is_empty() && c.gaps.is_empty());
    }

    #[test]
    fn a_gap_that_never_fills_is_given_up_after_a_while() {
        let t0 = Instant::now();
        let mut c = Cursor::after(0);
        assert!(c.take(2));
        c.settle(t0);
        assert_eq!(c.low, 0);
        c.settle(t0 + GAP_WAIT);
        assert_eq!(c.low, 2, "1 was rolled back");
        assert!(!c.take(1), "below the cursor now");
    }
}
