//! A bundle's self-test: `selftest/expected.json` names test images (in `selftest/`) and the verdict
//! the model must give each (the primary item's, by the agent's own rule, barcodes included). A new
//! revision must reproduce every one before it may serve; a bundle without a self-test is taken on its
//! signature alone (and says so in its status).
//!
//! ```json
//! {"images": [{"file": "genuine-1.jpg", "verdict": "genuine"}, {"file": "empty.jpg", "verdict": "no_product"}]}
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::bundle::Manifest;
use crate::detector::{Detector, Frame};
use crate::imageio::{self, ImageLimits};
use hallmark_core::step::judge_frame;
use hallmark_core::verdict::{self, VerdictKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    images: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    file: String,
    verdict: VerdictKind,
}

/// How a self-test went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every image gave its verdict.
    Passed(usize),
    /// The bundle has no `selftest/expected.json`.
    Absent,
}

/// Runs the self-test in `bundle_dir` with `detector`; `Err` says which image disagreed or why the
/// test could not run.
pub fn run(
    bundle_dir: &Path,
    detector: &mut Detector,
    manifest: &Manifest,
    limits: ImageLimits,
) -> Result<Outcome, String> {
    let dir = bundle_dir.join("selftest");
    let spec = dir.join("expected.json");
    let bytes = match std::fs::read(&spec) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::Absent),
        Err(e) => return Err(format!("self-test: cannot read {}: {e}", spec.display())),
    };
    let expected: Expected = serde_json::from_slice(&bytes)
        .map_err(|e| format!("self-test: selftest/expected.json: {e}"))?;
    if expected.images.is_empty() {
        return Err("self-test: selftest/expected.json lists no images".into());
    }
    let today = hallmark_core::clock::today_utc();
    let mut barcodes = crate::codes::Barcodes::default();
    for case in &expected.images {
        // Design: names only, inside selftest/ (the archive check already refused traversal).
        if case.file.contains('/') || case.file.contains("..") {
            return Err(format!("self-test: bad image name {:?}", case.file));
        }
        let path = dir.join(&case.file);
        let decoded = imageio::load(&path, limits).map_err(|e| format!("self-test: {e}"))?;
        let (w, h) = decoded.rgb.dimensions();
        let frame = Frame::rgb(w, h, decoded.rgb.as_raw());
        let (detections, _) = detector
            .detect(frame)
            .map_err(|e| format!("self-test: {}: {e}", case.file))?;
        let ctx = verdict::Context {
            today: &today,
            seen: &|_| false,
        };
        let judged = judge_frame(frame, detections, &mut barcodes, manifest, &ctx);
        if judged.verdict.verdict != case.verdict {
            return Err(format!(
                "self-test: {} gave {} ({}), expected {}",
                case.file,
                judged.verdict.verdict.as_str(),
                judged.verdict.reason,
                case.verdict.as_str()
            ));
        }
    }
    Ok(Outcome::Passed(expected.images.len()))
}
