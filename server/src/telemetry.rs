//! Structured logs: human-readable text or JSON lines, filtered by `RUST_LOG`.

use crate::cli::Kind;
use tracing_subscriber::{fmt, fmt::writer::BoxMakeWriter, EnvFilter};

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
    let filter = match kind {
        Kind::Client => EnvFilter::new("warn"),
        Kind::Server | Kind::Tool => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,tower_sessions=warn")),
    };
    let writer = match kind {
        Kind::Server => BoxMakeWriter::new(std::io::stdout),
        Kind::Tool | Kind::Client => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    let _ = match (kind, format) {
        (Kind::Client, _) | (_, LogFormat::Text) => builder.try_init(),
        (_, LogFormat::Json) => builder.json().flatten_event(true).try_init(),
    };
}
