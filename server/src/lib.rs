//! The `qingting` server: configuration loading, wiring of the HTTP stack, and the
//! operational pieces (health, logs, shutdown). Domain logic lives in `qingting-core`.

mod api_v1;
mod avatar_http;
pub mod cli;
mod client;
mod client_ip_layer;
mod csrf;
mod github_oauth;
mod healthz;
pub mod http;
mod metrics_http;
mod secrets;
pub mod settings;
mod site;
mod stdout;
pub mod telemetry;
mod wiring;
mod workspace_events;
mod workspace_hosts;

pub use http::{start, RunningServer};
