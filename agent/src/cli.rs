//! The command line (`hallmark --help`): parses arguments, builds the typed configuration and calls
//! the component for each command. Errors leave here as `anyhow` with context; `main` prints them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::bundle::{Bundle, TrustedKeys};
use crate::config::{project_path, Config, LogFormat};
use crate::pipeline::Pipeline;
use crate::{bench, logging, scan};

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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The agent daemon: capture (camera or replay) → detector → one verdict per item → stdout, evidence,
    /// the kiosk controller. With no config: the demo bundle on a replay of its sample images, kiosk mode.
    /// Stops on SIGINT/SIGTERM (finishing the frames in flight) or when a non-looping replay ends.
    Run,
    /// Detect and judge products in image files or folders; one JSON object per image on stdout.
    Scan {
        /// Model bundle folder (default: model.bundle, i.e. the shipped demo bundle models/northwind).
        #[arg(long, value_name = "BUNDLE")]
        model: Option<PathBuf>,
        /// Write a copy of each image with boxes, labels and the verdict drawn on it into DIR.
        #[arg(long, value_name = "DIR")]
        annotate: Option<PathBuf>,
        /// Image files or folders (JPEG, PNG, WebP).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Per-stage medians, and the whole pipeline against a bare ONNX Runtime run, side by side.
    Bench {
        /// Model bundle folder (default: model.bundle).
        #[arg(long, value_name = "BUNDLE")]
        model: Option<PathBuf>,
        /// Folder of images (default: models/samples/<brand>).
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Timed rounds.
        #[arg(long, default_value_t = 200, value_name = "N")]
        iterations: usize,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Instead: run the whole daemon for SECONDS on a preloaded, unthrottled replay of the images
        /// and compare its frames per second with a bare ONNX Runtime run in the same process.
        #[arg(long, value_name = "SECONDS")]
        daemon: Option<f64>,
    },
    /// The local model store.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Check bundles' signature, manifest and model digest (and, with the runtime, the graph).
    Verify {
        #[arg(required = true, value_name = "BUNDLE")]
        bundles: Vec<PathBuf>,
    },
    /// List the bundles in a folder (default: models/).
    List {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load_env(cli.global.config.as_deref())?;
    if let Some(lib) = cli.global.ort_lib {
        config.runtime.ort_lib = Some(lib);
    }
    if let Some(n) = cli.global.threads {
        config.runtime.intra_threads = Some(n).filter(|&n| n > 0);
    }
    // The daemon logs as configured (JSON for a log pipeline); one-shot commands keep text.
    match cli.command {
        Command::Run => logging::init(config.log.format, logging::DAEMON_FILTER),
        _ => logging::init(LogFormat::Text, logging::COMMAND_FILTER),
    }
    match cli.command {
        Command::Run => {
            let summary = crate::daemon::run(config, shutdown_signal())?;
            eprintln!(
                "hallmark: run ended: {} frames, {} verdicts ({} counterfeit), {} frames dropped, {} skipped",
                summary.frames, summary.verdicts, summary.counterfeit, summary.dropped, summary.skipped
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            model,
            annotate,
            paths,
        } => {
            let bundle = model.unwrap_or_else(|| config.bundle().to_path_buf());
            let mut pipeline =
                Pipeline::open(config.runtime.clone(), &bundle, &config.public_keys)?;
            let inputs = scan::collect_inputs(&paths);
            let stdout = std::io::stdout();
            let summary = scan::scan(
                &mut pipeline,
                &inputs,
                config.image,
                annotate.as_deref(),
                &mut stdout.lock(),
            )?;
            if summary.failed > 0 {
                eprintln!(
                    "hallmark: {} of {} images could not be scanned",
                    summary.failed,
                    summary.failed + summary.scanned
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            model,
            images,
            iterations,
            json,
            daemon,
        } => {
            let bundle = model.unwrap_or_else(|| config.bundle().to_path_buf());
            if let Some(seconds) = daemon {
                config.bundles = vec![bundle];
                let brand = crate::bundle::Bundle::open(
                    config.bundle(),
                    &TrustedKeys::from_pem_files(&config.public_keys)?,
                )?
                .manifest()
                .brand
                .clone();
                let dir =
                    images.unwrap_or_else(|| project_path(&format!("models/samples/{brand}")));
                let report = crate::bench_daemon::run(&config, &dir, seconds)?;
                let mut out = std::io::stdout().lock();
                if json {
                    writeln!(out, "{}", serde_json::to_string(&report)?)?;
                } else {
                    writeln!(out, "{}", report.human())?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut pipeline =
                Pipeline::open(config.runtime.clone(), &bundle, &config.public_keys)?;
            let dir = images.unwrap_or_else(|| {
                project_path(&format!("models/samples/{}", pipeline.manifest().brand))
            });
            if !dir.is_dir() {
                bail!(
                    "image folder {} does not exist (give --images DIR)",
                    dir.display()
                );
            }
            let files = scan::collect_inputs(std::slice::from_ref(&dir));
            let report = bench::run(&mut pipeline, &files, iterations, config.image)?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                writeln!(out, "{}", report.human())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { command } => models(command, &config),
    }
}

fn models(command: ModelsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let trust = TrustedKeys::from_pem_files(&config.public_keys)?;
    let mut out = std::io::stdout().lock();
    match command {
        ModelsCommand::Verify { bundles } => {
            let mut failed = 0;
            for dir in &bundles {
                match Bundle::open(dir, &trust) {
                    Ok(b) => {
                        let m = b.manifest();
                        writeln!(
                            out,
                            "ok {} brand={} revision={} signed-by={}",
                            dir.display(),
                            m.brand,
                            m.revision,
                            b.signer().display()
                        )?;
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("hallmark: {e}");
                    }
                }
            }
            Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        ModelsCommand::List { dir } => {
            let dir = dir.unwrap_or_else(|| project_path("models"));
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("manifest.json").is_file())
                .collect();
            entries.sort();
            for p in entries {
                match Bundle::open(&p, &trust) {
                    Ok(b) => writeln!(
                        out,
                        "{}\t{}\trevision {}\tverified",
                        p.display(),
                        b.manifest().brand,
                        b.manifest().revision
                    )?,
                    Err(e) => writeln!(out, "{}\t-\t-\tINVALID: {e}", p.display())?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the agent");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
