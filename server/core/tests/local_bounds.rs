//! What code in a local workspace cannot do to the host, and how far it can grow: it has no
//! controlling terminal (no `TIOCSTI` into the operator's terminal, even when the server runs
//! under one); without root it is not the server's uid inside its sandbox and its memory is
//! limited; its log is capped while it runs; and the host refuses starts beyond its cap.
//!
//! Two tests need a process of their own (a pseudo-terminal as controlling terminal, a
//! non-root user): they run an `#[ignore]`d test of this binary in a child process and read
//! what it printed.

use qingting_core::{
    accounts::{self, Account},
    templates,
    testing::{install_test_ide, sandbox_available, unix_http, Backend, IdeReaper, TestDatabase},
    workspaces::{
        local::{LocalOptions, LocalRuntime, Policy},
        runtime::{fake::FakeRuntime, Observed, Runtime, WorkspaceSpec},
        WorkspaceLimits, WorkspaceService, WorkspaceState,
    },
};
use serde_json::{json, Value};
use std::{
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{fs::PermissionsExt, process::CommandExt},
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

const PROBE_IDE: &str = include_str!("fixtures/probe_ide.py");
/// Marks the line a child test prints its findings on.
const RESULT: &str = "PROBE-RESULT ";

/// A local runtime over a fresh data dir with the probe IDE installed.
struct Bench {
    rt: LocalRuntime,
    editors: PathBuf,
    _reaper: IdeReaper,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new(uid_base: u32, log_max_bytes: u64, insecure_no_sandbox: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let editors = dir.path().join("editors");
        install_test_ide(&editors);
        let probe = editors.join("test-ide/probe_ide.py");
        std::fs::write(&probe, PROBE_IDE).unwrap();
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o644)).unwrap();
        let rt = LocalRuntime::new(LocalOptions {
            network: Default::default(),
            network_deny: Vec::new(),
            data_dir: dir.path().join("data"),
            editors_dir: editors.clone(),
            insecure_no_sandbox,
            uid_base,
            policy: Policy {
                grace: Duration::from_millis(500),
                ..Policy::default()
            },
            log_max_bytes,
        })
        .unwrap();
        Self {
            rt,
            _reaper: IdeReaper(dir.path().join("data")),
            editors,
            _dir: dir,
        }
    }

    /// Starts workspace `id` with the probe IDE in `mode` (see `fixtures/probe_ide.py`).
    async fn start(&self, id: i64, mode: &str) -> WorkspaceSpec {
        let mut template = install_test_ide(&self.editors);
        template.command = vec![
            "/usr/bin/python3".into(),
            "{editors}/test-ide/probe_ide.py".into(),
            mode.into(),
            "{socket}".into(),
            "{files}".into(),
        ];
        let ws = WorkspaceSpec {
            id,
            owner_id: 1,
            owner: "alice".into(),
            name: format!("ws{id}"),
            template,
        };
        let st = self.rt.provision(&ws).await.unwrap();
        self.rt.start(&ws, &st).await.unwrap();
        ws
    }

    fn probe(&self, id: i64) -> Value {
        let text = std::fs::read_to_string(self.rt.layout().files(id).join("probe.json"))
            .expect("the probe wrote its report before the IDE answered");
        serde_json::from_str(&text).unwrap()
    }
}

/// Runs the ignored test `name` of this binary in a child process prepared by `setup`;
/// returns what it printed on its `RESULT` line after checking that it passed.
fn run_child(name: &str, mut cmd: Command, setup: impl FnOnce(&mut Command)) -> Value {
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    setup(&mut cmd);
    let out = cmd.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find_map(|l| Some(l.split_once(RESULT)?.1))
        .unwrap_or_else(|| panic!("{name} printed no result:\n{stdout}"));
    serde_json::from_str(line).unwrap()
}

fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Whatever is waiting on the pty's master side: with echo on, every key pushed into the
/// terminal shows up here.
fn pending_output(master: &OwnedFd) -> Vec<u8> {
    let fd = master.as_raw_fd();
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

/// The server runs in a terminal (as `./scripts/run` does): a workspace can neither reach
/// that terminal nor push keys into it.
#[test]
fn ide_has_no_controlling_terminal() {
    if !sandbox_available() {
        return;
    }
    let (master, slave) = open_pty();
    let me = std::env::current_exe().unwrap();
    let found = run_child("tiocsti_child", Command::new(me), |cmd| {
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()));
        unsafe {
            // A session of its own whose controlling terminal is the pty (on stdin).
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    assert_eq!(
        found["server_tty"], "opened",
        "the server process had the pty as its terminal: {found}"
    );
    // Sandboxed, and also without a sandbox (`--insecure-no-sandbox`).
    for probe in [&found["probe"], &found["unsandboxed"]] {
        assert_eq!(probe["tty_nr"], 0, "no controlling terminal: {probe}");
        let tty = probe["dev_tty"].as_str().unwrap();
        assert!(tty.starts_with("unavailable"), "{probe}");
        for fd in ["fd0", "fd1", "fd2"] {
            let r = probe[format!("tiocsti_{fd}")].as_str().unwrap();
            assert!(r.starts_with("refused"), "TIOCSTI on {fd}: {r}");
        }
    }
    let typed = pending_output(&master);
    assert!(
        typed.is_empty(),
        "keys arrived in the server's terminal: {:?}",
        String::from_utf8_lossy(&typed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by ide_has_no_controlling_terminal under a pseudo-terminal"]
async fn tiocsti_child() {
    let server_tty = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(_) => "opened".to_string(),
        Err(e) => e.to_string(),
    };
    let mut probes = Vec::new();
    for (uid_base, insecure) in [(260_000, false), (265_000, true)] {
        let bench = Bench::new(uid_base, 8 << 20, insecure);
        let ws = bench.start(1, "report:0").await;
        probes.push(bench.probe(1));
        bench.rt.stop(&ws, &Value::Null).await.unwrap();
    }
    let found = json!({"server_tty": server_tty, "probe": probes[0], "unsandboxed": probes[1]});
    println!("{RESULT}{found}");
}

/// Without root: the IDE is uid `uid_base + id` inside its user namespace (but still the
/// server's uid on the host), its processes cannot take more than the template's memory,
/// and it creates files with the usual umask although the server's is 077.
#[test]
fn unprivileged_ide_has_its_own_uid_inside_and_limited_memory() {
    if !sandbox_available() {
        return;
    }
    let me = std::env::current_exe().unwrap();
    // The test binary lives under a private target dir; a non-root user needs a copy.
    let copy_dir = tempfile::tempdir().unwrap();
    let cmd = if unsafe { libc::geteuid() } == 0 {
        std::fs::set_permissions(copy_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = copy_dir.path().join("local_bounds");
        std::fs::copy(&me, &copy).unwrap();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(copy)
            .env("HOME", "/tmp");
        cmd
    } else {
        Command::new(me)
    };
    let found = run_child("unprivileged_child", cmd, |_| {});
    let probe = &found["probe"];
    assert_ne!(found["server_uid"], 0);
    assert_eq!(probe["uid"], 280_001, "uid_base + id inside: {found}");
    assert_eq!(probe["gid"], 280_001, "{found}");
    assert_eq!(
        found["host_uids"].as_array().unwrap(),
        &vec![found["server_uid"].clone()],
        "on the host the IDE is the server's uid: {found}"
    );
    let limit = json!([256 << 20, 256 << 20]);
    assert_eq!(
        probe["rlimit_data"], limit,
        "the template's 256 MiB: {found}"
    );
    assert_eq!(
        probe["alloc"], "refused",
        "512 MiB is over the limit: {found}"
    );
    assert_eq!(probe["umask"], 0o022, "{found}");
    assert_eq!(found["file_mode"], 0o644, "{found}");
    assert_eq!(
        found["left_after_stop"],
        json!([]),
        "stop ends the whole sandbox"
    );
    assert!(found["host_uids"].as_array().unwrap().len() == 1);
    assert!(
        found["isolation"]["users"]
            .as_str()
            .unwrap()
            .contains("user namespace"),
        "{found}"
    );
}

/// Pids of `pid` and everything below it.
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(child) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<i32>().ok());
            if ppid == Some(parent) && !all.contains(&child) {
                all.push(child);
            }
        }
        i += 1;
    }
    all
}

/// Exists and is not a zombie (nobody may reap orphans here).
fn running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
    matches!(state, Some(Some(c)) if c != 'Z' && c != 'X')
}

fn uid_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by unprivileged_ide_has_its_own_uid_inside_and_limited_memory as non-root"]
async fn unprivileged_child() {
    assert_ne!(unsafe { libc::geteuid() }, 0, "must run without root");
    // As the `qingting` binary does.
    unsafe { libc::umask(0o077) };
    let bench = Bench::new(280_000, 8 << 20, false);
    let ws = bench.start(1, "report:512").await;
    let probe = bench.probe(1);
    let (status, _) = unix_http(&bench.rt.layout().socket(1), "PUT", "/files/n.txt", b"hi")
        .await
        .unwrap();
    assert_eq!(status, 201, "the IDE works under its limits");
    let file_mode = std::fs::metadata(bench.rt.layout().files(1).join("n.txt"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let pids = tree(bench.rt.pid(1).unwrap());
    let mut host_uids: Vec<u32> = pids.iter().copied().filter_map(uid_of).collect();
    host_uids.sort();
    host_uids.dedup();
    // No cgroup to sweep up after it here: stop must find the whole tree by itself.
    bench.rt.stop(&ws, &Value::Null).await.unwrap();
    let left: Vec<i32> = pids.into_iter().filter(|p| running(*p)).collect();
    let found = json!({
        "probe": probe,
        "server_uid": unsafe { libc::getuid() },
        "host_uids": host_uids,
        "file_mode": file_mode,
        "isolation": bench.rt.isolation(),
        "left_after_stop": left,
    });
    println!("{RESULT}{found}");
}

/// An IDE that floods its output: its log is rotated while it runs and never holds more
/// than two files of the cap, the newest output kept; the IDE itself is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ide_log_is_capped_while_it_runs() {
    if !sandbox_available() {
        return;
    }
    const CAP: u64 = 256 << 10;
    let bench = Bench::new(290_000, CAP, false);
    let ws = bench.start(1, &format!("spam:{}", 4 * CAP)).await;
    let pid = bench.rt.pid(1);
    let log = bench.rt.layout().log(1);
    let done = bench.rt.layout().files(1).join("spam-done");
    let mut tail = String::new();
    for _ in 0..300 {
        tail = std::fs::read_to_string(&log).unwrap_or_default();
        if done.exists() && tail.contains("spam-end") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listing: Vec<(String, u64)> = std::fs::read_dir(bench.rt.layout().logs())
        .unwrap()
        .flatten()
        .map(|e| {
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    assert!(
        tail.contains("spam-end"),
        "the newest output is in the log: {listing:?}, done: {}, tail: {:?}",
        done.exists(),
        &tail[tail.len().saturating_sub(300)..]
    );
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let rotated = log.with_extension("log.1");
    assert!(size(&log) <= CAP, "log holds {} bytes", size(&log));
    assert!(
        size(&rotated) <= CAP && size(&rotated) > 0,
        "{}",
        size(&rotated)
    );
    assert_eq!(listing.len(), 2, "two files at most: {listing:?}");
    assert_eq!((mode(&log), mode(&rotated)), (0o600, 0o600));
    assert_eq!(bench.rt.pid(1), pid, "the IDE was never restarted");
    assert_eq!(
        bench.rt.status(&ws, &Value::Null).await.unwrap(),
        Observed::Running
    );
    let (status, _) = unix_http(&bench.rt.layout().socket(1), "GET", "/healthz", b"")
        .await
        .unwrap();
    assert_eq!(status, 200);
    bench.rt.stop(&ws, &Value::Null).await.unwrap();
}

fn capped_service(db: &qingting_core::store::DatabaseConnection, max: u64) -> WorkspaceService {
    let limits = WorkspaceLimits {
        max_per_user: 5,
        max_running_per_user: 5,
    };
    WorkspaceService::new(
        db.clone(),
        Arc::new(FakeRuntime::default()),
        templates::builtin(),
        limits,
        None,
    )
    .with_max_running(max)
}

/// `workspaces.max_running` counts everyone's workspaces: a create or start beyond it waits
/// in line (`queued`, nothing of it runs), also when several arrive at once, and the line
/// starts in order as room frees up.
async fn host_cap_suite(backend: Backend) {
    let Some(tdb) = TestDatabase::create(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        users.push(
            accounts::register(&db, name, "correct horse")
                .await
                .unwrap(),
        );
    }
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let svc = Arc::new(capped_service(&db, 2));
    let tpl = "vscode-python";
    let state = |owner: &Account, id: i64| {
        let svc = svc.clone();
        let owner = owner.clone();
        async move { svc.get(&owner, id).await.unwrap().state }
    };

    let a1 = svc.create(alice, "one", tpl).await.unwrap();
    let a2 = svc.create(alice, "two", tpl).await.unwrap();
    let b1 = svc.create(bob, "one", tpl).await.unwrap();
    assert_eq!(b1.state, WorkspaceState::Queued);
    assert_eq!(svc.start_queued().await.unwrap(), 0, "no room yet");

    svc.stop(alice, a2.id).await.unwrap();
    assert_eq!(svc.start_queued().await.unwrap(), 1);
    wait_for(|| state(bob, b1.id), WorkspaceState::Running).await;
    assert_eq!(
        svc.start(alice, a2.id).await.unwrap().state,
        WorkspaceState::Queued
    );
    assert_eq!(
        svc.stop(alice, a2.id).await.unwrap().state,
        WorkspaceState::Stopped
    );

    // Several users at once, one slot left: exactly one runs, the others wait in line.
    svc.stop(bob, b1.id).await.unwrap();
    let (x, y, z) = tokio::join!(
        svc.start(alice, a2.id),
        svc.start(bob, b1.id),
        svc.create(carol, "one", tpl),
    );
    let states: Vec<WorkspaceState> = [x, y, z].into_iter().map(|r| r.unwrap().state).collect();
    let count = |s| states.iter().filter(|x| **x == s).count();
    assert_eq!(
        (
            count(WorkspaceState::Running),
            count(WorkspaceState::Queued)
        ),
        (1, 2),
        "{states:?}"
    );
    // Stopping makes room: the first in line starts, the last keeps waiting.
    svc.stop(alice, a1.id).await.unwrap();
    assert_eq!(svc.start_queued().await.unwrap(), 1);
    assert_eq!(svc.queue_positions().await.unwrap().len(), 1);
    drop(svc);
    tdb.drop_database().await;
}

/// Polls until `get` answers `want` (10 s at most).
async fn wait_for<F, Fut>(get: F, want: WorkspaceState)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = WorkspaceState>,
{
    for _ in 0..500 {
        if get().await == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("never became {want:?}");
}

#[tokio::test]
async fn host_cap_queues_starts_beyond_it() {
    for backend in Backend::ALL {
        host_cap_suite(backend).await;
    }
}
