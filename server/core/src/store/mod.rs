//! The store: sea-orm entities, migrations and the session store, on SQLite, Postgres or
//! MySQL/MariaDB chosen by URL.

pub mod entity;
pub mod migration;
pub mod session_store;

pub use sea_orm::DatabaseConnection;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

pub use session_store::DbSessionStore;

/// Opens the database at `url`; for SQLite also creates its directory and turns on WAL so
/// readers don't block the writer.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_path(url) {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
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

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
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

/// Seconds since the Unix epoch: the one time format stored in every table.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

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
