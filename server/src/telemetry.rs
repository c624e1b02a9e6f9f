//! Structured logs: human-readable text or JSON lines, filtered by `RUST_LOG`.

use crate::cli::Kind;
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging for a process of `kind`. A server logs to standard output (`format`, `RUST_LOG`);
/// a one-shot command logs to standard error, so its standard output holds only what it prints
/// (`audit export`'s JSON lines, `--json`), and the client only warnings, so a script sees its
/// answer alone. A fatal error is said once, by `main`, on standard error.
pub fn init(kind: Kind, format: LogFormat) {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,tower_sessions=warn"))
    };
    let builder = fmt().with_target(false);
    let _ = match (kind, format) {
        (Kind::Client, _) => builder
            .with_env_filter(EnvFilter::new("warn"))
            .with_writer(std::io::stderr)
            .try_init(),
        (Kind::Tool, LogFormat::Text) => builder
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .try_init(),
        (Kind::Tool, LogFormat::Json) => builder
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init(),
        (Kind::Server, LogFormat::Text) => builder.with_env_filter(filter()).try_init(),
        (Kind::Server, LogFormat::Json) => builder
            .with_env_filter(filter())
            .json()
            .flatten_event(true)
            .try_init(),
    };
}
