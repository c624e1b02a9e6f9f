//! Keeps one IDE alive: restarts it with backoff when it exits or stops answering its health
//! check, and gives up (the workspace becomes `failed`, with the last lines of its log) when
//! it keeps failing.

use super::{layout::log_tail, process, Inner, Running};
use crate::workspaces::runtime::{RuntimeEvent, RuntimeEventKind, WorkspaceSpec};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{sync::oneshot, task::JoinHandle};

/// How hard supervision tries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Time an IDE gets to answer its health check after it starts.
    pub start_timeout: Duration,
    pub health_interval: Duration,
    /// Consecutive failed health checks that count as a hang.
    pub health_failures: u32,
    /// Restarts allowed within `window` before giving up.
    pub max_restarts: usize,
    pub window: Duration,
    /// First backoff; doubles with each recent failure.
    pub backoff: Duration,
    /// Between SIGTERM and SIGKILL on stop.
    pub grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            start_timeout: Duration::from_secs(90),
            health_interval: Duration::from_secs(5),
            health_failures: 3,
            max_restarts: 3,
            window: Duration::from_secs(120),
            backoff: Duration::from_secs(1),
            grace: Duration::from_secs(3),
        }
    }
}

/// A running supervisor; dropping `stop` (or sending on it) ends the IDE.
pub struct Supervised {
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
    pub current: Arc<Mutex<Option<process::ProcId>>>,
}

impl Supervised {
    pub fn is_up(&self) -> bool {
        !self.task.is_finished()
            && self
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|p| p.alive())
    }
}

pub fn supervise(inner: Arc<Inner>, spec: WorkspaceSpec, first: Running) -> Supervised {
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let current = Arc::new(Mutex::new(Some(first.proc())));
    let cur = current.clone();
    let task = tokio::spawn(async move {
        let id = spec.id;
        let policy = inner.policy;
        let mut running = Some(first);
        let mut failures: Vec<Instant> = Vec::new();
        loop {
            let why = match running.take() {
                Some(r) => {
                    let proc = r.proc();
                    tokio::select! {
                        _ = &mut stop_rx => {
                            inner.kill(id, Some(proc)).await;
                            return;
                        }
                        why = watch(&inner, &spec, r) => {
                            inner.kill(id, Some(proc)).await;
                            why
                        }
                    }
                }
                None => "the IDE could not be started".to_string(),
            };
            *cur.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let now = Instant::now();
            failures.retain(|t| now.duration_since(*t) < policy.window);
            failures.push(now);
            tracing::warn!(
                workspace = id,
                "IDE failed ({why}); {} recent failures",
                failures.len()
            );
            if failures.len() > policy.max_restarts {
                let tail = log_tail(&inner.layout.log(id), 15);
                let reason = format!(
                    "stopped: {why}; gave up after {} restarts within {} s. Last output:\n{tail}",
                    policy.max_restarts,
                    policy.window.as_secs()
                );
                inner.emit(RuntimeEvent {
                    workspace_id: id,
                    kind: RuntimeEventKind::Failed { reason },
                });
                return;
            }
            let backoff = policy.backoff * 2u32.saturating_pow(failures.len() as u32 - 1);
            tokio::select! {
                _ = &mut stop_rx => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            match inner.launch(&spec).await {
                Ok(r) => {
                    *cur.lock().unwrap_or_else(|e| e.into_inner()) = Some(r.proc());
                    running = Some(r);
                    inner.emit(RuntimeEvent {
                        workspace_id: id,
                        kind: RuntimeEventKind::Restarted {
                            attempt: failures.len() as u32,
                        },
                    });
                }
                Err(e) => tracing::warn!(workspace = id, "restart failed: {e}"),
            }
        }
    });
    Supervised {
        stop: Some(stop_tx),
        task,
        current,
    }
}

/// Returns why the IDE is no longer usable: it exited (killed for the workspace's memory
/// limit, when its cgroup counted that), or it stopped answering.
async fn watch(inner: &Inner, spec: &WorkspaceSpec, running: Running) -> String {
    let policy = inner.policy;
    let (limits, slot) = (inner.isolation.limits, inner.isolation.slot(spec.id));
    let oom_before = limits.oom_kills(slot).unwrap_or(0);
    let out_of_memory = || {
        (limits.oom_kills(slot).unwrap_or(0) > oom_before)
            .then(|| format!("out of memory at {}", human_mib(spec.template.memory_mb)))
    };
    let health = async {
        let mut misses = 0;
        loop {
            tokio::time::sleep(policy.health_interval).await;
            if inner.healthy(spec).await {
                misses = 0;
            } else {
                misses += 1;
                if misses >= policy.health_failures {
                    return format!("the IDE stopped answering {}", spec.template.health_path);
                }
            }
        }
    };
    let exited = async {
        match running {
            Running::Child(mut child, _, mut log) => {
                let why = match child.wait().await {
                    Ok(status) => format!("the IDE exited ({status})"),
                    Err(e) => format!("lost track of the IDE: {e}"),
                };
                // Its last words explain the failure; let them reach the log first.
                log.drained(super::LOG_DRAIN).await;
                why
            }
            // Not our child (adopted after a restart): poll for its end.
            Running::Adopted(proc) => {
                while proc.alive() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                "the IDE exited".to_string()
            }
        }
    };
    tokio::select! {
        why = health => why,
        why = exited => out_of_memory().map_or(why, |oom| format!("{oom} (its memory limit)")),
    }
}

/// `2048` → `2 GiB`, `1536` → `1536 MiB`.
pub fn human_mib(mb: u64) -> String {
    if mb >= 1024 && mb.is_multiple_of(1024) {
        format!("{} GiB", mb / 1024)
    } else {
        format!("{mb} MiB")
    }
}
