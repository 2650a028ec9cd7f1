//! `hallmark scan`: the detector and the verdict over image files and folders, one JSON object per
//! image on stdout (JSON Lines), optionally an annotated copy of each image.
//!
//! An image that cannot be read or decoded gives a record with `error`, a message on stderr, and the
//! scan goes on; the caller turns a non-zero [`Summary::failed`] into a non-zero exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use thiserror::Error;

pub use crate::imageio::inputs::{collect_inputs, InputsError, EXTENSIONS};
pub use crate::sink::annotate::annotate;
use hallmark_core::report::{ms, scan_record};
use hallmark_proto::scan::{ErrorRecord, ScanRecord, Timings};

use crate::detector::Frame;
use crate::imageio::{self, ImageLimits};
use crate::pipeline::{Context, Pipeline};
use hallmark_core::brands;

#[derive(Debug, Error)]
pub enum ScanError {
    #[error("cannot create the annotation folder {path}: {message}")]
    AnnotateDir { path: PathBuf, message: String },
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
}

/// How a scan went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub scanned: usize,
    pub failed: usize,
}

/// Scans `inputs`, writing JSON Lines to `out` and annotated images to `annotate_dir`. With several
/// pipelines (brands), each image goes to the one whose GS1 prefixes a barcode read anywhere in it
/// matches, else to the first.
pub fn scan(
    pipelines: &mut [Pipeline],
    inputs: &[PathBuf],
    limits: ImageLimits,
    annotate_dir: Option<&Path>,
    out: &mut impl Write,
) -> Result<Summary, ScanError> {
    if let Some(dir) = annotate_dir {
        std::fs::create_dir_all(dir).map_err(|e| ScanError::AnnotateDir {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    let mut summary = Summary::default();
    let mut used_names = std::collections::HashSet::new();
    for path in inputs {
        let name = path.display().to_string();
        let line = match scan_one(pipelines, path, limits, annotate_dir, &mut used_names) {
            Ok(record) => {
                summary.scanned += 1;
                serde_json::to_string(&record)
            }
            Err(message) => {
                summary.failed += 1;
                eprintln!("hallmark: {message}");
                serde_json::to_string(&ErrorRecord {
                    image: name,
                    error: message,
                })
            }
        };
        // Design: serialising these plain structs cannot fail.
        let line = line.expect("scan records serialise");
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(ScanError::Stdout)?;
    }
    Ok(summary)
}

/// The pipeline whose detector sees its brand's products best in the image, by the daemon's rule
/// ([`brands::Sight`]): when that is unsure, the one whose GS1 prefix a GTIN read anywhere in the image
/// matches. Each image stands alone: no brand is held from the image before.
fn route(pipelines: &mut [Pipeline], frame: Frame<'_>) -> Result<usize, String> {
    if pipelines.len() < 2 {
        return Ok(0);
    }
    let mut scores = Vec::with_capacity(pipelines.len());
    for p in pipelines.iter_mut() {
        let (detections, _) = p.detector.detect(frame).map_err(|e| e.to_string())?;
        scores.push(brands::sight_score(detections));
    }
    let by_code = || {
        let gtins = crate::codes::frame_gtins(frame, &mut Vec::new());
        let prefixes: Vec<&[String]> = pipelines
            .iter()
            .map(|p| p.manifest().gs1_prefixes.as_slice())
            .collect();
        brands::brand_of(gtins.iter().map(String::as_str), &prefixes)
    };
    Ok(brands::Sight::new(0).choose(&scores, by_code).0)
}

fn scan_one(
    pipelines: &mut [Pipeline],
    path: &Path,
    limits: ImageLimits,
    annotate_dir: Option<&Path>,
    used_names: &mut std::collections::HashSet<PathBuf>,
) -> Result<ScanRecord, String> {
    let t0 = Instant::now();
    let decoded = imageio::load(path, limits).map_err(|e| e.to_string())?;
    let decode = t0.elapsed();
    let rgb = decoded.rgb;
    let (width, height) = rgb.dimensions();
    let frame = Frame::rgb(width, height, rgb.as_raw());
    let routed = route(pipelines, frame).map_err(|e| format!("{}: {e}", path.display()))?;
    let pipeline = &mut pipelines[routed];
    let today = hallmark_core::clock::today_utc();
    let ctx = Context {
        today: &today,
        seen: &|_| false,
    };
    let outcome = pipeline
        .process(frame, &ctx)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let timings = Timings {
        decode: ms(decode),
        preprocess: ms(outcome.times.preprocess),
        inference: ms(outcome.times.inference),
        postprocess: ms(outcome.times.postprocess),
        total: ms(decode + outcome.total),
    };
    let detections = outcome.detections.to_vec();
    let judged = outcome.judged;
    let manifest = pipeline.manifest();
    let mut record = scan_record(
        path.display().to_string(),
        (width, height),
        manifest,
        &judged,
        &detections,
        timings,
    );
    record.model_variant = pipeline.bundle.variant().map(str::to_string);
    if let Some(dir) = annotate_dir {
        let annotated = annotate(rgb, &judged);
        let target = unique_name(dir, path, used_names);
        image::DynamicImage::ImageRgb8(annotated)
            .save_with_format(&target, image::ImageFormat::Jpeg)
            .map_err(|e| {
                format!(
                    "{}: cannot write annotated image {}: {e}",
                    path.display(),
                    target.display()
                )
            })?;
    }
    Ok(record)
}

/// `DIR/<stem>.jpg`, or `DIR/<stem>-2.jpg`, ... when another input of this scan had the same stem.
fn unique_name(dir: &Path, path: &Path, used: &mut std::collections::HashSet<PathBuf>) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "image".to_string(), |s| s.to_string_lossy().into_owned());
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{stem}.jpg")
        } else {
            format!("{stem}-{n}.jpg")
        };
        let candidate = dir.join(name);
        if used.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_names_do_not_collide() {
        let mut used = std::collections::HashSet::new();
        let d = Path::new("/out");
        assert_eq!(
            unique_name(d, Path::new("x/a.png"), &mut used),
            Path::new("/out/a.jpg")
        );
        assert_eq!(
            unique_name(d, Path::new("y/a.jpg"), &mut used),
            Path::new("/out/a-2.jpg")
        );
    }
}
