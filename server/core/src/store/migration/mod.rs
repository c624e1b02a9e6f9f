//! Schema migrations, applied in order at start-up and by `qingting migrate`.

use sea_orm_migration::prelude::*;

mod m0001_users_sessions;
mod m0002_profiles_github;
mod m0003_workspaces;
mod m0004_used_tokens;
mod m0005_port_shares;
mod m0006_replicas;
mod m0007_operators;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_users_sessions::Migration),
            Box::new(m0002_profiles_github::Migration),
            Box::new(m0003_workspaces::Migration),
            Box::new(m0004_used_tokens::Migration),
            Box::new(m0005_port_shares::Migration),
            Box::new(m0006_replicas::Migration),
            Box::new(m0007_operators::Migration),
        ]
    }
}
