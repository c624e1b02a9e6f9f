//! What every request handler and server function needs, shared behind cheap clones.

use crate::{config::Config, rate_limit::RateLimiter};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub limits: Arc<RateLimiter>,
}

impl AppState {
    pub fn new(db: DatabaseConnection, config: Config) -> Self {
        Self {
            db,
            config: Arc::new(config),
            limits: Arc::new(RateLimiter::new()),
        }
    }
}
