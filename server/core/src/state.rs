//! What every request handler and server function needs, shared behind cheap clones.

use crate::{
    accounts::AccountDeletionHook,
    config::{Config, ObjectBackend},
    objects::{DirStore, ObjectStore, S3Store},
    rate_limit::RateLimiter,
};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub limits: Arc<RateLimiter>,
    pub objects: Arc<dyn ObjectStore>,
    /// Run before an account is deleted (e.g. to delete its workspaces).
    pub deletion_hooks: Arc<Vec<Arc<dyn AccountDeletionHook>>>,
}

impl AppState {
    pub fn new(db: DatabaseConnection, config: Config) -> Self {
        let objects: Arc<dyn ObjectStore> = match config.objects.backend {
            ObjectBackend::Dir => Arc::new(DirStore::new(config.objects_dir())),
            ObjectBackend::S3 => Arc::new(S3Store::new(&config.objects.s3)),
        };
        Self {
            db,
            config: Arc::new(config),
            limits: Arc::new(RateLimiter::new()),
            objects,
            deletion_hooks: Arc::new(Vec::new()),
        }
    }
}
