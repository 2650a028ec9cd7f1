//! The `hallmark` binary: parse the command line, set up logging, run, and turn an error into one line
//! on stderr and a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hallmark_agent::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HALLMARK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match hallmark_agent::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hallmark: {e:#}");
            ExitCode::from(2)
        }
    }
}
