//! Idle HTTP/1.1 connections to IDEs, kept per upstream for the next request: a request to a
//! busy workspace reuses a connection instead of a new connect and handshake.
//!
//! A kept connection has no task of its own: whoever sends a request on it drives it, the
//! request's task while the response head comes and the response body while it streams (see
//! `proxy::Proxied`). A request then never hands its bytes to another task and back, which on
//! a small host costs more than the gateway's own work.
//!
//! Connections enter only through `proxy`'s no-symlink connect, so a kept one always leads to
//! the socket that was there when it was opened. When an IDE stops or restarts, its end of
//! every connection closes; the next request on one notices before sending and opens a new
//! one. The gateway also forgets a workspace's connections when it sees it is not running.

use crate::proxy::Upstream;
use hyper::client::conn::http1::SendRequest;
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::Context,
};

/// Idle connections kept per upstream; more concurrent requests than this open their own.
const MAX_PER_UPSTREAM: usize = 32;

/// A connection's I/O, run by polling it (hyper's `Connection`).
pub(crate) type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One HTTP/1.1 connection to an IDE, driven by its user.
pub(crate) struct Conn<B> {
    pub(crate) upstream: Upstream,
    pub(crate) sender: SendRequest<B>,
    /// `None` once the connection ended.
    driver: Option<Driver>,
}

impl<B> Conn<B> {
    pub(crate) fn new(upstream: Upstream, sender: SendRequest<B>, driver: Driver) -> Self {
        Self {
            upstream,
            sender,
            driver: Some(driver),
        }
    }

    /// Moves the connection's I/O on; false once it has ended.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(d) = self.driver.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                self.driver = None;
            }
        }
        self.driver.is_some()
    }

    fn alive(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Moves the connection on with nobody to wake (it is idle, or about to be kept), so an
    /// IDE's close is noticed and a finished exchange settles; false once it has ended.
    fn settle(&mut self) -> bool {
        self.drive(&mut Context::from_waker(std::task::Waker::noop())) && self.alive()
    }
}

/// Every this many connections kept, all upstreams' kept connections are looked at, so those
/// of upstreams nobody asks for any more (a restarted workspace's port previews) are closed.
const SWEEP_EVERY: u32 = 64;

pub struct UpstreamPool<B> {
    idle: Arc<Mutex<Kept<B>>>,
}

struct Kept<B> {
    by_upstream: HashMap<Upstream, Vec<Conn<B>>>,
    puts: u32,
}

impl<B> Default for Kept<B> {
    fn default() -> Self {
        Self {
            by_upstream: HashMap::new(),
            puts: 0,
        }
    }
}

impl<B> Clone for UpstreamPool<B> {
    fn clone(&self) -> Self {
        Self {
            idle: self.idle.clone(),
        }
    }
}

impl<B> Default for UpstreamPool<B> {
    fn default() -> Self {
        Self {
            idle: Arc::default(),
        }
    }
}

impl<B> std::fmt::Debug for UpstreamPool<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool").finish_non_exhaustive()
    }
}

impl<B> UpstreamPool<B> {
    /// The connection to `upstream` used last, if one is kept (ended ones are dropped on the
    /// way).
    pub(crate) fn take(&self, upstream: &Upstream) -> Option<Conn<B>> {
        let mut kept = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = kept.by_upstream.get_mut(upstream)?;
        while let Some(conn) = list.pop() {
            if conn.alive() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn`, whose response is complete, for a later request, if it can take one: a
    /// connection still sending a request body the IDE answered early is dropped instead.
    /// Kept connections of the same upstream that the IDE closed meanwhile are let go.
    pub(crate) fn put(&self, mut conn: Conn<B>) {
        if !conn.settle() || !conn.sender.is_ready() {
            return;
        }
        let mut kept = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        kept.puts = kept.puts.wrapping_add(1);
        if kept.puts.is_multiple_of(SWEEP_EVERY) {
            kept.by_upstream.retain(|_, list| {
                list.retain_mut(Conn::settle);
                !list.is_empty()
            });
        }
        match kept.by_upstream.get_mut(&conn.upstream) {
            Some(list) => {
                list.retain_mut(Conn::settle);
                if list.len() < MAX_PER_UPSTREAM {
                    list.push(conn);
                }
            }
            None => {
                kept.by_upstream.insert(conn.upstream.clone(), vec![conn]);
            }
        }
    }

    /// Drops every kept connection to `upstream`.
    pub fn forget(&self, upstream: &Upstream) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_upstream
            .remove(upstream);
    }

    /// How many connections are kept for `upstream` (for tests and metrics).
    pub fn kept(&self, upstream: &Upstream) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_upstream
            .get(upstream)
            .map_or(0, Vec::len)
    }
}
