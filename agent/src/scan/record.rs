//! The JSON Lines record `hallmark scan` prints per image (see the conventions): one entry per item
//! (physical pack) with its verdict, the primary item's verdict at the top level, every detection in
//! the original image's pixels, and the time of each stage. Pure data shaping; the daemon's verdict
//! events reuse [`ItemRecord`] and [`DetectionRecord`].

use serde::Serialize;

use crate::bundle::{Manifest, Role};
use crate::detector::Detection;
use crate::verdict::{Code, FrameVerdict, ItemVerdict, VerdictKind};

#[derive(Debug, Serialize)]
pub struct ScanRecord {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub brand: String,
    pub model_revision: u64,
    /// The bundle variant that ran (absent: the main model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_variant: Option<String>,
    pub items: Vec<ItemRecord>,
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
    /// The primary item's id, when there is one.
    pub primary: Option<u32>,
    pub detections: Vec<DetectionRecord>,
    pub timings_ms: Timings,
}

/// One physical pack and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ItemRecord {
    pub id: u32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub product: String,
    pub gtin: String,
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
    /// The first code read inside the item, if any.
    pub barcode: Option<Code>,
    pub detections: Vec<DetectionRecord>,
}

#[derive(Debug, Clone, Serialize)]
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

impl ItemRecord {
    /// `id` is the caller's: the item's index in a scan, a unique counter in the daemon.
    pub fn new(id: u32, item: &ItemVerdict, detections: &[Detection], manifest: &Manifest) -> Self {
        let d = &item.decision;
        ItemRecord {
            id,
            bbox: item.bbox.map(|v| round(v, 1e2)),
            product: d.product.clone(),
            gtin: d.gtin.clone(),
            verdict: d.verdict,
            confidence: round(d.confidence, 1e4),
            reason: d.reason.clone(),
            barcode: crate::verdict::code::shown(&item.codes).cloned(),
            detections: item
                .members
                .iter()
                .map(|&i| DetectionRecord::new(&detections[i], manifest))
                .collect(),
        }
    }
}

impl ScanRecord {
    pub fn new(
        image: String,
        (width, height): (u32, u32),
        manifest: &Manifest,
        judged: &FrameVerdict,
        detections: &[Detection],
        timings_ms: Timings,
    ) -> Self {
        ScanRecord {
            image,
            width,
            height,
            brand: manifest.brand.clone(),
            model_revision: manifest.revision,
            model_variant: None,
            items: judged
                .items
                .iter()
                .map(|it| ItemRecord::new(it.index as u32, it, detections, manifest))
                .collect(),
            verdict: judged.verdict.verdict,
            confidence: round(judged.verdict.confidence, 1e4),
            reason: judged.verdict.reason.clone(),
            primary: judged.primary.map(|p| p as u32),
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
