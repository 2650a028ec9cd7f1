//! `hallmark scan`: the detector and the verdict over image files and folders.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::scan;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Model bundle folder (default: model.bundle, i.e. the shipped demo bundle models/northwind).
    /// Repeat for several brands: each image goes to the brand whose GS1 prefix a barcode in it
    /// carries, else to the first.
    #[arg(long, value_name = "BUNDLE")]
    pub model: Vec<PathBuf>,
    /// Write a copy of each image with boxes, labels and the verdict drawn on it into DIR.
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// Image files or folders (JPEG, PNG, WebP).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: ScanArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let ScanArgs {
        model,
        annotate,
        paths,
    } = args;
    let bundles = if model.is_empty() {
        vec![config.bundle().to_path_buf()]
    } else {
        model
    };
    let mut pipelines = bundles
        .iter()
        .map(|b| Pipeline::open(config.runtime.clone(), b, &config.public_keys))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = scan::collect_inputs(&paths)?;
    let stdout = std::io::stdout();
    let summary = scan::scan(
        &mut pipelines,
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
