use clap::Parser;
use qingting_server::{cli::Cli, telemetry};
use std::io::Write;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let client = cli.talks_to_a_server();
    match client {
        true => telemetry::init_for_client(),
        false => telemetry::init(cli.log_format),
    }
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if !client {
                tracing::error!("{e:#}");
            }
            // Not eprintln!: it panics when standard error is a closed pipe.
            let _ = writeln!(std::io::stderr(), "qingting: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
