//! What the gateway saw of each workspace: the last request, and how many WebSockets are
//! open. The idle reaper stops workspaces with neither for longer than the configured time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

#[derive(Debug, Default)]
struct Entry {
    last: Option<Instant>,
    open: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Activity {
    map: Arc<Mutex<HashMap<i64, Entry>>>,
}

/// Counts one open WebSocket until dropped.
#[derive(Debug)]
pub struct OpenSocket {
    activity: Activity,
    id: i64,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        let mut map = self.activity.lock();
        if let Some(e) = map.get_mut(&self.id) {
            e.open = e.open.saturating_sub(1);
            e.last = Some(Instant::now());
        }
    }
}

impl Activity {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn touch(&self, id: i64) {
        self.lock().entry(id).or_default().last = Some(Instant::now());
    }

    pub fn open_socket(&self, id: i64) -> OpenSocket {
        let mut map = self.lock();
        let e = map.entry(id).or_default();
        e.open += 1;
        e.last = Some(Instant::now());
        OpenSocket {
            activity: self.clone(),
            id,
        }
    }

    /// Seconds since this process last saw the workspace used (0 while a WebSocket is open);
    /// `None` when it saw nothing since it started.
    pub fn idle_secs(&self, id: i64) -> Option<u64> {
        match self.lock().get(&id) {
            Some(e) if e.open > 0 => Some(0),
            Some(e) => e.last.map(|t| t.elapsed().as_secs()),
            None => None,
        }
    }

    /// The last activity, or `None` when a WebSocket is open right now (busy).
    pub fn idle_since(&self, id: i64, default: Instant) -> Option<Instant> {
        match self.lock().get(&id) {
            Some(e) if e.open > 0 => None,
            Some(e) => Some(e.last.unwrap_or(default).max(default)),
            None => Some(default),
        }
    }

    pub fn forget(&self, id: i64) {
        self.lock().remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sockets_keep_a_workspace_busy() {
        let a = Activity::default();
        let t0 = Instant::now();
        assert_eq!(a.idle_since(1, t0), Some(t0));
        let s = a.open_socket(1);
        assert_eq!(a.idle_since(1, t0), None);
        drop(s);
        assert!(a.idle_since(1, t0).unwrap() >= t0);
    }
}
