//! Structured logs: human-readable text or JSON lines, filtered by `RUST_LOG`.

use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging for a command that talks to a server (`login`, `logout`, `ws`): warnings only, on
/// standard error, so standard output holds only what the command prints (`--json` too), and
/// a fatal error is said once, by `main`.
pub fn init_for_client() {
    let _ = fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,tower_sessions=warn"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
