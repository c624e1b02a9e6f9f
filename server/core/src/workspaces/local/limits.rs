//! Memory and process-count limits: a cgroup per workspace where this host lets us create
//! one (v2, or v1's memory and pids controllers; needs root), otherwise rlimits set inside
//! the sandbox: `RLIMIT_NPROC` (counted per user and user namespace, so per workspace) and
//! `RLIMIT_DATA` per process.
//!
//! `RLIMIT_DATA` rather than `RLIMIT_AS`: node (code-server) and every WebAssembly memory
//! reserve many GiB of address space they never touch, so an address-space limit low enough
//! to matter stops them (`WebAssembly.Memory()` fails under a 2 GiB `RLIMIT_AS`), while
//! `RLIMIT_DATA` counts only writable private memory and leaves reservations alone.

use crate::templates::Template;
use std::{fs, path::PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitMode {
    CgroupV2,
    CgroupV1,
    Rlimit,
}

const V2_ROOT: &str = "/sys/fs/cgroup";
const GROUP: &str = "qingting";

impl LimitMode {
    pub fn detect() -> Self {
        if probe_v2() {
            Self::CgroupV2
        } else if probe_v1() {
            Self::CgroupV1
        } else {
            Self::Rlimit
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup v2 (memory.max, pids.max)",
            Self::CgroupV1 => "cgroup v1 (memory, pids)",
            Self::Rlimit => {
                "rlimit (processes per workspace; data memory per process, not per workspace)"
            }
        }
    }

    /// The cgroup directories of one workspace slot (`uid_base + id`, unique per server
    /// and workspace; empty for rlimits).
    pub fn dirs(self, slot: u32) -> Vec<PathBuf> {
        let leaf = format!("ws-{slot}");
        match self {
            Self::CgroupV2 => vec![PathBuf::from(V2_ROOT).join(GROUP).join(leaf)],
            Self::CgroupV1 => ["memory", "pids"]
                .iter()
                .map(|c| PathBuf::from(V2_ROOT).join(c).join(GROUP).join(&leaf))
                .collect(),
            Self::Rlimit => Vec::new(),
        }
    }

    /// Creates the workspace's cgroups with its limits; returns the `cgroup.procs` files the
    /// sandbox must join before it starts anything.
    pub fn prepare(
        self,
        slot: u32,
        memory_mb: u64,
        max_processes: u32,
    ) -> std::io::Result<Vec<PathBuf>> {
        let bytes = (memory_mb * 1024 * 1024).to_string();
        let pids = max_processes.to_string();
        let mut procs = Vec::new();
        for dir in self.dirs(slot) {
            fs::create_dir_all(&dir)?;
            match self {
                Self::CgroupV2 => {
                    fs::write(dir.join("memory.max"), &bytes)?;
                    fs::write(dir.join("pids.max"), &pids)?;
                }
                Self::CgroupV1 if dir.starts_with(format!("{V2_ROOT}/memory")) => {
                    fs::write(dir.join("memory.limit_in_bytes"), &bytes)?;
                }
                Self::CgroupV1 => fs::write(dir.join("pids.max"), &pids)?,
                Self::Rlimit => {}
            }
            procs.push(dir.join("cgroup.procs"));
        }
        Ok(procs)
    }

    /// Every process in the workspace's cgroups (to kill what escaped its process group).
    pub fn members(self, slot: u32) -> Vec<i32> {
        self.dirs(slot)
            .iter()
            .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    }

    /// Memory the workspace's cgroup holds now (`None` without cgroups).
    pub fn memory_bytes(self, slot: u32) -> Option<u64> {
        let file = match self {
            Self::CgroupV2 => "memory.current",
            Self::CgroupV1 => "memory.usage_in_bytes",
            Self::Rlimit => return None,
        };
        let dir = self.memory_dir(slot)?;
        fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
    }

    /// How many times the kernel killed a process of the workspace for its memory limit
    /// since its cgroup was made (`None` without cgroups).
    pub fn oom_kills(self, slot: u32) -> Option<u64> {
        let file = match self {
            Self::CgroupV2 => "memory.events",
            Self::CgroupV1 => "memory.oom_control",
            Self::Rlimit => return None,
        };
        let text = fs::read_to_string(self.memory_dir(slot)?.join(file)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    }

    fn memory_dir(self, slot: u32) -> Option<PathBuf> {
        self.dirs(slot)
            .into_iter()
            .find(|d| self == Self::CgroupV2 || d.starts_with(format!("{V2_ROOT}/memory")))
    }

    /// Removes the (empty) cgroups.
    pub fn remove(self, slot: u32) {
        for d in self.dirs(slot) {
            let _ = fs::remove_dir(d);
        }
    }
}

/// `prlimit` options for a workspace without cgroups: its process count, and the template's
/// memory as every process's data limit (soft and hard, so the workspace cannot raise it).
pub fn rlimit_args(template: &Template) -> [String; 2] {
    let bytes = template.memory_mb.saturating_mul(1024 * 1024);
    [
        format!("--nproc={}", template.max_processes),
        format!("--data={bytes}"),
    ]
}

/// How many IDEs this host runs at once when the operator did not say: one per GiB of
/// memory (an idle code-server or JupyterLab needs a few hundred MiB), at least one.
pub fn default_max_running() -> u64 {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    (mem_total_kib(&meminfo).unwrap_or(0) >> 20).max(1)
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let v = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    v.trim().trim_end_matches("kB").trim().parse().ok()
}

fn probe_v2() -> bool {
    let controllers =
        fs::read_to_string(format!("{V2_ROOT}/cgroup.controllers")).unwrap_or_default();
    if !(controllers.contains("memory") && controllers.contains("pids")) {
        return false;
    }
    let group = PathBuf::from(V2_ROOT).join(GROUP);
    // Our parent must delegate memory and pids to its children.
    fs::create_dir_all(&group).is_ok()
        && fs::write(group.join("cgroup.subtree_control"), "+memory +pids").is_ok()
}

fn probe_v1() -> bool {
    ["memory", "pids"].iter().all(|c| {
        let probe = PathBuf::from(V2_ROOT).join(c).join(GROUP).join("probe");
        let ok = fs::create_dir_all(&probe).is_ok() && probe.join("cgroup.procs").exists();
        let _ = fs::remove_dir(&probe);
        ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_total_is_read_from_meminfo() {
        let text = "MemTotal:       24684012 kB\nMemFree:        21441436 kB\n";
        assert_eq!(mem_total_kib(text), Some(24_684_012));
        assert_eq!(mem_total_kib("garbage"), None);
        assert!(default_max_running() >= 1);
    }
}
