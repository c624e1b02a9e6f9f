//! The store: sea-orm entities, migrations and the session store, on SQLite, Postgres or
//! MySQL/MariaDB chosen by URL.

pub mod entity;
pub mod migration;
pub mod session_store;
pub mod used_tokens;

pub use sea_orm::DatabaseConnection;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

pub use session_store::DbSessionStore;

/// Opens the database at `url`; for SQLite also creates its directory and file readable by
/// the server only, and turns on WAL so readers don't block the writer.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_path(url) {
        private_sqlite_file(std::path::Path::new(path), url.contains("mode=rwc"))?;
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(opts).await?;
    if sqlite_path(url).is_some() {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;")
            .await?;
    }
    Ok(db)
}

/// Creates the SQLite file 0600 (in a 0700 dir) before SQLite does, or takes group and other
/// permissions off an existing one: it holds password hashes and session ids. SQLite gives
/// its `-wal` and `-shm` files the database file's permissions.
fn private_sqlite_file(path: &std::path::Path, create: bool) -> Result<(), DbErr> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| DbErr::Custom(format!("cannot prepare {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    if create {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let Ok(meta) = std::fs::symlink_metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

/// The connection pool's use: (in use, idle, most it may open).
pub fn pool_use(db: &DatabaseConnection) -> (u64, u64, u64) {
    use sea_orm::sqlx;
    fn of<D: sqlx::Database>(p: &sqlx::Pool<D>) -> (u64, u64, u64) {
        let (size, idle) = (p.size() as u64, p.num_idle() as u64);
        let max = p.options().get_max_connections() as u64;
        (size.saturating_sub(idle), idle, max)
    }
    match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => of(db.get_sqlite_connection_pool()),
        sea_orm::DbBackend::Postgres => of(db.get_postgres_connection_pool()),
        sea_orm::DbBackend::MySql => of(db.get_mysql_connection_pool()),
    }
}

/// Cheap liveness probe for `/healthz`.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Seconds since the Unix epoch: the one time format stored in every table (the same clock
/// the gateway checks tokens and cookies against).
pub use qingting_gateway::now_unix;

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_path_parsing() {
        assert_eq!(
            super::sqlite_path("sqlite://./data/q.db?mode=rwc"),
            Some("./data/q.db")
        );
        assert_eq!(super::sqlite_path("sqlite::memory:"), None);
        assert_eq!(super::sqlite_path("postgres://x/y"), None);
    }
}
