//! Live connections by the dashboard session they were opened under: workspace WebSockets
//! through a gateway and the dashboard's event streams. Once that session ends, however it
//! ends (sign-out, password change, account deletion, expiry, or any of these on another
//! replica: they all delete the session), its connections close within a second.
//!
//! One [`SessionProbe`] call every [`SWEEP`] checks every session that has a live connection,
//! so the cost does not grow with the number of connections. The server probes its database;
//! `qingting-shell` asks the dashboard.

use crate::token::BoxFuture;
use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};
use tokio::sync::watch;

/// A dashboard session, as `(session id, user id)`.
pub type SessionKey = (String, i64);

/// Tells which sessions are still alive.
pub trait SessionProbe: Send + Sync + std::fmt::Debug + 'static {
    /// Of `sessions`, the ones that are still alive (the session exists, is that user's and
    /// has not expired). An error means "cannot tell": nothing is closed on it.
    fn alive<'a>(
        &'a self,
        sessions: &'a [SessionKey],
    ) -> BoxFuture<'a, Result<HashSet<SessionKey>, String>>;
}

/// How often sessions with live connections are checked.
pub const SWEEP: Duration = Duration::from_millis(400);

#[derive(Debug)]
struct Entry {
    user: i64,
    connections: usize,
    ended: watch::Sender<bool>,
}

#[derive(Debug)]
pub struct LiveSessions {
    probe: Arc<dyn SessionProbe>,
    entries: Mutex<HashMap<String, Entry>>,
    sweeper: std::sync::OnceLock<()>,
    /// Wakes the sweeper before its next tick (`recheck`).
    kick: Arc<tokio::sync::Notify>,
}

/// Held by one live connection; dropping it unregisters the connection.
#[derive(Debug)]
pub struct LiveGuard {
    owner: Weak<LiveSessions>,
    sid: String,
    ended: watch::Receiver<bool>,
}

impl LiveGuard {
    /// Whether the session has ended (as of the last sweep).
    pub fn has_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Completes once the session has ended.
    pub fn ended(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.ended.clone();
        async move {
            // An error means the registry is gone (shutting down): the connection may end too.
            let _ = rx.wait_for(|ended| *ended).await;
        }
    }
}

/// Completes when `guard`'s session ends; never, without a guard (a connection that is not
/// registered).
pub fn ended(guard: Option<&LiveGuard>) -> impl Future<Output = ()> + Send + 'static {
    let ended = guard.map(LiveGuard::ended);
    async move {
        match ended {
            Some(ended) => ended.await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            let mut entries = owner.lock();
            if let Some(e) = entries.get_mut(&self.sid) {
                e.connections -= 1;
                if e.connections == 0 {
                    entries.remove(&self.sid);
                }
            }
        }
    }
}

impl LiveSessions {
    pub fn new(probe: Arc<dyn SessionProbe>) -> Arc<Self> {
        Arc::new(Self {
            probe,
            entries: Mutex::default(),
            sweeper: std::sync::OnceLock::new(),
            kick: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection of `user` under session `sid` (must be called inside the Tokio
    /// runtime: the first call starts the sweeper).
    pub fn register(self: &Arc<Self>, sid: &str, user: i64) -> LiveGuard {
        self.sweeper.get_or_init(|| {
            tokio::spawn(sweep(Arc::downgrade(self), self.kick.clone()));
        });
        let mut entries = self.lock();
        let entry = entries.entry(sid.to_string()).or_insert_with(|| Entry {
            user,
            connections: 0,
            ended: watch::channel(false).0,
        });
        entry.connections += 1;
        LiveGuard {
            owner: Arc::downgrade(self),
            sid: sid.to_string(),
            ended: entry.ended.subscribe(),
        }
    }

    /// Checks now rather than at the next sweep: this replica just ended sessions (a
    /// suspension, a sign-out, a password change), so their connections close at once.
    /// Other replicas still notice on their own sweep.
    pub fn recheck(&self) {
        self.kick.notify_one();
    }

    /// Number of sessions with live connections (for tests and metrics).
    pub fn sessions(&self) -> usize {
        self.lock().len()
    }

    /// Ends the connections of every session the probe no longer knows.
    async fn check(&self) -> Result<(), String> {
        let watched: Vec<SessionKey> = self
            .lock()
            .iter()
            .map(|(sid, e)| (sid.clone(), e.user))
            .collect();
        let alive = self.probe.alive(&watched).await?;
        let mut entries = self.lock();
        for (sid, user) in watched {
            if !alive.contains(&(sid.clone(), user)) {
                if let Some(e) = entries.remove(&sid) {
                    tracing::info!(user, "session ended: closing its live connections");
                    let _ = e.ended.send(true);
                }
            }
        }
        Ok(())
    }
}

async fn sweep(registry: Weak<LiveSessions>, kick: Arc<tokio::sync::Notify>) {
    let mut every = tokio::time::interval(SWEEP);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = kick.notified() => every.reset(),
        }
        let Some(registry) = registry.upgrade() else {
            return;
        };
        if registry.sessions() == 0 {
            continue;
        }
        if let Err(e) = registry.check().await {
            tracing::warn!("live session check failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Knows no session at all: every registered one has ended.
    #[derive(Debug)]
    struct NoneAlive;

    impl SessionProbe for NoneAlive {
        fn alive<'a>(
            &'a self,
            _: &'a [SessionKey],
        ) -> BoxFuture<'a, Result<HashSet<SessionKey>, String>> {
            Box::pin(async { Ok(HashSet::new()) })
        }
    }

    /// On the paused clock, time moves only when every task waits on a timer: the
    /// connection closing before the sweep's next tick means the kick did it.
    #[tokio::test(start_paused = true)]
    async fn a_recheck_closes_ended_sessions_before_the_next_sweep() {
        let live = LiveSessions::new(Arc::new(NoneAlive));
        let first = live.register("s1", 1);
        first.ended().await;
        let t0 = tokio::time::Instant::now();
        let second = live.register("s2", 2);
        live.recheck();
        second.ended().await;
        assert!(t0.elapsed() < SWEEP, "closed after {:?}", t0.elapsed());
        // Without the kick it waits for the tick.
        let third = live.register("s3", 3);
        let t1 = tokio::time::Instant::now();
        third.ended().await;
        assert!(
            t1.elapsed() > Duration::ZERO,
            "closed after {:?}",
            t1.elapsed()
        );
    }
}
