//! The IDE's process tree: start it in its own process group, remember it in a pid file that
//! survives a server restart, and kill all of it (group, and whatever escaped into the
//! workspace's cgroup).

use super::limits::LimitMode;
use std::{
    fs,
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

/// A process identified by pid and start time, so a reused pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

impl ProcId {
    pub fn of(pid: i32) -> Option<Self> {
        stat(pid).map(|(_, start)| Self { pid, start })
    }

    /// Still running (not a zombie) and still the same process.
    pub fn alive(&self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, start)| state != 'Z' && state != 'X' && start == self.start)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("pid.tmp");
        fs::write(&tmp, format!("{} {}\n", self.pid, self.start))?;
        fs::rename(tmp, path)
    }

    pub fn load(path: &Path) -> Option<Self> {
        let text = fs::read_to_string(path).ok()?;
        let mut it = text.split_whitespace();
        Some(Self {
            pid: it.next()?.parse().ok()?,
            start: it.next()?.parse().ok()?,
        })
    }
}

/// State (field 3) and start time (field 22) of `/proc/<pid>/stat`, counted after the
/// parenthesised command name, which may itself contain spaces.
fn stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// Starts `cmd` as the leader of a new process group, output appended to `log`.
pub fn spawn(mut cmd: Command, log: &Path) -> std::io::Result<tokio::process::Child> {
    if fs::metadata(log)
        .map(|m| m.len() > 1 << 20)
        .unwrap_or(false)
    {
        let _ = fs::rename(log, log.with_extension("log.1"));
    }
    let out = fs::OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    // Not killed on drop: the IDE outlives a server restart and is adopted again.
    tokio::process::Command::from(cmd)
        .kill_on_drop(false)
        .spawn()
}

fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// SIGTERM to the group, then SIGKILL to the group and to everything left in the
/// workspace's cgroups after `grace`. Returns once the leader is gone.
pub async fn kill_tree(proc: ProcId, limits: LimitMode, slot: u32, grace: Duration) {
    if proc.alive() {
        signal_group(proc.pid, libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while proc.alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        signal_group(proc.pid, libc::SIGKILL);
    }
    kill_cgroup(limits, slot).await;
}

/// SIGKILL to every process in the workspace's cgroups, until they are empty.
pub async fn kill_cgroup(limits: LimitMode, slot: u32) {
    for _ in 0..50 {
        let members = limits.members(slot);
        if members.is_empty() {
            break;
        }
        for pid in members {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_this_process_and_not_a_stranger() {
        let me = ProcId::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(
            !ProcId {
                start: me.start + 1,
                ..me
            }
            .alive(),
            "a reused pid is another process"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.pid");
        me.save(&f).unwrap();
        assert_eq!(ProcId::load(&f), Some(me));
    }
}
