//! The pipeline: a verified bundle, its detector and the verdict rule, ready for frames. `scan`,
//! `bench` and (later) the agent daemon all go through it.

use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::bundle::{Bundle, BundleError, Manifest, TrustError, TrustedKeys};
use crate::detector::{Detection, Detector, DetectorError, Frame, StageTimes};
use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};
use crate::verdict::{self, Verdict};

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
}

/// The result of one frame.
pub struct Outcome<'a> {
    pub detections: &'a [Detection],
    pub verdict: Verdict,
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
        let bundle = Bundle::open(bundle, &trust)?;
        let runtime = Runtime::load(runtime)?;
        let detector = Detector::new(&runtime, &bundle)?;
        Ok(Pipeline {
            runtime,
            bundle,
            detector,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        self.bundle.manifest()
    }

    /// Detector and verdict on one decoded frame.
    pub fn process(&mut self, frame: Frame<'_>) -> Result<Outcome<'_>, DetectorError> {
        let t0 = Instant::now();
        let (detections, times) = self.detector.detect(frame)?;
        let verdict = verdict::decide(detections, self.bundle.manifest());
        Ok(Outcome {
            detections,
            verdict,
            times,
            total: t0.elapsed(),
        })
    }
}
