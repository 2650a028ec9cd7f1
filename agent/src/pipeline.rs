//! The pipeline: a verified bundle, its detector and the per-item verdict rule, ready for frames.
//! `scan`, `bench` and the agent daemon all go through it.

use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bundle::{Bundle, BundleError, Manifest, TrustError, TrustedKeys};
use crate::detector::{Detection, Detector, DetectorError, Frame, StageTimes};
use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};
use crate::verdict::{self, FrameVerdict};

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
    /// Frames in other layouts as packed RGB, for the barcode reader (reused).
    scratch: Vec<u8>,
}

/// What the verdict rule needs besides the frame.
pub use crate::verdict::Context;

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
        // Trust and bundle first: they need no runtime, and their errors are the likelier ones.
        let trust = TrustedKeys::from_pem_files(public_keys)?;
        let bundle =
            Bundle::open(bundle, &trust)?.select(&runtime.encoding, runtime.prefers_gpu())?;
        let runtime = Runtime::load(runtime)?;
        let detector = Detector::new(&runtime, &bundle)?;
        Ok(Pipeline {
            runtime,
            bundle,
            detector,
            scratch: Vec::new(),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        self.bundle.manifest()
    }

    /// Detector, barcodes and the per-item verdicts on one frame.
    pub fn process(
        &mut self,
        frame: Frame<'_>,
        ctx: &Context<'_>,
    ) -> Result<Outcome<'_>, DetectorError> {
        let t0 = Instant::now();
        let (detections, times) = self.detector.detect(frame)?;
        let size = (frame.width, frame.height);
        let boxes: Vec<[f32; 4]> = verdict::group(detections).iter().map(|i| i.bbox).collect();
        let codes = crate::codes::read(frame, &boxes, &mut self.scratch);
        let judged = verdict::judge(detections, &codes, self.bundle.manifest(), size, ctx);
        Ok(Outcome {
            detections,
            judged,
            times,
            total: t0.elapsed(),
        })
    }
}
