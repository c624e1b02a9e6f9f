//! The IDE's process tree: start it in its own session, its output going through a capped
//! log writer, remember it in a pid file that survives a server restart, and kill all of it
//! (group, and whatever escaped into the workspace's cgroup).

use super::limits::LimitMode;
use std::{
    fs,
    os::unix::{
        fs::{OpenOptionsExt, PermissionsExt},
        process::CommandExt,
    },
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
        Stat::of(pid).map(|s| Self {
            pid,
            start: s.start,
        })
    }

    /// Still running (not a zombie) and still the same process.
    pub fn alive(&self) -> bool {
        Stat::of(self.pid).is_some_and(|s| s.running() && s.start == self.start)
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

/// The fields of `/proc/<pid>/stat` this module needs: state (field 3), parent (4), process
/// group (5) and start time (22), counted after the parenthesised command name, which may
/// itself contain spaces.
struct Stat {
    state: char,
    ppid: i32,
    pgrp: i32,
    start: u64,
}

impl Stat {
    fn of(pid: i32) -> Option<Self> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        let pgrp = fields.next()?.parse().ok()?;
        let start = fields.nth(16)?.parse().ok()?;
        Some(Self {
            state,
            ppid,
            pgrp,
            start,
        })
    }

    fn running(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }

    fn all() -> impl Iterator<Item = Stat> {
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter_map(Stat::of)
    }
}

/// Copies the IDE's output (stdin) into its log; when the next block would take the log past
/// `max` bytes it becomes `<log>.1` (replacing the previous one) and a new log starts, so an
/// IDE that writes without end holds at most two files of `max` bytes. A separate process
/// rather than a task of this server: the IDE outlives a server restart, and so must the
/// reader of its output. POSIX `dd` with `bs` writes each read as it comes (nothing waits
/// in a buffer, unlike `head -c`); a round ends after `count` reads, and fewer records than
/// that means the input ended. `LC_ALL=C` keeps its record counts parseable.
const LOG_WRITER: &str = r#"log=$1 max=$2 block=4096
size() { { wc -c < "$log"; } 2>/dev/null || echo 0; }
while :; do
  room=$((max - $(size)))
  if [ "$room" -lt "$block" ]; then
    mv -f "$log" "$log.1" || exit 1
    room=$max
  fi
  blocks=$((room / block))
  stats=$(dd bs="$block" count="$blocks" 2>&1 >>"$log") || exit 1
  records=${stats%% records in*}
  [ $((${records##*[!0-9+]})) -ge "$blocks" ] || exit 0
done"#;

/// The process that writes an IDE's log; it ends once every process holding the IDE's
/// output has exited.
pub struct LogWriter(Box<tokio::process::Child>);

impl LogWriter {
    /// Waits (at most `limit`) until everything the IDE wrote is in its log.
    pub async fn drained(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.0.wait()).await;
    }
}

/// Makes the calling (just forked) process the leader of a new session with no
/// controlling terminal: nothing it starts can reach the terminal the server runs in
/// (`TIOCSTI`, CVE-2017-5226), and Ctrl-C there does not reach it.
fn new_session() -> std::io::Result<()> {
    if unsafe { libc::setsid() } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Starts `cmd` as the leader of a new session (so also of a new process group), stdin
/// from `/dev/null`, output through a [`LogWriter`] into `log` (0600, capped at
/// `log_max_bytes` per file).
pub fn spawn(
    mut cmd: Command,
    log: &Path,
    log_max_bytes: u64,
) -> std::io::Result<(tokio::process::Child, LogWriter)> {
    private_file(log)?;
    let (writer, output) = log_writer(log, log_max_bytes)?;
    cmd.stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output);
    unsafe {
        cmd.pre_exec(|| {
            new_session()?;
            // The server's own umask is 077; workspace files get the usual permissions.
            libc::umask(0o022);
            Ok(())
        });
    }
    // Not killed on drop: the IDE outlives a server restart and is adopted again.
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(false)
        .spawn()?;
    Ok((child, writer))
}

/// Creates `path` readable by the server only, or makes an existing one so.
fn private_file(path: &Path) -> std::io::Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

/// Starts the writer of `log`; returns it and the pipe end the IDE writes to.
fn log_writer(log: &Path, max_bytes: u64) -> std::io::Result<(LogWriter, std::io::PipeWriter)> {
    let (read, write) = std::io::pipe()?;
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", LOG_WRITER, "qingting-log"])
        .arg(log)
        .arg(max_bytes.max(4096).to_string())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .stdin(read)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    unsafe {
        cmd.pre_exec(|| {
            new_session()?;
            libc::umask(0o077);
            Ok(())
        });
    }
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(false)
        .spawn()?;
    Ok((LogWriter(Box::new(child)), write))
}

fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// The children of `pid`, whichever of its threads started them (the kernel lists them per
/// thread in `/proc/<pid>/task/<tid>/children`).
pub fn children(pid: i32) -> Vec<i32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// The process groups of the tree we started as `pid`: its own, and those of its children,
/// since bubblewrap's `--new-session` puts the sandbox in a session (so a group) of its
/// own. SIGKILL to the sandbox's first process ends its whole pid namespace.
fn groups(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    for s in Stat::all().filter(|s| s.ppid == pid) {
        if !out.contains(&s.pgrp) {
            out.push(s.pgrp);
        }
    }
    out
}

fn any_running(groups: &[i32]) -> bool {
    Stat::all().any(|s| groups.contains(&s.pgrp) && s.running())
}

/// SIGKILL to the tree started as `pid`, at once (no grace, no cgroups).
pub fn kill_now(pid: i32) {
    for g in groups(pid) {
        signal_group(g, libc::SIGKILL);
    }
}

/// SIGTERM to the tree's groups, then after `grace` (or once they are gone) SIGKILL to
/// them and to everything left in the workspace's cgroups.
pub async fn kill_tree(proc: ProcId, limits: LimitMode, slot: u32, grace: Duration) {
    if proc.alive() {
        let groups = groups(proc.pid);
        for g in &groups {
            signal_group(*g, libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while any_running(&groups) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for g in &groups {
            signal_group(*g, libc::SIGKILL);
        }
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
