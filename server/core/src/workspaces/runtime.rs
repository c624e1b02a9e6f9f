//! The runtime interface: the only place that knows how a workspace is run. The workspace
//! service persists the JSON state a runtime returns, so a runtime can find its workspaces
//! again after a restart.

use crate::templates::Template;
use async_trait::async_trait;
use serde_json::Value;
use std::{collections::HashSet, fmt::Debug};
use tokio::sync::broadcast;

/// What a runtime needs to know about one workspace.
#[derive(Debug, Clone)]
pub struct WorkspaceSpec {
    pub id: i64,
    pub owner_id: i64,
    pub owner: String,
    pub name: String,
    pub template: Template,
}

/// Where the gateway sends a workspace's traffic.
pub use qingting_gateway::proxy::Upstream as Endpoint;

/// Something a runtime noticed on its own, outside any call (a crash, a recovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    pub workspace_id: i64,
    pub kind: RuntimeEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEventKind {
    /// The IDE crashed or stopped answering and was restarted.
    Restarted { attempt: u32 },
    /// The IDE kept failing; the runtime gave up on it.
    Failed { reason: String },
}

/// What a running workspace uses now, as far as the runtime can tell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: u64,
    /// Share of one core, lately (over 100 with several busy).
    pub cpu_percent: Option<f64>,
    /// Its files and IDE data (extensions, settings), as last measured.
    pub disk_bytes: Option<u64>,
}

/// What the runtime sees, for reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Running,
    Stopped,
    /// The runtime has no trace of it.
    Missing,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

#[async_trait]
pub trait Runtime: Send + Sync + Debug {
    fn name(&self) -> &'static str;
    /// Creates what the workspace needs (directories, functions, …); idempotent. Returns the
    /// state to persist.
    async fn provision(&self, ws: &WorkspaceSpec) -> Result<Value, RuntimeError>;
    /// Starts the IDE and returns once it answers its health check.
    async fn start(&self, ws: &WorkspaceSpec, state: &Value) -> Result<(), RuntimeError>;
    /// Stops the IDE; the workspace's files stay.
    async fn stop(&self, ws: &WorkspaceSpec, state: &Value) -> Result<(), RuntimeError>;
    async fn status(&self, ws: &WorkspaceSpec, state: &Value) -> Result<Observed, RuntimeError>;
    /// Removes everything, files included; absent parts count as removed.
    async fn destroy(&self, ws: &WorkspaceSpec, state: &Value) -> Result<(), RuntimeError>;
    /// Where the gateway sends a workspace's traffic (asked on every request: no lookups).
    fn endpoint(&self, workspace_id: i64, state: &Value) -> Option<Endpoint>;

    /// After a server restart: takes over a workspace recorded as running if its IDE is still
    /// up (true), or cleans up what is left of it (false, and the caller starts it again).
    async fn adopt(&self, ws: &WorkspaceSpec, state: &Value) -> Result<bool, RuntimeError> {
        Ok(self.status(ws, state).await? == Observed::Running)
    }

    /// Whether a pooled workspace (`workspaces.pool`) is started ahead (true: its IDE carries
    /// no identity, so it can run before anyone owns it), or only provisioned ahead and
    /// started when a user takes it (false: its owner's identity and files are set in
    /// `hand_over`, and the runtime cannot change them under a running IDE).
    fn pool_starts_ides(&self) -> bool {
        true
    }

    /// Before a start: gives a workspace taken from the pool its owner (identity, files,
    /// address) if `state` says it has none yet. Returns the state to persist, or None when
    /// there is nothing to do. Idempotent: a hand-over interrupted by a crash is done again
    /// by the next start.
    async fn hand_over(
        &self,
        _ws: &WorkspaceSpec,
        _state: &Value,
    ) -> Result<Option<Value>, RuntimeError> {
        Ok(None)
    }

    /// Removes what belongs to no workspace in `existing` and stops IDEs nobody supervises.
    async fn clean_orphans(&self, _existing: &HashSet<i64>) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// Events the runtime reports on its own (crashes, give-ups).
    fn events(&self) -> Option<broadcast::Receiver<RuntimeEvent>> {
        None
    }

    /// Whether this server's gateway sees the workspaces' traffic (so idle stop can judge
    /// activity). Runtimes that serve workspaces elsewhere (FC's custom domains) say no.
    fn traffic_through_gateway(&self) -> bool {
        true
    }

    /// What isolation is in force, for `/healthz` and the logs.
    fn isolation(&self) -> Value {
        Value::Null
    }

    /// Where the gateway reaches `port` inside a running workspace (its preview host), or
    /// why it cannot.
    fn port_endpoint(&self, _workspace_id: i64, _port: u16) -> Result<Endpoint, String> {
        Err("port previews are not available on this runtime".into())
    }

    /// What a running workspace uses (for its card).
    fn usage(&self, _workspace_id: i64) -> Option<Usage> {
        None
    }

    /// The CPU time all of a running workspace's processes have used, in seconds (so idle
    /// stop can tell a long build from a forgotten IDE).
    fn cpu_seconds(&self, _workspace_id: i64) -> Option<f64> {
        None
    }

    /// The TCP ports a running workspace listens on, ascending (for the dashboard).
    fn listening_ports(&self, _workspace_id: i64) -> Vec<u16> {
        Vec::new()
    }
}

/// A runtime for tests of everything above the runtime: it can be slow or fail on demand,
/// and records every call.
#[cfg(any(test, feature = "testing"))]
pub mod fake {
    use super::*;
    use std::{
        collections::HashMap,
        sync::{
            atomic::{AtomicBool, AtomicU64, Ordering},
            Mutex,
        },
        time::Duration,
    };

    #[derive(Debug, Default)]
    pub struct FakeRuntime {
        pub fail_provision: AtomicBool,
        pub fail_start: AtomicBool,
        pub start_delay_ms: AtomicU64,
        pub calls: Mutex<Vec<String>>,
        pub running: Mutex<HashMap<i64, bool>>,
        /// CPU seconds each workspace has used, as a test sets them.
        pub cpu: Mutex<HashMap<i64, f64>>,
    }

    impl FakeRuntime {
        fn log(&self, what: &str, ws: &WorkspaceSpec) {
            self.calls.lock().unwrap().push(format!("{what} {}", ws.id));
        }

        pub fn count(&self, prefix: &str) -> usize {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| c.starts_with(prefix))
                .count()
        }
    }

    #[async_trait]
    impl Runtime for FakeRuntime {
        fn name(&self) -> &'static str {
            "fake"
        }

        fn cpu_seconds(&self, workspace_id: i64) -> Option<f64> {
            self.cpu.lock().unwrap().get(&workspace_id).copied()
        }

        async fn provision(&self, ws: &WorkspaceSpec) -> Result<Value, RuntimeError> {
            self.log("provision", ws);
            if self.fail_provision.load(Ordering::SeqCst) {
                return Err(RuntimeError("provisioning failed (injected)".into()));
            }
            self.running.lock().unwrap().insert(ws.id, false);
            Ok(serde_json::json!({"fake": ws.id}))
        }

        async fn start(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
            self.log("start", ws);
            let delay = self.start_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if self.fail_start.load(Ordering::SeqCst) {
                return Err(RuntimeError(
                    "the IDE exited with status 1 (injected)".into(),
                ));
            }
            self.running.lock().unwrap().insert(ws.id, true);
            Ok(())
        }

        async fn stop(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
            self.log("stop", ws);
            self.running.lock().unwrap().insert(ws.id, false);
            Ok(())
        }

        async fn status(
            &self,
            ws: &WorkspaceSpec,
            _state: &Value,
        ) -> Result<Observed, RuntimeError> {
            Ok(match self.running.lock().unwrap().get(&ws.id) {
                Some(true) => Observed::Running,
                Some(false) => Observed::Stopped,
                None => Observed::Missing,
            })
        }

        async fn destroy(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
            self.log("destroy", ws);
            self.running.lock().unwrap().remove(&ws.id);
            Ok(())
        }

        fn endpoint(&self, workspace_id: i64, _state: &Value) -> Option<Endpoint> {
            Some(Endpoint::Tcp(format!("fake-{workspace_id}:80")))
        }
    }
}
