//! What a running workspace uses, for its card and for idle stop: memory (its cgroup, or
//! the resident memory of its processes without one), CPU (the time all its processes used,
//! from `/proc`), and the disk its files and IDE data take (walked in the background at most
//! once a minute: a big `node_modules` takes a while).

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// How old a disk figure may get before it is walked again.
const DISK_EVERY: Duration = Duration::from_secs(60);
/// A CPU figure is an average over at least this long.
const CPU_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Sampler {
    cpu: Mutex<HashMap<i64, CpuSample>>,
    disk: Arc<Mutex<HashMap<i64, DiskSample>>>,
}

#[derive(Debug, Clone, Copy)]
struct CpuSample {
    ticks: u64,
    at: Instant,
    percent: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct DiskSample {
    bytes: Option<u64>,
    at: Instant,
    walking: bool,
}

/// The CPU time (clock ticks) and resident memory (bytes) of `root` and everything under it.
pub fn tree(root: i32) -> Option<(u64, u64)> {
    let page = page_size();
    let mut ticks = 0u64;
    let mut rss = 0u64;
    let mut todo = vec![root];
    let mut seen = 0;
    while let Some(pid) = todo.pop() {
        seen += 1;
        if seen > 100_000 {
            break;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime (fields 14-17), rss in pages (24).
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += n(11) + n(12) + n(13) + n(14);
        rss += n(21) * page;
        todo.extend(super::process::children(pid));
    }
    (seen > 0).then_some((ticks, rss))
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

impl Sampler {
    /// The share of one core workspace `id` used lately (percent; over 100 with several
    /// cores busy), given its CPU time now.
    pub fn cpu_percent(&self, id: i64, ticks: u64) -> Option<f64> {
        let now = Instant::now();
        let mut map = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry(id).or_insert(CpuSample {
            ticks,
            at: now,
            percent: None,
        });
        let elapsed = now.duration_since(s.at);
        if elapsed >= CPU_WINDOW {
            let used = ticks.saturating_sub(s.ticks) as f64 / ticks_per_second();
            s.percent = Some(used / elapsed.as_secs_f64() * 100.0);
            s.ticks = ticks;
            s.at = now;
        }
        s.percent
    }

    /// The disk `dir` takes, as last walked; walks it again in the background when that is
    /// older than a minute.
    pub fn disk_bytes(&self, id: i64, dir: &Path) -> Option<u64> {
        let mut map = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry(id).or_insert(DiskSample {
            bytes: None,
            at: Instant::now(),
            walking: false,
        });
        let stale = s.bytes.is_none() || s.at.elapsed() >= DISK_EVERY;
        if stale && !s.walking {
            s.walking = true;
            let (disk, dir) = (self.disk.clone(), dir.to_path_buf());
            let spawned = std::thread::Builder::new()
                .name("disk-usage".into())
                .spawn(move || {
                    let bytes = du(&dir);
                    let mut map = disk.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(s) = map.get_mut(&id) {
                        *s = DiskSample {
                            bytes: Some(bytes),
                            at: Instant::now(),
                            walking: false,
                        };
                    }
                });
            if spawned.is_err() {
                s.walking = false;
            }
        }
        s.bytes
    }

    /// Forgets a workspace that stopped.
    pub fn forget(&self, id: i64) {
        self.cpu
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// The disk blocks under `dir`, on its file system only, and never through a link. The
/// workspace writes here while this (root) server walks, so a directory swapped for a link to
/// `/` between two steps must not be followed: each directory is opened relative to the
/// already-open parent (`/proc/self/fd/N/<name>`) with `O_NOFOLLOW | O_DIRECTORY`, so no
/// name is ever resolved again from the top.
pub fn du(dir: &Path) -> u64 {
    use std::os::unix::{fs::OpenOptionsExt, io::AsRawFd};
    let open_dir = |path: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    let Ok(top) = open_dir(dir) else {
        return 0;
    };
    let Ok(device) = top.metadata().map(|m| m.dev()) else {
        return 0;
    };
    let mut total = 0u64;
    let mut entries = 0usize;
    let mut todo = vec![top];
    while let Some(d) = todo.pop() {
        let here = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd()));
        let Ok(list) = std::fs::read_dir(&here) else {
            continue;
        };
        for e in list.flatten() {
            entries += 1;
            if entries > MAX_ENTRIES {
                return total;
            }
            let path = here.join(e.file_name());
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            total += m.blocks() * 512;
            if m.file_type().is_dir() && m.dev() == device {
                if let Ok(sub) = open_dir(&path) {
                    // Still the directory just measured, not something swapped in since.
                    if sub
                        .metadata()
                        .is_ok_and(|s| s.ino() == m.ino() && s.dev() == device)
                    {
                        todo.push(sub);
                    }
                }
            }
        }
    }
    total
}

/// A walk stops counting here (a figure for the card, not an audit).
const MAX_ENTRIES: usize = 2_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let (ticks, rss) = tree(std::process::id() as i32).unwrap();
        assert!(rss > 1 << 20, "{rss}");
        let s = Sampler::default();
        assert_eq!(s.cpu_percent(1, ticks), None);
        let _ = ticks;
    }

    #[test]
    fn disk_use_counts_files_and_not_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 64 * 1024]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![1u8; 64 * 1024]).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("usr")).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("sub/usr")).unwrap();
        let n = du(dir.path());
        assert!((128 * 1024..1 << 20).contains(&n), "{n}");
        // A link as the top itself is not followed either.
        assert_eq!(du(&dir.path().join("usr")), 0);
    }
}
