//! Fixed-window attempt counters keyed by (what, who), e.g. ("login-ip", "10.0.0.1").
//!
//! In memory, per process: a limit is a brake on guessing, not an accounting record, so
//! losing counters on restart is acceptable.
//!
//! Sign-in has its own entry points ([`RateLimiter::check_login`],
//! [`RateLimiter::remember_sign_in`]) so that where the counters live can change without
//! touching the callers.

use crate::config::Limit;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(&'static str, String), Window>>,
    /// (account, address) pairs that signed in, with when that stops counting.
    known: Mutex<HashMap<(String, String), Instant>>,
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

/// All addresses together get this many times one address's sign-in attempts on an account.
/// High enough that the owner is not locked out by one guesser (who now only exhausts their
/// own address's share), low enough that a crowd of addresses still cannot guess freely.
const ACCOUNT_OVERALL_FACTOR: u32 = 10;
/// How long an address that signed in to an account stays exempt from that account's overall
/// limit: about as long as people go between sign-ins on a device they use.
const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Remembered sign-ins are capped so a flood of successful logins cannot grow memory without
/// bound; past it, new addresses simply get no exemption.
const MAX_KNOWN: usize = 100_000;

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one attempt; refuses it when the window already holds `limit.max`.
    pub fn check(&self, bucket: &'static str, key: &str, limit: Limit) -> Result<(), Limited> {
        self.check_at(bucket, key, limit, Instant::now())
    }

    /// Counts one sign-in attempt on `account` from `address`. One address gets `limit`
    /// attempts per window on an account, so a guesser locks out only themselves; all
    /// addresses together get [`ACCOUNT_OVERALL_FACTOR`] times that, except addresses that
    /// signed in to the account before, which a crowd of guessers cannot lock out.
    pub fn check_login(&self, account: &str, address: &str, limit: Limit) -> Result<(), Limited> {
        self.check_login_at(account, address, limit, Instant::now())
    }

    /// Records a successful sign-in, exempting `address` from `account`'s overall limit.
    pub fn remember_sign_in(&self, account: &str, address: &str) {
        self.remember_sign_in_at(account, address, Instant::now())
    }

    fn check_login_at(
        &self,
        account: &str,
        address: &str,
        limit: Limit,
        now: Instant,
    ) -> Result<(), Limited> {
        // An address never contains a newline, so the pair cannot collide with another.
        let pair = format!("{account}\n{address}");
        self.check_at("login-account-address", &pair, limit, now)?;
        if self.is_known_at(account, address, now) {
            return Ok(());
        }
        let overall = Limit {
            max: limit.max.saturating_mul(ACCOUNT_OVERALL_FACTOR),
            ..limit
        };
        self.check_at("login-account", account, overall, now)
    }

    fn remember_sign_in_at(&self, account: &str, address: &str, now: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() > SWEEP_ABOVE {
            known.retain(|_, until| *until > now);
        }
        let key = (account.to_string(), address.to_string());
        if known.len() < MAX_KNOWN || known.contains_key(&key) {
            known.insert(key, now + KNOWN_ADDRESS_TTL);
        }
    }

    fn is_known_at(&self, account: &str, address: &str, now: Instant) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(&(account.to_string(), address.to_string()))
            .is_some_and(|until| *until > now)
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

    const FIVE: Limit = Limit {
        max: 5,
        per_seconds: 300,
    };

    #[test]
    fn a_guesser_locks_out_only_their_own_address() {
        let rl = RateLimiter::new();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(rl.check_login_at("alice", "10.0.0.66", FIVE, t0).is_ok());
        }
        assert!(rl.check_login_at("alice", "10.0.0.66", FIVE, t0).is_err());
        assert!(rl.check_login_at("alice", "10.0.0.1", FIVE, t0).is_ok());
        assert!(
            rl.check_login_at("bob", "10.0.0.66", FIVE, t0).is_ok(),
            "other accounts from that address are separate"
        );
    }

    #[test]
    fn many_addresses_hit_the_overall_limit_except_known_ones() {
        let rl = RateLimiter::new();
        let t0 = Instant::now();
        rl.remember_sign_in_at("alice", "10.0.0.1", t0);
        for i in 0..10 {
            for _ in 0..5 {
                let addr = format!("192.0.2.{i}");
                assert!(
                    rl.check_login_at("alice", &addr, FIVE, t0).is_ok(),
                    "{addr}"
                );
            }
        }
        let err = rl
            .check_login_at("alice", "192.0.2.200", FIVE, t0)
            .unwrap_err();
        assert_eq!(err.retry_after_secs, 300);
        assert!(rl.check_login_at("alice", "10.0.0.1", FIVE, t0).is_ok());
        assert!(
            rl.check_login_at("bob", "192.0.2.201", FIVE, t0).is_ok(),
            "the overall limit is per account"
        );
        // The exemption ends with its time to live.
        let later = t0 + KNOWN_ADDRESS_TTL + Duration::from_secs(1);
        rl.remember_sign_in_at("carol", "10.0.0.1", t0);
        assert!(rl.is_known_at("carol", "10.0.0.1", t0));
        assert!(!rl.is_known_at("carol", "10.0.0.1", later));
    }

    #[test]
    fn a_known_address_still_has_its_own_limit() {
        let rl = RateLimiter::new();
        let t0 = Instant::now();
        rl.remember_sign_in_at("alice", "10.0.0.1", t0);
        for _ in 0..5 {
            assert!(rl.check_login_at("alice", "10.0.0.1", FIVE, t0).is_ok());
        }
        assert!(rl.check_login_at("alice", "10.0.0.1", FIVE, t0).is_err());
    }
}
