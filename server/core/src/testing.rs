//! Throw-away databases for tests: one fresh database per test on each backend, dropped
//! afterwards, so runs never see each other's rows.
//!
//! Postgres and MariaDB are looked for at `QINGTING_TEST_POSTGRES_URL` /
//! `QINGTING_TEST_MYSQL_URL` (defaults: the local servers). When one is unreachable the test
//! is skipped with a message, unless `QINGTING_TEST_REQUIRE_DBS=1`, which the test command
//! sets so that CI cannot pass without really running on all three.

use sea_orm::{ConnectionTrait, DatabaseConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mariadb",
        }
    }

    fn server_url(self) -> Option<String> {
        let (var, default) = match self {
            Backend::Sqlite => return None,
            Backend::Postgres => (
                "QINGTING_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432",
            ),
            Backend::MySql => ("QINGTING_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306"),
        };
        Some(std::env::var(var).unwrap_or_else(|_| default.to_string()))
    }
}

/// A loopback TCP port that is free now and that no other test of this process is handed, for
/// servers a test starts by address.
///
/// Picked outside the kernel's ephemeral range: a port from `bind(0)` is released before the
/// server binds it, and in that gap another `bind(0)` or an outgoing connection (to a
/// database, between test servers) may take it, so the server fails to start now and then.
/// Ports outside the range are never handed out that way; a counter keeps this process's tests
/// apart and a start derived from the process id keeps concurrent test processes apart. Only
/// where the range leaves no room is the port the kernel's.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let Some((lowest, span)) = outside_ephemeral_range() else {
        return std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port")
            .port();
    };
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let port = (lowest + NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port among {span} from {lowest}");
}

/// The larger run of ports outside the kernel's range for `bind(0)` and outgoing connections
/// (`ip_local_port_range`), below it from 10000 (clear of common services' ports) or above
/// it: its first port and length, if it has room for a test run.
fn outside_ephemeral_range() -> Option<(u32, u32)> {
    const LOWEST: u32 = 10_000;
    let (start, end) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut n = s.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some((n.next()??, n.next()??))
        })
        .unwrap_or((32_768, 60_999));
    let below = start.saturating_sub(LOWEST);
    let above = 65_535u32.saturating_sub(end);
    match below >= above {
        true => (below >= 1_000).then_some((LOWEST, below)),
        false => (above >= 1_000).then_some((end + 1, above)),
    }
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub backend: Backend,
    /// URL of the fresh database, for code under test that connects by itself.
    pub url: String,
    name: String,
    admin: Option<DatabaseConnection>,
    _dir: Option<tempfile_dir::TempDir>,
}

mod tempfile_dir {
    /// Minimal temp dir so this module needs no dev-only crate.
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn unique_name() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("qt_test_{n:016x}")
}

impl TestDatabase {
    /// Creates a fresh database, or `None` (after saying why) when the server is unreachable
    /// and not required.
    pub async fn create(backend: Backend) -> Option<TestDatabase> {
        let name = unique_name();
        let Some(server) = backend.server_url() else {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
            return Some(TestDatabase {
                backend,
                url,
                name,
                admin: None,
                _dir: Some(tempfile_dir::TempDir(dir)),
            });
        };
        let admin_url = match backend {
            Backend::Postgres => format!("{server}/postgres"),
            _ => server.clone(),
        };
        let admin = match crate::store::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                let required = std::env::var("QINGTING_TEST_REQUIRE_DBS").as_deref() == Ok("1");
                assert!(
                    !required,
                    "{} required but unreachable at {server}: {e}",
                    backend.name()
                );
                eprintln!(
                    "SKIPPED on {}: unreachable at {server}: {e}",
                    backend.name()
                );
                return None;
            }
        };
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        Some(TestDatabase {
            backend,
            url: format!("{server}/{name}"),
            name,
            admin: Some(admin),
            _dir: None,
        })
    }

    /// Connects and migrates.
    pub async fn connect(&self) -> DatabaseConnection {
        let db = crate::store::connect(&self.url)
            .await
            .expect("connect test database");
        crate::store::migrate(&db)
            .await
            .expect("migrate test database");
        db
    }

    /// Drops the database. Call at the end of the test (async work cannot run in `Drop`).
    pub async fn drop_database(self) {
        if let Some(admin) = &self.admin {
            let sql = match self.backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                _ => format!("DROP DATABASE IF EXISTS {}", self.name),
            };
            if let Err(e) = admin.execute_unprepared(&sql).await {
                eprintln!("could not drop {}: {e}", self.name);
            }
        }
    }
}

/// The stand-in IDE (`tests/fixtures/test_ide.py`): serves HTTP on the workspace's socket and
/// can report what it sees from inside its sandbox, store files, crash and echo WebSockets.
pub const TEST_IDE_SCRIPT: &str = include_str!("../tests/fixtures/test_ide.py");

/// Puts the stand-in IDE into `editors` (readable by workspace uids) and returns a template
/// that runs it. It counts as the VS Code editor being installed.
pub fn install_test_ide(editors: &std::path::Path) -> crate::templates::Template {
    use std::os::unix::fs::PermissionsExt;
    let dir = editors.join("test-ide");
    std::fs::create_dir_all(&dir).expect("create test IDE dir");
    std::fs::write(dir.join("test_ide.py"), TEST_IDE_SCRIPT).expect("write test IDE");
    let stamp = crate::editors::Editor::Vscode.dir(editors);
    std::fs::create_dir_all(&stamp).expect("create editor dir");
    std::fs::write(stamp.join(".installed"), "test").expect("write stamp");
    for d in [editors, &dir, &stamp] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    crate::templates::Template {
        id: "test-ide".into(),
        name: "Test IDE".into(),
        description: String::new(),
        editor: crate::editors::Editor::Vscode,
        language: "python".into(),
        image: String::new(),
        memory_mb: 256,
        max_processes: 64,
        health_path: "/healthz".into(),
        command: vec![
            "/usr/bin/python3".into(),
            "{editors}/test-ide/test_ide.py".into(),
            "{socket}".into(),
            "{files}".into(),
        ],
        // Most tests need no network; the network's own tests turn it on.
        network: crate::templates::Network::None,
    }
}

/// Whether this machine can sandbox (bubblewrap). Tests that need it skip without it, unless
/// `QINGTING_TEST_REQUIRE_SANDBOX=1` (set by the test command) makes that a failure.
pub fn sandbox_available() -> bool {
    let ok = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("QINGTING_TEST_REQUIRE_SANDBOX").as_deref() != Ok("1"),
            "bubblewrap is required (QINGTING_TEST_REQUIRE_SANDBOX=1) but not installed"
        );
        eprintln!("SKIPPED: bubblewrap is not installed");
    }
    ok
}

/// One HTTP/1.0 request over a Unix socket; returns (status, body).
pub async fn unix_http(
    socket: &std::path::Path,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(socket).await?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let status = std::str::from_utf8(&out[..split.min(out.len())])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    Ok((status, out.get(split + 4..).unwrap_or_default().to_vec()))
}

/// Kills every IDE whose pid file is under `data_dir` when dropped: IDEs outlive the server
/// by design, so a test that leaves workspaces running must not leave their processes behind.
#[derive(Debug)]
pub struct IdeReaper(pub std::path::PathBuf);

impl Drop for IdeReaper {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.0.join("run")) else {
            return;
        };
        for e in entries.flatten() {
            let pid = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse::<i32>().ok());
            if let Some(pid) = pid.filter(|p| *p > 1) {
                crate::workspaces::local::kill_now(pid);
            }
        }
    }
}

/// Appends a PNG chunk (length, type, data, CRC) to `out`: tests build images byte by byte,
/// e.g. a tiny file whose header claims a huge picture.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let typed: Vec<u8> = kind.iter().chain(data).copied().collect();
    out.extend_from_slice(&typed);
    let mut crc = !0u32;
    for &b in &typed {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_be_bytes());
}

/// Runs a scenario once per database backend, as three tests named after it:
/// `on_every_backend!(sessions_expire);` over `async fn sessions_expire(backend: Backend)`
/// declares `sessions_expire::sqlite`, `sessions_expire::postgres` and
/// `sessions_expire::mariadb` (a module and a function may share a name).
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::testing::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario($crate::testing::Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                super::$scenario($crate::testing::Backend::MySql).await
            }
        }
    )*};
}

/// A `workspaces.local.uid_base` no other server of this test process uses, and unlikely to
/// be used by another test process at the same time. Workspace uids and cgroups are keyed by
/// `uid_base + id`, so two servers sharing a base would stop each other's IDEs.
pub fn unique_uid_base() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 100;
    1_000_000 + (std::process::id() % 10_000) * 10_000 + n * 100
}

/// A workspace spec for runtime tests: workspace `id` of alice, from `template`.
pub fn workspace_spec(
    id: i64,
    template: &crate::templates::Template,
) -> crate::workspaces::runtime::WorkspaceSpec {
    crate::workspaces::runtime::WorkspaceSpec {
        id,
        owner_id: 1,
        owner: "alice".into(),
        name: format!("ws{id}"),
        template: template.clone(),
    }
}

/// Local runtime options over `data` (editors in `data/editors`), sandboxed, with a uid range
/// of their own and the network as templates say; tests change what they need.
pub fn local_options(data: &std::path::Path) -> crate::workspaces::local::LocalOptions {
    crate::workspaces::local::LocalOptions {
        data_dir: data.to_path_buf(),
        editors_dir: data.join("editors"),
        insecure_no_sandbox: false,
        uid_base: unique_uid_base(),
        policy: crate::workspaces::local::Policy::default(),
        log_max_bytes: 1 << 20,
        network: crate::config::NetworkPolicy::Template,
        network_deny: Vec::new(),
    }
}
