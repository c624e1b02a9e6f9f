//! The sandbox each IDE runs in, and the check of what this host allows.
//!
//! With bubblewrap: new mount, pid, ipc, uts and network namespaces (a workspace's loopback is
//! its own, so it cannot reach another's IDE or this server; the internet, where its template
//! asks for it, comes through a firewall: `network.rs`); `/usr` and `/etc`
//! read-only; the editors read-only; only the workspace's own `files`, `ide` and socket dirs
//! writable; a new session with no controlling terminal (`TIOCSTI` on the operator's terminal,
//! CVE-2017-5226). When the server runs as root, bubblewrap sets up the mounts and the IDE then
//! runs as the workspace's own uid (`uid_base + id`) with no capabilities and
//! `no_new_privs`. Otherwise bubblewrap uses a user namespace in which the IDE is uid
//! `uid_base + id`: it never sees itself as the server's user, but to the host its processes
//! and files still belong to the server's uid (the namespaces are what separate workspaces).

use super::{
    layout::{Layout, SANDBOX_FILES, SANDBOX_IDE, SANDBOX_RUN, SOCKET},
    limits::LimitMode,
    network,
};
use crate::{
    config::NetworkPolicy,
    ip_range::IpRange,
    templates::{self, Template},
};
use serde_json::{json, Value};
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

#[derive(Debug, Clone)]
pub struct Isolation {
    /// bubblewrap is used (false only with `insecure_no_sandbox`).
    pub sandboxed: bool,
    /// The server runs as root (sets up cgroups and drops to a per-workspace uid).
    pub root: bool,
    /// Each workspace runs as `uid_base + id` on the host (needs root).
    pub uid_base: Option<u32>,
    /// `slot_base + id` names a workspace's cgroups (and is its uid when it has its own).
    pub slot_base: u32,
    pub limits: LimitMode,
    pub network: Network,
}

/// Whether workspaces whose template asks for the internet get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Through slirp4netns and the firewall, refusing these ranges.
    Firewalled { deny: Vec<IpRange> },
    /// Not on this host, and why.
    Off(String),
    /// No sandbox: the IDE shares the server's network (`insecure_no_sandbox`).
    Host,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot isolate workspaces on this host: {0}. Install bubblewrap (`apt-get install \
     bubblewrap`) and allow user namespaces, or start with --insecure-no-sandbox to run IDEs \
     without isolation (never on a shared machine)."
)]
pub struct NoSandbox(pub String);

/// PATH inside the sandbox (the host's /usr).
const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

const NAMESPACES: [&str; 5] = ["mount", "pid", "ipc", "uts", "net"];

impl Isolation {
    /// Checks what this host allows. Without a working bubblewrap this fails unless
    /// `insecure` is set.
    pub fn detect(
        insecure: bool,
        uid_base: u32,
        policy: NetworkPolicy,
        deny: &[IpRange],
    ) -> Result<Self, NoSandbox> {
        let root = unsafe { libc::geteuid() } == 0;
        let limits = if root {
            LimitMode::detect()
        } else {
            LimitMode::Rlimit
        };
        if insecure {
            return Ok(Self {
                sandboxed: false,
                root,
                uid_base: None,
                slot_base: uid_base,
                limits,
                network: Network::Host,
            });
        }
        let mut probe = Command::new("bwrap");
        base_args(&mut probe, root);
        probe.args(["--", "/usr/bin/true"]);
        match probe.output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(NoSandbox(format!(
                    "bwrap failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )))
            }
            Err(e) => return Err(NoSandbox(format!("bwrap not found ({e})"))),
        }
        if root && !setpriv_available() {
            // bubblewrap keeps every capability of a root caller: the IDE would be root.
            return Err(NoSandbox(
                "the server runs as root but `setpriv` (util-linux) is missing, so IDEs could \
                 not drop to their own uid"
                    .into(),
            ));
        }
        let network = match policy {
            NetworkPolicy::None => Network::Off("turned off by the operator".into()),
            NetworkPolicy::Template => match probe_firewall(root, deny) {
                Ok(()) => Network::Firewalled {
                    deny: deny.to_vec(),
                },
                Err(why) => {
                    tracing::warn!("workspaces will have no network: {why}");
                    Network::Off(why)
                }
            },
        };
        Ok(Self {
            sandboxed: true,
            root,
            uid_base: root.then_some(uid_base),
            slot_base: uid_base,
            limits,
            network,
        })
    }

    /// Whether workspaces of `template` get the internet.
    pub fn networked(&self, template: &Template) -> bool {
        template.network == templates::Network::Internet
            && matches!(self.network, Network::Firewalled { .. })
    }

    /// For `/healthz` and the start-up log.
    pub fn report(&self) -> Value {
        json!({
            "sandbox": if self.sandboxed { "bubblewrap" } else { "none (--insecure-no-sandbox)" },
            "namespaces": if self.sandboxed { NAMESPACES.to_vec() } else { Vec::new() },
            "users": match self.uid_base {
                Some(b) => format!("one uid per workspace ({b} + id), no capabilities, no_new_privs"),
                None if self.sandboxed => format!(
                    "uid {} + id inside a user namespace; the server's own uid on the host",
                    self.slot_base
                ),
                None => "the server's own uid".to_string(),
            },
            "session": if self.sandboxed {
                "new session, no controlling terminal (bwrap --new-session, setsid)"
            } else {
                "new session, no controlling terminal (setsid)"
            },
            "limits": self.limits.describe(),
            "network": match &self.network {
                Network::Firewalled { deny } => json!({
                    "mode": "internet where the template asks (slirp4netns), firewalled",
                    "refused": network::ALWAYS_DENIED
                        .iter()
                        .map(ToString::to_string)
                        .chain(["the host's own addresses".to_string()])
                        .chain(deny.iter().map(ToString::to_string))
                        .collect::<Vec<_>>(),
                }),
                Network::Off(why) => json!({ "mode": "none", "why": why }),
                Network::Host => json!({ "mode": "the server's own network (no sandbox)" }),
            },
        })
    }

    pub fn slot(&self, id: i64) -> u32 {
        self.slot_base + id as u32
    }

    pub fn uid(&self, id: i64) -> Option<u32> {
        self.uid_base.map(|b| b + id as u32)
    }

    /// The full command line that runs `template`'s IDE for workspace `id`: joins the
    /// cgroups (`cgroup_procs`), enters the sandbox, drops to the workspace's uid.
    pub fn command(
        &self,
        layout: &Layout,
        editors: &Path,
        template: &Template,
        id: i64,
        cgroup_procs: &[PathBuf],
    ) -> Command {
        // A shell joins the cgroups first, so nothing the IDE starts is ever outside them.
        let mut join = String::new();
        for p in cgroup_procs {
            join.push_str(&format!("echo $$ > '{}' && ", p.display()));
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &format!("{join}exec \"$@\""), "qingting-ide"]);

        let (files, ide, socket) = if self.sandboxed {
            (
                PathBuf::from(SANDBOX_FILES),
                PathBuf::from(SANDBOX_IDE),
                PathBuf::from(SANDBOX_RUN).join(SOCKET),
            )
        } else {
            (layout.files(id), layout.ide(id), layout.socket(id))
        };
        let networked = self.sandboxed && self.networked(template);
        if self.sandboxed {
            cmd.arg("bwrap");
            base_args(&mut cmd, self.root);
            if !self.root {
                // The only uid the namespace maps: the IDE is never the server's uid inside.
                let inside = self.slot(id).to_string();
                cmd.args(["--uid", &inside, "--gid", &inside]);
                if networked {
                    // For the firewall only: dropped before the IDE starts (below).
                    cmd.args(["--cap-add", "CAP_NET_ADMIN"]);
                }
            }
            let mut made: Vec<PathBuf> = Vec::new();
            for dir in read_only_dirs(editors) {
                for parent in parents(&dir) {
                    if !made.contains(&parent) {
                        cmd.args(["--perms", "0755", "--dir"]).arg(&parent);
                        made.push(parent);
                    }
                }
                cmd.arg("--ro-bind").arg(&dir).arg(&dir);
            }
            cmd.arg("--bind").arg(layout.files(id)).arg(SANDBOX_FILES);
            cmd.arg("--bind").arg(layout.ide(id)).arg(SANDBOX_IDE);
            cmd.args(["--perms", "0755", "--dir", "/run"]);
            cmd.arg("--bind").arg(layout.run_dir(id)).arg(SANDBOX_RUN);
            if networked {
                cmd.arg("--ro-bind")
                    .arg(layout.firewall(id))
                    .arg(network::RULES_IN_SANDBOX);
                let resolv = resolv_conf_path();
                for parent in parents(&resolv) {
                    if !parent.starts_with("/etc") && !parent.starts_with("/usr") {
                        cmd.args(["--dir"]).arg(parent);
                    }
                }
                cmd.arg("--ro-bind").arg(layout.resolv_conf()).arg(&resolv);
            }
            cmd.args([
                "--chdir",
                SANDBOX_FILES,
                "--hostname",
                "workspace",
                "--clearenv",
            ]);
            for (k, v) in qingting_gateway::ide::env(&ide, SANDBOX_PATH) {
                cmd.arg("--setenv").arg(k).arg(v);
            }
            cmd.arg("--");
            if networked {
                // The rules are in force before anything of the workspace runs, and the mark
                // tells the server to connect the namespace only then.
                cmd.args([
                    "/bin/sh",
                    "-c",
                    &format!(
                        "PATH=/usr/sbin:/sbin:/usr/bin:/bin nft -f {rules} || {{ echo 'qingting: cannot load the workspace firewall' >&2; exit 97; }}; \
                         : > {SANDBOX_RUN}/{mark} && exec \"$@\"",
                        rules = network::RULES_IN_SANDBOX,
                        mark = network::READY_MARK,
                    ),
                    "qingting-net",
                ]);
            }
            // One drop of privileges before the IDE: as root to the workspace's own uid; as
            // anyone, every capability the sandbox held for the firewall.
            let uid = self.uid(id);
            if uid.is_some() || networked {
                cmd.arg("setpriv");
                if let Some(uid) = uid {
                    cmd.arg(format!("--reuid={uid}"))
                        .arg(format!("--regid={uid}"))
                        .arg("--clear-groups");
                }
                cmd.args([
                    "--inh-caps=-all",
                    "--ambient-caps=-all",
                    "--bounding-set=-all",
                    "--no-new-privs",
                    "--",
                ]);
            }
        } else {
            cmd.env_clear();
            cmd.envs(qingting_gateway::ide::env(&ide, SANDBOX_PATH));
            cmd.current_dir(layout.files(id));
        }
        if self.limits == LimitMode::Rlimit {
            cmd.arg("prlimit");
            cmd.args(super::limits::rlimit_args(template));
            cmd.arg("--");
        }
        cmd.args(template.argv(editors, &files, &ide, &socket));
        cmd
    }
}

/// Whether a sandbox here can load a firewall into its own network namespace and then give
/// up the capability to change it (what every networked workspace does at start).
fn probe_firewall(root: bool, deny: &[IpRange]) -> Result<(), String> {
    for tool in ["slirp4netns", "nft", "setpriv"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!(
                "`{tool}` is missing (apt-get install slirp4netns nftables util-linux)"
            ));
        }
    }
    let mut probe = Command::new("bwrap");
    base_args(&mut probe, root);
    if !root {
        probe.args([
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--cap-add",
            "CAP_NET_ADMIN",
        ]);
    }
    probe.args(["--", "nft", "-f", "-"]);
    let mut child = probe
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run bwrap: {e}"))?;
    // The operator's ranges too: a list nft refuses fails here, not at every start.
    let rules = network::rules(&network::denied(deny));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(rules.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "this host does not let a sandbox load its firewall ({}){}",
            String::from_utf8_lossy(&out.stderr).trim(),
            if root {
                ""
            } else {
                "; running the server as root gives workspaces their network"
            }
        ))
    }
}

/// Where the sandbox's resolver configuration goes: `/etc/resolv.conf`, or the file it links
/// to (systemd-resolved's stub), since bubblewrap binds through links.
fn resolv_conf_path() -> PathBuf {
    let etc = Path::new("/etc/resolv.conf");
    match std::fs::symlink_metadata(etc) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(etc).unwrap_or(etc.into()),
        _ => etc.into(),
    }
}

fn setpriv_available() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Namespaces, the session and the read-only system.
fn base_args(cmd: &mut Command, root: bool) {
    if !root {
        cmd.arg("--unshare-user");
    }
    cmd.args([
        "--new-session",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]);
    cmd.args(["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]);
    for (link, target) in [
        ("/bin", "usr/bin"),
        ("/sbin", "usr/sbin"),
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
    ] {
        cmd.args(["--symlink", target, link]);
    }
    // /tmp as everywhere: anyone may create files, only their owner removes them.
    cmd.args([
        "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp",
    ]);
}

/// The editors, and the Python a virtualenv under them points at (`pyvenv.cfg`'s `home`),
/// unless that is already under `/usr`.
fn read_only_dirs(editors: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![editors.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(editors) {
        for e in entries.flatten() {
            let cfg = std::fs::read_to_string(e.path().join("pyvenv.cfg")).unwrap_or_default();
            let home = cfg.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "home").then(|| PathBuf::from(v.trim()))
            });
            // `home` is the interpreter's bin dir; its prefix holds the standard library.
            if let Some(prefix) = home.as_deref().and_then(Path::parent) {
                if !prefix.starts_with("/usr")
                    && prefix.is_absolute()
                    && !dirs.iter().any(|d| prefix.starts_with(d))
                {
                    dirs.push(prefix.to_path_buf());
                }
            }
        }
    }
    dirs
}

/// `/a/b/c` → `/a`, `/a/b` (bubblewrap would create them 0700).
fn parents(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dir
        .ancestors()
        .skip(1)
        .filter(|p| p.parent().is_some())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_listed_outermost_first() {
        assert_eq!(
            parents(Path::new("/a/b/c")),
            vec![PathBuf::from("/a"), PathBuf::from("/a/b")]
        );
        assert!(parents(Path::new("/a")).is_empty());
    }

    #[test]
    fn venv_interpreters_are_made_visible() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("jupyter")).unwrap();
        std::fs::write(
            dir.path().join("jupyter/pyvenv.cfg"),
            "home = /opt/py/3.11/bin\nversion = 3.11\n",
        )
        .unwrap();
        let dirs = read_only_dirs(dir.path());
        assert_eq!(
            dirs,
            vec![dir.path().to_path_buf(), PathBuf::from("/opt/py/3.11")]
        );
    }
}
