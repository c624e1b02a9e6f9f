//! What the gateway tells the logs about proxied traffic: each request at `debug` (an IDE
//! makes hundreds a minute), and once a minute at `info` how many there were by status class.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Traffic {
    /// Requests answered, by status class (1xx … 5xx).
    by_class: [AtomicU64; 5],
}

impl Traffic {
    /// Starts the once-a-minute summary.
    pub fn new() -> Arc<Self> {
        let traffic = Arc::new(Self::default());
        let weak = Arc::downgrade(&traffic);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(t) = weak.upgrade() else { return };
                t.summarize();
            }
        });
        traffic
    }

    pub fn record(&self, workspace: i64, status: u16, started: std::time::Instant) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            workspace,
            status,
            micros = started.elapsed().as_micros() as u64,
            "proxied"
        );
    }

    fn summarize(&self) {
        let n: Vec<u64> = self
            .by_class
            .iter()
            .map(|c| c.swap(0, Ordering::Relaxed))
            .collect();
        let total: u64 = n.iter().sum();
        if total > 0 {
            tracing::info!(
                total,
                ok = n[0] + n[1],
                redirects = n[2],
                client_errors = n[3],
                server_errors = n[4],
                "workspace gateway traffic in the last minute"
            );
        }
    }
}
