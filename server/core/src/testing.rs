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

/// A loopback TCP port that was free a moment ago (for servers a test starts by address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
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
