//! The local runtime (the default): each workspace's IDE is a supervised child process of
//! this server, in a bubblewrap sandbox with its own uid, session, limits, capped log and
//! data dirs, listening on a Unix socket only the gateway can reach. IDEs outlive a server
//! restart and are adopted again by the next one.

mod layout;
mod limits;
mod network;
mod ports;
mod process;
mod sandbox;
mod supervisor;
mod usage;

pub use layout::Layout;
pub use limits::default_max_running;
pub use network::host_addresses;
pub use process::kill_now;
pub use sandbox::{Isolation, Network, NoSandbox};
pub use supervisor::Policy;

use super::runtime::{
    Endpoint, Observed, Runtime, RuntimeError, RuntimeEvent, Usage, WorkspaceSpec,
};
use crate::{config::NetworkPolicy, ip_range::IpRange};
use async_trait::async_trait;
use process::ProcId;
use serde_json::{json, Value};
use std::{
    collections::{HashMap, HashSet},
    fs,
    os::unix::fs::{lchown, DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};
use supervisor::Supervised;
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub data_dir: PathBuf,
    pub editors_dir: PathBuf,
    /// Run IDEs without bubblewrap (only where no sandbox is possible; never shared).
    pub insecure_no_sandbox: bool,
    /// First uid of the per-workspace range: the IDE's uid on the host when the server runs
    /// as root, inside its user namespace otherwise.
    pub uid_base: u32,
    pub policy: Policy,
    /// An IDE's log is rotated to `.1` at this size, so it keeps at most twice this on disk.
    pub log_max_bytes: u64,
    /// Outbound network (`workspaces.local.network`), and more ranges it never reaches.
    pub network: NetworkPolicy,
    pub network_deny: Vec<IpRange>,
}

#[derive(Clone)]
pub struct LocalRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRuntime")
            .field("isolation", &self.inner.isolation)
            .finish()
    }
}

pub struct Inner {
    layout: Layout,
    editors: PathBuf,
    isolation: Isolation,
    policy: Policy,
    log_max_bytes: u64,
    events: broadcast::Sender<RuntimeEvent>,
    supervised: Mutex<HashMap<i64, Supervised>>,
    usage: usage::Sampler,
    /// Each started workspace's memory limit (MiB), for its usage figures.
    memory_mb: Mutex<HashMap<i64, u64>>,
    /// The process holding each running workspace's namespaces, found once per start (a port
    /// preview asks on every request); forgotten whenever the sandbox is killed.
    holders: Mutex<HashMap<i64, qingting_gateway::netns::Holder>>,
}

/// An IDE that answered its health check.
pub enum Running {
    /// Started by this server.
    Child(tokio::process::Child, ProcId, process::LogWriter),
    /// Found running after a server restart.
    Adopted(ProcId),
}

impl Running {
    fn proc(&self) -> ProcId {
        match self {
            Running::Child(_, p, _) | Running::Adopted(p) => *p,
        }
    }
}

/// How long the last output of an IDE that ended may take to reach its log.
const LOG_DRAIN: Duration = Duration::from_secs(2);
/// How long a sandbox may take to load its firewall and get its network connected.
const NET_ATTACH: Duration = Duration::from_secs(10);
/// How often a starting IDE is probed for readiness.
const READY_POLL: Duration = Duration::from_millis(10);

fn err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError(e.to_string())
}

impl LocalRuntime {
    /// Checks the host's isolation (see [`Isolation::detect`]) and prepares the data dirs.
    pub fn new(opts: LocalOptions) -> Result<Self, NoSandbox> {
        let isolation = Isolation::detect(
            opts.insecure_no_sandbox,
            opts.uid_base,
            opts.network,
            &opts.network_deny,
        )?;
        let layout = Layout::new(&opts.data_dir);
        for (dir, mode) in [
            (layout.workspaces(), 0o711),
            (layout.run(), 0o711),
            (layout.logs(), 0o700),
        ] {
            // 0700 for whatever it creates on the way: the data dir is the server's alone.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .and_then(|_| fs::set_permissions(&dir, fs::Permissions::from_mode(mode)))
                .map_err(|e| NoSandbox(format!("cannot prepare {}: {e}", dir.display())))?;
        }
        fs::write(layout.resolv_conf(), network::resolv_conf())
            .and_then(|_| {
                fs::set_permissions(layout.resolv_conf(), fs::Permissions::from_mode(0o644))
            })
            .map_err(|e| NoSandbox(format!("cannot write the workspaces' resolv.conf: {e}")))?;
        let (events, _) = broadcast::channel(64);
        Ok(Self {
            inner: Arc::new(Inner {
                layout,
                editors: opts.editors_dir,
                isolation,
                policy: opts.policy,
                log_max_bytes: opts.log_max_bytes,
                events,
                supervised: Mutex::new(HashMap::new()),
                usage: usage::Sampler::default(),
                memory_mb: Mutex::new(HashMap::new()),
                holders: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// The pid of a workspace's running sandbox (tests kill it to check recovery).
    pub fn pid(&self, id: i64) -> Option<i32> {
        self.inner.sandbox(id).map(|p| p.pid)
    }

    /// Whether workspaces get a network here, and how.
    pub fn network(&self) -> &Network {
        &self.inner.isolation.network
    }

    /// The uid a workspace's IDE runs as, if it has its own.
    pub fn uid(&self, id: i64) -> Option<u32> {
        self.inner.isolation.uid(id)
    }
}

impl Inner {
    fn emit(&self, e: RuntimeEvent) {
        let _ = self.events.send(e);
    }

    fn owner(&self, id: i64) -> Option<u32> {
        self.isolation.uid(id)
    }

    /// Creates `path` (0700) owned by the workspace's uid. The workspace's own code can write
    /// into its directories, so an existing entry must be a real directory: following a
    /// symlink it planted would chmod/chown a host directory as root.
    fn private_dir(&self, id: i64, path: &Path) -> std::io::Result<()> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{} is not a directory (replaced by the workspace?)",
                        path.display()
                    ),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::DirBuilder::new().mode(0o700).create(path)?;
            }
            Err(e) => return Err(e),
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
        if let Some(uid) = self.owner(id) {
            lchown(path, Some(uid), Some(uid))?;
        }
        Ok(())
    }

    fn make_dirs(&self, id: i64) -> std::io::Result<()> {
        let l = &self.layout;
        self.private_dir(id, &l.workspace(id))?;
        for d in [l.files(id), l.ide(id), l.ide(id).join("home")] {
            self.private_dir(id, &d)?;
        }
        Ok(())
    }

    async fn healthy(&self, spec: &WorkspaceSpec) -> bool {
        let up = Endpoint::Unix(self.layout.socket(spec.id));
        qingting_gateway::proxy::healthy(&up, &spec.template.health_path).await
    }

    /// Starts the IDE and waits for its health check.
    async fn launch(&self, spec: &WorkspaceSpec) -> Result<Running, RuntimeError> {
        let id = spec.id;
        let l = &self.layout;
        self.make_dirs(id).map_err(err)?;
        let run = l.run_dir(id);
        let _ = fs::remove_dir_all(&run);
        self.private_dir(id, &run).map_err(err)?;
        let procs = self
            .isolation
            .limits
            .prepare(
                self.isolation.slot(id),
                spec.template.memory_mb,
                spec.template.max_processes,
            )
            .map_err(|e| err(format!("cannot set resource limits: {e}")))?;
        let networked = self.isolation.networked(&spec.template);
        if let Network::Firewalled { deny } = &self.isolation.network {
            if networked {
                // Read now: the host's addresses can change while the server runs.
                let rules = network::rules(&network::denied(deny));
                fs::write(l.firewall(id), rules)
                    .and_then(|_| {
                        fs::set_permissions(l.firewall(id), fs::Permissions::from_mode(0o644))
                    })
                    .map_err(|e| err(format!("cannot write the workspace's firewall: {e}")))?;
            }
        }
        let cmd = self
            .isolation
            .command(l, &self.editors, &spec.template, id, &procs);
        let (mut child, mut writer) = process::spawn(cmd, &l.log(id), self.log_max_bytes)
            .map_err(|e| err(format!("cannot start the IDE: {e}")))?;
        let proc = child
            .id()
            .and_then(|p| ProcId::of(p as i32))
            .ok_or_else(|| err("the IDE exited at once"))?;
        proc.save(&l.pidfile(id)).map_err(err)?;
        // A preview that looked while the previous sandbox was ending may have kept its holder.
        self.forget_holder(id);
        let deadline = tokio::time::Instant::now() + self.policy.start_timeout;
        // The network comes up while the IDE starts; the workspace is ready when both are.
        let mut network = networked.then(|| {
            let (mark, pidfile) = (run.join(network::READY_MARK), l.net_pidfile(id));
            tokio::spawn(async move { network::attach(proc, &mark, &pidfile, NET_ATTACH).await })
        });
        let failure = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break format!("the IDE exited ({status}) before it was ready");
            }
            if self.healthy(spec).await {
                let attached = match network.take() {
                    None => Ok(()),
                    Some(task) => task.await.unwrap_or_else(|e| Err(e.to_string())),
                };
                match attached {
                    Ok(()) => return Ok(Running::Child(child, proc, writer)),
                    Err(why) => {
                        break format!("the workspace's network could not be set up: {why}")
                    }
                }
            }
            if tokio::time::Instant::now() > deadline {
                break format!(
                    "the IDE did not answer {} within {} s",
                    spec.template.health_path,
                    self.policy.start_timeout.as_secs()
                );
            }
            // A probe of a socket that is not there yet fails in microseconds: polling this
            // often finds the IDE ready within a few milliseconds of its first answer.
            tokio::time::sleep(READY_POLL).await;
        };
        if let Some(task) = network {
            // Its slirp4netns, if it got that far, is recorded and ends with the kill below.
            task.abort();
            let _ = task.await;
        }
        self.kill(id, Some(proc)).await;
        writer.drained(LOG_DRAIN).await;
        Err(err(format!(
            "{failure}. Last output:\n{}",
            layout::log_tail(&l.log(id), 15)
        )))
    }

    /// Kills the IDE's whole tree and forgets its pid and socket.
    async fn kill(&self, id: i64, proc: Option<ProcId>) {
        self.forget_holder(id);
        let proc = proc.or_else(|| ProcId::load(&self.layout.pidfile(id)));
        match proc {
            Some(p) => {
                process::kill_tree(
                    p,
                    self.isolation.limits,
                    self.isolation.slot(id),
                    self.policy.grace,
                )
                .await
            }
            None => process::kill_cgroup(self.isolation.limits, self.isolation.slot(id)).await,
        }
        network::stop(ProcId::load(&self.layout.net_pidfile(id)));
        for f in [
            self.layout.pidfile(id),
            self.layout.net_pidfile(id),
            self.layout.firewall(id),
            self.layout.socket(id),
        ] {
            let _ = fs::remove_file(f);
        }
    }

    fn remember_limit(&self, ws: &WorkspaceSpec) {
        self.memory_mb
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ws.id, ws.template.memory_mb);
    }

    /// The namespace holder a port preview connects through (its pid and start time; a
    /// stale one is refused at connect).
    fn preview_holder(&self, id: i64) -> Option<qingting_gateway::netns::Holder> {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = holders.get(&id) {
            return Some(*h);
        }
        let h = self
            .namespace_holder(id)
            .and_then(qingting_gateway::netns::Holder::of)?;
        holders.insert(id, h);
        Some(h)
    }

    /// The sandbox of a workspace, while it runs (its pid file names a live process).
    fn sandbox(&self, id: i64) -> Option<ProcId> {
        ProcId::load(&self.layout.pidfile(id)).filter(ProcId::alive)
    }

    fn forget_holder(&self, id: i64) {
        self.holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// The process holding a running workspace's namespaces.
    fn namespace_holder(&self, id: i64) -> Option<i32> {
        network::namespace_holder(self.sandbox(id)?.pid)
    }

    fn take(&self, id: i64) -> Option<Supervised> {
        self.supervised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    fn is_up(&self, id: i64) -> bool {
        self.supervised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .is_some_and(Supervised::is_up)
    }
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn provision(&self, ws: &WorkspaceSpec) -> Result<Value, RuntimeError> {
        self.inner.make_dirs(ws.id).map_err(err)?;
        // Everything else (paths, uid, cgroups) follows from the id.
        Ok(json!({}))
    }

    async fn start(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
        if self.inner.is_up(ws.id) {
            return Ok(());
        }
        self.stop(ws, &Value::Null).await?;
        let running = self.inner.launch(ws).await?;
        self.inner.remember_limit(ws);
        let sup = supervisor::supervise(self.inner.clone(), ws.clone(), running);
        self.inner
            .supervised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ws.id, sup);
        Ok(())
    }

    async fn stop(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<(), RuntimeError> {
        match self.inner.take(ws.id) {
            Some(mut sup) => {
                if let Some(tx) = sup.stop.take() {
                    let _ = tx.send(());
                }
                let _ = sup.task.await;
                // The supervisor may have given up already; make sure nothing is left.
                self.inner.kill(ws.id, None).await;
            }
            None => self.inner.kill(ws.id, None).await,
        }
        self.inner
            .isolation
            .limits
            .remove(self.inner.isolation.slot(ws.id));
        self.inner.usage.forget(ws.id);
        self.inner
            .memory_mb
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ws.id);
        Ok(())
    }

    async fn status(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<Observed, RuntimeError> {
        Ok(if self.inner.is_up(ws.id) {
            Observed::Running
        } else if self.inner.layout.workspace(ws.id).is_dir() {
            Observed::Stopped
        } else {
            Observed::Missing
        })
    }

    async fn destroy(&self, ws: &WorkspaceSpec, state: &Value) -> Result<(), RuntimeError> {
        self.stop(ws, state).await?;
        let l = &self.inner.layout;
        for dir in [l.workspace(ws.id), l.run_dir(ws.id)] {
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(format!("cannot remove {}: {e}", dir.display()))),
            }
        }
        let _ = fs::remove_file(l.log(ws.id));
        let _ = fs::remove_file(l.log(ws.id).with_extension("log.1"));
        Ok(())
    }

    fn endpoint(&self, workspace_id: i64, _state: &Value) -> Option<Endpoint> {
        Some(Endpoint::Unix(self.inner.layout.socket(workspace_id)))
    }

    async fn adopt(&self, ws: &WorkspaceSpec, _state: &Value) -> Result<bool, RuntimeError> {
        if self.inner.is_up(ws.id) {
            return Ok(true);
        }
        let proc = self.inner.sandbox(ws.id);
        match proc {
            Some(p) if self.inner.healthy(ws).await => {
                self.inner.remember_limit(ws);
                let sup =
                    supervisor::supervise(self.inner.clone(), ws.clone(), Running::Adopted(p));
                self.inner
                    .supervised
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(ws.id, sup);
                tracing::info!(workspace = ws.id, pid = p.pid, "adopted a running IDE");
                Ok(true)
            }
            _ => {
                self.inner.kill(ws.id, proc).await;
                Ok(false)
            }
        }
    }

    async fn clean_orphans(&self, existing: &HashSet<i64>) -> Result<(), RuntimeError> {
        let l = &self.inner.layout;
        // IDEs nobody supervises (their workspace is not running, or is gone).
        for entry in fs::read_dir(l.run()).map_err(err)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_suffix(".pid")
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            if !self.inner.is_up(id) {
                tracing::warn!(workspace = id, "stopping an IDE no workspace accounts for");
                self.inner.kill(id, None).await;
                self.inner
                    .isolation
                    .limits
                    .remove(self.inner.isolation.slot(id));
            }
        }
        // Directories of workspaces that no longer exist (a crash during delete).
        for entry in fs::read_dir(l.workspaces()).map_err(err)?.flatten() {
            let Ok(id) = entry.file_name().to_string_lossy().parse::<i64>() else {
                continue;
            };
            if !existing.contains(&id) {
                tracing::warn!(workspace = id, "removing the files of a deleted workspace");
                let _ = fs::remove_dir_all(entry.path());
                let _ = fs::remove_dir_all(l.run_dir(id));
            }
        }
        Ok(())
    }

    fn events(&self) -> Option<broadcast::Receiver<RuntimeEvent>> {
        Some(self.inner.events.subscribe())
    }

    fn isolation(&self) -> Value {
        self.inner.isolation.report()
    }

    fn port_endpoint(&self, workspace_id: i64, port: u16) -> Result<Endpoint, String> {
        let iso = &self.inner.isolation;
        if !iso.sandboxed {
            // The IDE shares this host's network: port N would be any service of this host.
            return Err("port previews need the sandbox (the server runs with \
                        --insecure-no-sandbox)"
                .into());
        }
        if !iso.root {
            return Err(
                "port previews need the server to run as root: it connects from \
                        inside the workspace's network namespace"
                    .into(),
            );
        }
        let holder = self
            .inner
            .preview_holder(workspace_id)
            .ok_or("the workspace is not running")?;
        Ok(Endpoint::Namespaced {
            workspace: workspace_id,
            holder,
            port,
        })
    }

    fn usage(&self, workspace_id: i64) -> Option<Usage> {
        let inner = &self.inner;
        if !inner.is_up(workspace_id) {
            return None;
        }
        let sandbox = inner.sandbox(workspace_id)?;
        let (ticks, rss) = usage::tree(sandbox.pid)?;
        let slot = inner.isolation.slot(workspace_id);
        let memory_mb = inner
            .memory_mb
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&workspace_id)
            .copied()
            .unwrap_or(0);
        Some(Usage {
            memory_bytes: inner.isolation.limits.memory_bytes(slot).or(Some(rss)),
            memory_limit_bytes: memory_mb << 20,
            cpu_percent: inner.usage.cpu_percent(workspace_id, ticks),
            disk_bytes: inner
                .usage
                .disk_bytes(workspace_id, &inner.layout.workspace(workspace_id)),
        })
    }

    fn cpu_seconds(&self, workspace_id: i64) -> Option<f64> {
        let sandbox = self.inner.sandbox(workspace_id)?;
        let (ticks, _) = usage::tree(sandbox.pid)?;
        Some(ticks as f64 / usage::ticks_per_second())
    }

    fn listening_ports(&self, workspace_id: i64) -> Vec<u16> {
        if !self.inner.isolation.sandboxed {
            return Vec::new();
        }
        self.inner
            .namespace_holder(workspace_id)
            .map(ports::listening)
            .unwrap_or_default()
    }
}
