//! Idle HTTP/1.1 connections to IDEs, kept per upstream for the next request: a request to a
//! busy workspace reuses a connection instead of a new connect and handshake.
//!
//! Connections enter only through `proxy`'s no-symlink connect, so a pooled one always leads
//! to the socket that was there when it was opened. When an IDE stops or restarts, its end of
//! every connection closes and `take` drops them; the gateway also forgets a workspace's
//! connections when it sees the workspace is not running.

use crate::proxy::Upstream;
use hyper::client::conn::http1::SendRequest;
use std::{collections::HashMap, sync::Mutex};

/// Idle connections kept per upstream; more concurrent requests than this open their own.
const MAX_PER_UPSTREAM: usize = 32;

pub struct UpstreamPool<B> {
    idle: Mutex<HashMap<Upstream, Vec<SendRequest<B>>>>,
}

impl<B> Default for UpstreamPool<B> {
    fn default() -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
        }
    }
}

impl<B> std::fmt::Debug for UpstreamPool<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool").finish_non_exhaustive()
    }
}

impl<B> UpstreamPool<B> {
    /// A connection to `upstream` that can take a request now, if one is kept. Closed ones
    /// are dropped on the way; busy ones (a response still streaming) stay for later.
    pub(crate) fn take(&self, upstream: &Upstream) -> Option<SendRequest<B>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(upstream)?;
        list.retain(|s| !s.is_closed());
        let ready = list.iter().position(|s| s.is_ready())?;
        Some(list.swap_remove(ready))
    }

    /// Keeps `sender` (which may still be finishing its response) for a later request.
    pub(crate) fn put(&self, upstream: &Upstream, sender: SendRequest<B>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = idle.get_mut(upstream) {
            if list.len() < MAX_PER_UPSTREAM {
                list.push(sender);
            }
            return;
        }
        idle.insert(upstream.clone(), vec![sender]);
    }

    /// Drops every kept connection to `upstream`.
    pub fn forget(&self, upstream: &Upstream) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(upstream);
    }

    /// How many connections are kept for `upstream` (for tests and metrics).
    pub fn kept(&self, upstream: &Upstream) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(upstream)
            .map_or(0, Vec::len)
    }
}
