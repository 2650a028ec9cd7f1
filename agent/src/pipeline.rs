//! The pipeline: a verified bundle, its detector and the frame step (`hallmark_core::step`), ready
//! for frames. `scan` and `bench` open one; the daemon opens its first brand with it.

use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bundle::{Bundle, BundleError, Manifest, TrustError, TrustedKeys};
use crate::detector::{Detection, Detector, DetectorError, Frame, StageTimes};
use crate::runtime::{EngineBuildReport, Runtime, RuntimeError, RuntimeOptions};
use hallmark_core::step::judge_frame;
use hallmark_core::verdict::FrameVerdict;

use crate::codes::Barcodes;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Detector(#[from] DetectorError),
}

/// Everything needed to turn a frame into detections and a verdict.
pub struct Pipeline {
    pub runtime: Runtime,
    pub bundle: Bundle,
    pub detector: Detector,
    /// The barcode reader of the frame step.
    barcodes: Barcodes,
}

/// What the verdict rule needs besides the frame.
pub use hallmark_core::verdict::Context;

/// The result of one frame.
pub struct Outcome<'a> {
    pub detections: &'a [Detection],
    /// Every item's verdict, and the primary item's as the frame's.
    pub judged: FrameVerdict,
    pub times: StageTimes,
    /// Preprocess to verdict.
    pub total: Duration,
}

impl Pipeline {
    /// Loads the runtime, verifies the bundle against the trusted keys and builds its detector.
    pub fn open(
        runtime: RuntimeOptions,
        bundle: &Path,
        public_keys: &[std::path::PathBuf],
    ) -> Result<Pipeline, PipelineError> {
        Self::open_with(runtime, bundle, public_keys, None)
    }

    /// As [`Pipeline::open`], with slow TensorRT engine builds reported to `engine_build` (the daemon
    /// tells systemd).
    pub fn open_with(
        runtime: RuntimeOptions,
        bundle: &Path,
        public_keys: &[std::path::PathBuf],
        engine_build: Option<EngineBuildReport>,
    ) -> Result<Pipeline, PipelineError> {
        // Trust and bundle first: they need no runtime, and their errors are the likelier ones.
        let trust = TrustedKeys::from_pem_files(public_keys)?;
        let bundle =
            Bundle::open(bundle, &trust)?.select(&runtime.encoding, runtime.prefers_gpu())?;
        let mut runtime = Runtime::load(runtime)?;
        if let Some(report) = engine_build {
            runtime.report_engine_builds(report);
        }
        let detector = Detector::new(&runtime, &bundle)?;
        Ok(Pipeline {
            runtime,
            bundle,
            detector,
            barcodes: Barcodes::default(),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        self.bundle.manifest()
    }

    /// Detector, then the frame step (barcodes, the per-item verdicts) on one frame.
    pub fn process(
        &mut self,
        frame: Frame<'_>,
        ctx: &Context<'_>,
    ) -> Result<Outcome<'_>, DetectorError> {
        let t0 = Instant::now();
        let (detections, times) = self.detector.detect(frame)?;
        let judged = judge_frame(
            frame,
            detections,
            &mut self.barcodes,
            self.bundle.manifest(),
            ctx,
        );
        Ok(Outcome {
            detections,
            judged,
            times,
            total: t0.elapsed(),
        })
    }
}
