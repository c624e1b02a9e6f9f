//! What every request handler and server function needs, shared behind cheap clones.

use crate::store::session_store::DbSessionProbe;
use crate::{
    accounts::AccountDeletionHook,
    config::{Config, ObjectBackend},
    metrics::Metrics,
    objects::{DirStore, ObjectStore, S3Store},
    rate_limit::RateLimiter,
    workspaces::WorkspaceService,
};
use qingting_gateway::{access::Guard, live::LiveSessions, token::TokenSigner};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// The keys of workspace access: the dashboard mints tokens, the gateway checks them and the
/// cookies they turn into.
#[derive(Debug)]
pub struct WorkspaceAccess {
    pub signer: TokenSigner,
    pub guard: Guard,
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub limits: Arc<RateLimiter>,
    pub objects: Arc<dyn ObjectStore>,
    pub workspaces: Arc<WorkspaceService>,
    pub access: Arc<WorkspaceAccess>,
    /// Live connections by session, closed when their session ends.
    pub live: Arc<LiveSessions>,
    /// Run before an account is deleted (e.g. to delete its workspaces).
    pub deletion_hooks: Arc<Vec<Arc<dyn AccountDeletionHook>>>,
    /// This process's counters, scraped at `/metrics` (the workspace service's own).
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(
        db: DatabaseConnection,
        config: Config,
        workspaces: Arc<WorkspaceService>,
        access: WorkspaceAccess,
    ) -> Self {
        let objects: Arc<dyn ObjectStore> = match config.objects.backend {
            ObjectBackend::Dir => Arc::new(DirStore::new(config.objects_dir())),
            ObjectBackend::S3 => Arc::new(S3Store::new(&config.objects.s3)),
        };
        let hooks: Vec<Arc<dyn AccountDeletionHook>> = vec![workspaces.clone()];
        let limits = Arc::new(RateLimiter::new(db.clone()));
        let live = LiveSessions::new(Arc::new(DbSessionProbe::new(db.clone())));
        let metrics = workspaces.metrics().clone();
        Self {
            metrics,
            db,
            config: Arc::new(config),
            limits,
            objects,
            workspaces,
            access: Arc::new(access),
            live,
            deletion_hooks: Arc::new(hooks),
        }
    }
}
