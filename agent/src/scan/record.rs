//! The JSON Lines record `hallmark scan` prints per image (see the conventions): the verdict, the
//! detections in the original image's pixels, and the time of each stage. Pure data shaping.

use serde::Serialize;

use crate::bundle::{Manifest, Role};
use crate::detector::Detection;
use crate::verdict::{Verdict, VerdictKind};

#[derive(Debug, Serialize)]
pub struct ScanRecord {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub brand: String,
    pub model_revision: u64,
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
    pub barcode: Option<String>,
    pub detections: Vec<DetectionRecord>,
    pub timings_ms: Timings,
}

#[derive(Debug, Serialize)]
pub struct DetectionRecord {
    pub class: String,
    pub role: Option<Role>,
    pub confidence: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

#[derive(Debug, Default, Serialize)]
pub struct Timings {
    pub decode: f64,
    pub preprocess: f64,
    pub inference: f64,
    pub postprocess: f64,
    pub total: f64,
}

/// An image that could not be scanned.
#[derive(Debug, Serialize)]
pub struct ErrorRecord {
    pub image: String,
    pub error: String,
}

impl DetectionRecord {
    pub fn new(d: &Detection, manifest: &Manifest) -> Self {
        let class = manifest.class(d.class);
        DetectionRecord {
            class: class.map_or_else(|| format!("class-{}", d.class), |c| c.name.clone()),
            role: class.map(|c| c.role),
            confidence: round(d.score, 1e4),
            bbox: d.bbox.map(|v| round(v, 1e2)),
        }
    }
}

impl ScanRecord {
    pub fn new(
        image: String,
        width: u32,
        height: u32,
        manifest: &Manifest,
        verdict: &Verdict,
        detections: &[Detection],
        timings_ms: Timings,
    ) -> Self {
        ScanRecord {
            image,
            width,
            height,
            brand: manifest.brand.clone(),
            model_revision: manifest.revision,
            verdict: verdict.verdict,
            confidence: round(verdict.confidence, 1e4),
            reason: verdict.reason.clone(),
            barcode: None,
            detections: detections
                .iter()
                .map(|d| DetectionRecord::new(d, manifest))
                .collect(),
            timings_ms,
        }
    }
}

/// Milliseconds with microsecond resolution.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round(v: f32, scale: f32) -> f32 {
    (v * scale).round() / scale
}
