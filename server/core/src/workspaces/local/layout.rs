//! Where a local workspace's things live on disk:
//!
//! ```text
//! <data>/workspaces/<id>/files   the user's files (the IDE's folder)       kept on stop
//! <data>/workspaces/<id>/ide     extensions, settings, Jupyter config, HOME  kept on stop
//! <data>/run/<id>/ide.sock       the IDE's socket; the dir is the workspace's own, 0700,
//!                                inside <data>/run (0711), so no workspace can list or
//!                                reach another's socket
//! <data>/run/<id>.pid            pid and start time of the sandbox (not writable by it)
//! <data>/run/<id>.net.pid        the same for its slirp4netns (when it has a network)
//! <data>/run/<id>.nft            its firewall, read-only inside the sandbox
//! <data>/run/resolv.conf         the DNS configuration every workspace sees
//! <data>/logs/ws-<id>.log        the IDE's output (0600), rotated to ws-<id>.log.1
//! ```

use std::path::{Path, PathBuf};

/// The socket's name inside the run dir.
pub const SOCKET: &str = "ide.sock";

/// Paths inside the sandbox; the template's placeholders are filled with these.
pub const SANDBOX_FILES: &str = "/workspace";
pub const SANDBOX_IDE: &str = "/ide";
pub const SANDBOX_RUN: &str = "/run/qingting";

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.to_path_buf(),
        }
    }

    pub fn workspaces(&self) -> PathBuf {
        self.root.join("workspaces")
    }
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn workspace(&self, id: i64) -> PathBuf {
        self.workspaces().join(id.to_string())
    }
    pub fn files(&self, id: i64) -> PathBuf {
        self.workspace(id).join("files")
    }
    pub fn ide(&self, id: i64) -> PathBuf {
        self.workspace(id).join("ide")
    }
    pub fn run_dir(&self, id: i64) -> PathBuf {
        self.run().join(id.to_string())
    }
    pub fn socket(&self, id: i64) -> PathBuf {
        self.run_dir(id).join(SOCKET)
    }
    pub fn pidfile(&self, id: i64) -> PathBuf {
        self.run().join(format!("{id}.pid"))
    }
    pub fn net_pidfile(&self, id: i64) -> PathBuf {
        self.run().join(format!("{id}.net.pid"))
    }
    pub fn firewall(&self, id: i64) -> PathBuf {
        self.run().join(format!("{id}.nft"))
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.run().join("resolv.conf")
    }
    pub fn log(&self, id: i64) -> PathBuf {
        self.logs().join(format!("ws-{id}.log"))
    }
}

/// The last `lines` lines of a log file (at most its last 8 KiB), continued from the
/// rotated `.1` file when the current one is short, for failure reasons.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let mut all = tail_lines(path);
    if all.len() < lines {
        let mut older = tail_lines(&path.with_extension("log.1"));
        older.append(&mut all);
        all = older;
    }
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn tail_lines(path: &Path) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_continues_from_the_rotated_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ws-1.log");
        std::fs::write(log.with_extension("log.1"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(&log, "four\n").unwrap();
        assert_eq!(log_tail(&log, 2), "three\nfour");
        assert_eq!(log_tail(&log, 1), "four");
        assert_eq!(log_tail(&dir.path().join("none.log"), 3), "");
    }
}
