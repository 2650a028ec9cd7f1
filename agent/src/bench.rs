//! `hallmark bench`: per-stage medians of the pipeline, and the ratio of the whole pipeline (decoded
//! frame → letterbox → ONNX Runtime → decode/NMS/scale → verdict) to a bare ONNX Runtime `run` on the
//! same input tensor and threads, measured side by side in one loop (the two alternate, so drift in
//! machine load hits both). Image decoding is timed and reported on its own: camera frames arrive raw.
//! It also times letterbox + postprocess of a decoded 1920×1080 frame; both stages run on the calling
//! thread only, so that figure is a one-core figure.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;
use thiserror::Error;

use crate::detector::{DetectorError, Frame};
use crate::imageio::{self, ImageError, ImageLimits};
use crate::pipeline::Pipeline;
use hallmark_core::step::{judge_frame, NoCodes};
use hallmark_core::verdict;

#[derive(Debug, Error)]
pub enum BenchError {
    #[error("no images to benchmark in {0} (give --images DIR with JPEG/PNG/WebP files)")]
    NoImages(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Detector(#[from] DetectorError),
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub model: String,
    pub brand: String,
    pub model_revision: u64,
    /// The bundle variant measured (absent: the main model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_variant: Option<String>,
    /// The model's input size.
    pub input: (u32, u32),
    pub providers: Vec<String>,
    pub intra_threads: usize,
    pub iterations: usize,
    pub images: usize,
    /// Median decode time of each image file, then the median of those.
    pub decode_ms: f64,
    pub stages_ms: Stages,
    /// Median of the whole pipeline from a decoded frame to the verdict.
    pub pipeline_ms: f64,
    /// Median of a bare `session.run` on the same prepared input.
    pub bare_run_ms: f64,
    /// `pipeline_ms / bare_run_ms`.
    pub ratio_pipeline_to_bare_run: f64,
    pub ratio_target: f64,
    pub frame_1080p: Frame1080,
}

#[derive(Debug, Serialize)]
pub struct Stages {
    pub preprocess: f64,
    pub inference: f64,
    pub postprocess: f64,
    pub verdict: f64,
}

#[derive(Debug, Serialize)]
pub struct Frame1080 {
    pub letterbox_ms: f64,
    pub postprocess_ms: f64,
    /// Median over iterations of letterbox + postprocess of one frame (one core).
    pub letterbox_plus_postprocess_ms: f64,
    pub target_ms: f64,
}

/// The figures: the pipeline at most 10 % over a bare run; letterbox + postprocess of a
/// 1920×1080 frame within 1.5 ms.
pub const RATIO_TARGET: f64 = 1.10;
pub const FRAME_1080P_TARGET_MS: f64 = 1.5;

/// Runs the benchmark on the image files `images`, `iterations` rounds.
pub fn run(
    pipeline: &mut Pipeline,
    images: &[PathBuf],
    iterations: usize,
    limits: ImageLimits,
) -> Result<BenchReport, BenchError> {
    let iterations = iterations.max(1);
    let mut frames: Vec<RgbImage> = Vec::new();
    let mut decode_medians = Vec::new();
    for path in images {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let t = Instant::now();
            last = Some(imageio::load(path, limits)?);
            times.push(t.elapsed());
        }
        decode_medians.push(median(&mut times));
        if let Some(d) = last {
            frames.push(d.rgb);
        }
    }
    if frames.is_empty() {
        return Err(BenchError::NoImages(images.first().map_or_else(
            || "the sample folder".into(),
            |p| p.display().to_string(),
        )));
    }

    // Warm up (first runs allocate arenas, spin up threads).
    for img in frames.iter().take(3) {
        pipeline.process(
            frame(img),
            &crate::pipeline::Context {
                today: "2000-01-01",
                seen: &|_| false,
            },
        )?;
        pipeline.detector.run_bare()?;
    }

    let (mut full, mut bare) = (Vec::new(), Vec::new());
    let (mut pre, mut inf, mut post, mut ver) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations {
        let img = &frames[i % frames.len()];
        // Alternate which goes first; the bare run uses the tensor the pipeline just prepared.
        let bare_first = i % 2 == 1;
        if bare_first {
            pipeline.detector.preprocess(frame(img))?;
            let t = Instant::now();
            pipeline.detector.run_bare()?;
            bare.push(t.elapsed());
        }
        let t = Instant::now();
        let (dets, times) = pipeline.detector.detect(frame(img))?;
        let tv = Instant::now();
        let ctx = verdict::Context {
            today: "2000-01-01",
            seen: &|_| false,
        };
        // The frame step without barcodes: the verdict stage as the figures always measured it.
        let v = judge_frame(
            frame(img),
            dets,
            &mut NoCodes,
            pipeline.bundle.manifest(),
            &ctx,
        );
        let end = Instant::now();
        std::hint::black_box(v);
        full.push(end - t);
        pre.push(times.preprocess);
        inf.push(times.inference);
        post.push(times.postprocess);
        ver.push(end - tv);
        if !bare_first {
            let t = Instant::now();
            pipeline.detector.run_bare()?;
            bare.push(t.elapsed());
        }
    }

    // A decoded 1920×1080 frame made from the first image.
    let hd = image::imageops::resize(
        &frames[0],
        1920,
        1080,
        image::imageops::FilterType::Triangle,
    );
    let (mut lb, mut pp, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        let (_, times) = pipeline.detector.detect(frame(&hd))?;
        lb.push(times.preprocess);
        pp.push(times.postprocess);
        both.push(times.preprocess + times.postprocess);
    }

    let pipeline_ms = ms(median(&mut full));
    let bare_run_ms = ms(median(&mut bare));
    Ok(BenchReport {
        model: pipeline.bundle.dir().display().to_string(),
        brand: pipeline.manifest().brand.clone(),
        model_revision: pipeline.manifest().revision,
        model_variant: pipeline.bundle.variant().map(str::to_string),
        input: (
            pipeline.manifest().model.input.width,
            pipeline.manifest().model.input.height,
        ),
        providers: pipeline
            .runtime
            .providers()
            .iter()
            .map(|p| p.to_string())
            .collect(),
        intra_threads: pipeline.runtime.threads(),
        iterations,
        images: frames.len(),
        decode_ms: ms(median(&mut decode_medians)),
        stages_ms: Stages {
            preprocess: ms(median(&mut pre)),
            inference: ms(median(&mut inf)),
            postprocess: ms(median(&mut post)),
            verdict: ms(median(&mut ver)),
        },
        pipeline_ms,
        bare_run_ms,
        ratio_pipeline_to_bare_run: (pipeline_ms / bare_run_ms * 1000.0).round() / 1000.0,
        ratio_target: RATIO_TARGET,
        frame_1080p: Frame1080 {
            letterbox_ms: ms(median(&mut lb)),
            postprocess_ms: ms(median(&mut pp)),
            letterbox_plus_postprocess_ms: ms(median(&mut both)),
            target_ms: FRAME_1080P_TARGET_MS,
        },
    })
}

impl BenchReport {
    /// The report for a person.
    pub fn human(&self) -> String {
        format!(
            "model {} ({} r{}{}, input {}×{}), providers {:?}, {} intra-op threads, {} iterations over {} images\n\
             decode (per file, own stage)  {:>8.3} ms\n\
             preprocess                    {:>8.3} ms\n\
             inference                     {:>8.3} ms\n\
             postprocess                   {:>8.3} ms\n\
             verdict                       {:>8.3} ms\n\
             pipeline (frame → verdict)    {:>8.3} ms\n\
             bare session.run              {:>8.3} ms\n\
             ratio pipeline / bare run     {:>8.3}   (target ≤ {:.2})\n\
             1920×1080 letterbox+postprocess {:>6.3} ms (letterbox {:.3}, postprocess {:.3}; target ≤ {:.1}, one core)",
            self.model,
            self.brand,
            self.model_revision,
            self.model_variant
                .as_deref()
                .map(|v| format!(", variant {v}"))
                .unwrap_or_default(),
            self.input.0,
            self.input.1,
            self.providers,
            self.intra_threads,
            self.iterations,
            self.images,
            self.decode_ms,
            self.stages_ms.preprocess,
            self.stages_ms.inference,
            self.stages_ms.postprocess,
            self.stages_ms.verdict,
            self.pipeline_ms,
            self.bare_run_ms,
            self.ratio_pipeline_to_bare_run,
            self.ratio_target,
            self.frame_1080p.letterbox_plus_postprocess_ms,
            self.frame_1080p.letterbox_ms,
            self.frame_1080p.postprocess_ms,
            self.frame_1080p.target_ms,
        )
    }
}

fn frame(img: &RgbImage) -> Frame<'_> {
    Frame::rgb(img.width(), img.height(), img.as_raw())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
