//! Fixed-window attempt counters keyed by (what, who), e.g. ("login-ip", "10.0.0.1").
//!
//! In memory, per process: a limit is a brake on guessing, not an accounting record, so
//! losing counters on restart is acceptable.

use crate::config::Limit;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(&'static str, String), Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

/// Refusal with the seconds until the window resets (for `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

/// Beyond this many tracked keys, expired windows are swept on insert so memory stays bounded.
const SWEEP_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one attempt; refuses it when the window already holds `limit.max`.
    pub fn check(&self, bucket: &'static str, key: &str, limit: Limit) -> Result<(), Limited> {
        self.check_at(bucket, key, limit, Instant::now())
    }

    fn check_at(
        &self,
        bucket: &'static str,
        key: &str,
        limit: Limit,
        now: Instant,
    ) -> Result<(), Limited> {
        let period = Duration::from_secs(limit.per_seconds);
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, w| now.duration_since(w.started) < period);
        }
        let w = map.entry((bucket, key.to_string())).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(w.started) >= period {
            *w = Window {
                started: now,
                count: 0,
            };
        }
        if w.count >= limit.max {
            let left = period.saturating_sub(now.duration_since(w.started));
            return Err(Limited {
                retry_after_secs: left.as_secs().max(1),
            });
        }
        w.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_max_and_resets_after_window() {
        let rl = RateLimiter::new();
        let limit = Limit {
            max: 2,
            per_seconds: 60,
        };
        let t0 = Instant::now();
        assert!(rl.check_at("b", "k", limit, t0).is_ok());
        assert!(rl.check_at("b", "k", limit, t0).is_ok());
        let err = rl
            .check_at("b", "k", limit, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(err.retry_after_secs, 50);
        // Other keys and buckets are independent.
        assert!(rl.check_at("b", "other", limit, t0).is_ok());
        assert!(rl.check_at("c", "k", limit, t0).is_ok());
        assert!(rl
            .check_at("b", "k", limit, t0 + Duration::from_secs(60))
            .is_ok());
    }
}
