//! The API: server functions grouped by area, each a thin shell (authenticate, validate,
//! call one service, map errors). Every endpoint is listed in docs/api.md.

pub mod admin;
pub mod auth;
mod error;
#[cfg(feature = "ssr")]
pub mod server_ctx;
pub mod settings;
pub mod workspaces;

pub use error::ApiError;
