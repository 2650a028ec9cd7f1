//! The `hallmark` binary: parse the command line, run it (logging is set up once the config is
//! read), and turn an error into one line on stderr and a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hallmark_agent::cli::Cli::parse();
    // Logging is set up by `cli::run` once the configuration (and so `log.format`) is known.
    match hallmark_agent::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hallmark: {}", hallmark_agent::cli::one_line(&e));
            ExitCode::from(2)
        }
    }
}
