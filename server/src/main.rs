use clap::Parser;
use qingting_server::{
    cli::{Cli, Kind},
    telemetry,
};
use std::io::Write;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let kind = cli.kind();
    telemetry::init(kind, cli.log_format);
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A server's log records why it ended; anything else says it once, below.
            if kind == Kind::Server {
                tracing::error!("{e:#}");
            }
            // Not eprintln!: it panics when standard error is a closed pipe.
            let _ = writeln!(std::io::stderr(), "qingting: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
