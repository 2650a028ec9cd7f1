//! `hallmark bench`: per-stage medians and the pipeline against a bare ONNX Runtime run; with
//! `--daemon`, the whole daemon's frame rate.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use crate::bundle::TrustedKeys;
use crate::config::{project_path, Config};
use crate::pipeline::Pipeline;
use crate::{bench, scan};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model bundle folder (default: model.bundle).
    #[arg(long, value_name = "BUNDLE")]
    pub model: Option<PathBuf>,
    /// Folder of images (default: models/samples/<brand>).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Timed rounds.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub iterations: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Instead: run the whole daemon for SECONDS on a preloaded, unthrottled replay of the images
    /// and compare its frames per second with a bare ONNX Runtime run in the same process.
    #[arg(long, value_name = "SECONDS")]
    pub daemon: Option<f64>,
    /// With --daemon: cut the time into N daemon windows, each between two short bare windows, and
    /// report the median round and the spread (robust to a shared machine's load).
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
}

pub fn run(args: BenchArgs, mut config: Config) -> anyhow::Result<ExitCode> {
    let BenchArgs {
        model,
        images,
        iterations,
        json,
        daemon,
        rounds,
    } = args;
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
        let dir = images.unwrap_or_else(|| project_path(&format!("models/samples/{brand}")));
        let report = crate::bench_daemon::run(&config, &dir, seconds, rounds as usize)?;
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        } else {
            writeln!(out, "{}", report.human())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut pipeline = Pipeline::open(config.runtime.clone(), &bundle, &config.public_keys)?;
    let dir = images
        .unwrap_or_else(|| project_path(&format!("models/samples/{}", pipeline.manifest().brand)));
    if !dir.is_dir() {
        bail!(
            "image folder {} does not exist (give --images DIR)",
            dir.display()
        );
    }
    let files = scan::collect_inputs(std::slice::from_ref(&dir))?;
    let report = bench::run(&mut pipeline, &files, iterations, config.image)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(out, "{}", report.human())?;
    }
    Ok(ExitCode::SUCCESS)
}
