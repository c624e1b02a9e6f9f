//! QingTing Studio's server-only domain: configuration types, the store, accounts, avatars and
//! object storage, templates and editors, workspaces (the service, its state machine and the
//! local and Function Compute runtimes), and the guards (rate limits, redirect targets) that
//! every entry point shares.
//!
//! The `app` crate reaches this only under its `ssr` feature, so nothing here is ever compiled
//! to WebAssembly.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod auth_session;
pub mod avatars;
pub mod client_ip;
pub mod config;
pub mod editors;
pub mod ip_range;
pub mod metrics;
pub mod objects;
pub mod rate_limit;
pub mod redirect;
pub mod replicas;
pub mod state;
pub mod store;
pub mod templates;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod workspaces;

pub use config::Config;
pub use state::AppState;
