//! The command line (`hallmark --help`): parses arguments and runs the command, one file each. A
//! command loads only what it uses: `run`, `scan`, `bench` and `models` the device configuration,
//! `publish` and `fleet status` its broker and bundle limit ([`crate::config::Operator`]), `keygen`
//! nothing. Errors leave here as `anyhow` with context; `main` prints them with [`one_line`].

mod bench;
mod evidence;
mod fleet;
mod keygen;
mod models;
mod publish;
mod run;
mod scan;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Operator};
use crate::logging;

pub use bench::BenchArgs;
pub use evidence::EvidenceCommand;
pub use fleet::FleetCommand;
pub use keygen::KeygenArgs;
pub use models::ModelsCommand;
pub use publish::PublishArgs;
pub use scan::ScanArgs;

/// Hallmark: decides whether the product in front of a camera is genuine or counterfeit.
#[derive(Debug, Parser)]
#[command(name = "hallmark", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (TOML); every key has a default and a HALLMARK_<SECTION>_<KEY> override.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ONNX Runtime shared library (default: runtime.ort_lib, then ORT_DYLIB_PATH, then .venv).
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads for inference (default: runtime.intra_threads, else the physical cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Run this variant of each bundle (`main`: the main model), or per brand
    /// (`northwind=quarter-turns,aurora=fast-224`; a brand not named runs its bundle's default for the
    /// mode) (default: model.variant, else each bundle's default for the mode, else its main model).
    #[arg(long, global = true, value_name = "NAME")]
    pub variant: Option<String>,
    /// auto, fp32, fp16 or int8 (default: model.precision, else auto).
    #[arg(long, global = true, value_name = "PRECISION")]
    pub precision: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The agent daemon: capture (camera or replay) → detector → one verdict per item → stdout, evidence,
    /// the kiosk controller. With no config: the demo bundle on a replay of its sample images, kiosk mode.
    /// Stops on SIGINT/SIGTERM (finishing the frames in flight) or when a non-looping replay ends.
    Run,
    /// Detect and judge products in image files or folders; one JSON object per image on stdout.
    Scan(ScanArgs),
    /// Per-stage medians, and the whole pipeline against a bare ONNX Runtime run, side by side.
    Bench(BenchArgs),
    /// The local model store (agent.state_dir/models), and bundle folders.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Make a publisher key pair: publisher.key.pem (PKCS#8, mode 0600) and publisher.pub.pem (SPKI,
    /// what agents list in trust.public_keys). Refuses to overwrite.
    Keygen(KeygenArgs),
    /// Sign a bundle with KEY, pack it as DIR/<brand>-<revision>.tar and announce the release
    /// (retained, QoS 1) on the fleet topic, or on one device's topic with --thing (a canary).
    /// Without --broker the release JSON is printed only.
    Publish(PublishArgs),
    /// The fleet as seen on the broker.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// What a device was unsure of, for labelling and the brand's next upload.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Keygen(args) => {
            logging::init(LogFormat::Text, logging::COMMAND_FILTER);
            keygen::run(&args)
        }
        Command::Publish(args) => {
            let operator = operator(&cli.global)?;
            publish::run(&args, &operator)
        }
        Command::Fleet { command } => {
            let operator = operator(&cli.global)?;
            fleet::run(command, &operator)
        }
        Command::Run => {
            let config = device(cli.global)?;
            // The daemon logs as configured (JSON for a log pipeline); one-shot commands keep text.
            logging::init(config.log.format, logging::DAEMON_FILTER);
            run::run(config)
        }
        Command::Scan(args) => scan::run(args, &command_config(cli.global)?),
        Command::Bench(args) => bench::run(args, command_config(cli.global)?),
        Command::Models { command } => models::run(command, &command_config(cli.global)?),
        Command::Evidence { command } => {
            logging::init(LogFormat::Text, logging::COMMAND_FILTER);
            let global = cli.global;
            evidence::run(command, || {
                Ok(Config::load_env(global.config.as_deref())?.agent.state_dir)
            })
        }
    }
}

/// The device configuration for a one-shot command, with its logging set up.
fn command_config(global: Global) -> anyhow::Result<Config> {
    let config = device(global)?;
    logging::init(LogFormat::Text, logging::COMMAND_FILTER);
    Ok(config)
}

/// The device configuration, with the command line's overrides.
fn device(global: Global) -> anyhow::Result<Config> {
    let mut config = Config::load_env(global.config.as_deref())?;
    if let Some(lib) = global.ort_lib {
        config.runtime.ort_lib = Some(lib);
    }
    if let Some(n) = global.threads {
        config.runtime.intra_threads = Some(n).filter(|&n| n > 0);
    }
    if let Some(v) = global.variant {
        config.runtime.encoding.variant = Some(v).filter(|v| !v.is_empty());
    }
    if let Some(p) = global.precision {
        config.runtime.encoding.precision = p
            .parse()
            .map_err(|m: String| anyhow::anyhow!("--precision: {m}"))?;
    }
    Ok(config)
}

/// What an operator's command takes from the configuration, with its logging set up.
fn operator(global: &Global) -> anyhow::Result<Operator> {
    let operator = Operator::load_env(global.config.as_deref())?;
    logging::init(LogFormat::Text, logging::COMMAND_FILTER);
    Ok(operator)
}

/// An error and its causes on one line, each said once. The library's errors put their cause in their
/// own message ("model bundle x: {source}") and keep it as their source too, so anyhow's `{:#}` said it
/// twice; a cause whose text the line already holds is left out.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod one_line_tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("has no variant \"fast\"")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("model bundle b: {source}")]
    struct Outer {
        source: Inner,
    }

    #[test]
    fn a_cause_already_in_its_errors_message_is_said_once_and_context_is_kept() {
        let e = anyhow::Error::new(Outer { source: Inner });
        assert_eq!(one_line(&e), "model bundle b: has no variant \"fast\"");
        let e = e.context("scanning x");
        assert_eq!(
            one_line(&e),
            "scanning x: model bundle b: has no variant \"fast\""
        );
        let plain = anyhow::anyhow!("io failed").context("reading y");
        assert_eq!(one_line(&plain), "reading y: io failed");
    }
}
