//! The verdict event (`schema: "hallmark.verdict/1"`, see the conventions): one per decided item, with
//! a unique id so a consumer can drop duplicates. Pure data shaping.

use serde::Serialize;

use super::decided::Decided;
use crate::bundle::Manifest;
use crate::config::Mode;
use crate::scan::DetectionRecord;
use crate::verdict::{Code, VerdictKind};

pub const SCHEMA: &str = "hallmark.verdict/1";

#[derive(Debug, Clone, Serialize)]
pub struct VerdictEvent {
    pub schema: &'static str,
    pub id: String,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    pub thing: String,
    pub source: String,
    pub mode: &'static str,
    pub brand: String,
    pub model_revision: u64,
    pub item: ItemInfo,
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
    pub barcode: Option<Code>,
    pub detections: Vec<DetectionRecord>,
    /// File name of the annotated picture in the evidence folder (counterfeit and inconclusive only).
    pub evidence: Option<String>,
    /// From the capture of the frame the item is shown in (its best sighting) to this verdict; for a
    /// tracked pack this includes the frames it stayed in view after that.
    pub latency_ms: f64,
    /// The item a kiosk scan is about (the one on the screen).
    pub primary: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemInfo {
    /// The agent's item counter (unique while it runs; also on the controller's screen and rejects).
    pub id: u32,
    #[serde(rename = "box")]
    pub bbox: Option<[f32; 4]>,
    pub product: String,
    pub gtin: String,
    pub frames: u32,
    /// The image or frame it was last seen in.
    pub frame: Option<String>,
}

/// Who is speaking: the fields every event of this agent shares.
#[derive(Debug, Clone)]
pub struct Origin {
    pub thing: String,
    pub source: String,
    pub mode: Mode,
}

impl VerdictEvent {
    pub fn new(
        id: String,
        ts: String,
        item_id: u32,
        origin: &Origin,
        manifest: &Manifest,
        d: &Decided,
        latency_ms: f64,
    ) -> VerdictEvent {
        let round = |v: f32, s: f32| (v * s).round() / s;
        VerdictEvent {
            schema: SCHEMA,
            id,
            ts,
            thing: origin.thing.clone(),
            source: origin.source.clone(),
            mode: origin.mode.as_str(),
            brand: manifest.brand.clone(),
            model_revision: manifest.revision,
            item: ItemInfo {
                id: item_id,
                bbox: d.last.as_ref().map(|l| l.bbox.map(|v| round(v, 1e2))),
                product: d.decision.product.clone(),
                gtin: d.decision.gtin.clone(),
                frames: d.frames,
                frame: d.last.as_ref().map(|l| l.frame.origin.clone()),
            },
            verdict: d.decision.verdict,
            confidence: round(d.decision.confidence, 1e4),
            reason: d.decision.reason.clone(),
            barcode: crate::verdict::code::shown(&d.codes).cloned(),
            detections: d.last.as_ref().map_or_else(Vec::new, |l| {
                l.detections
                    .iter()
                    .map(|x| DetectionRecord::new(x, manifest))
                    .collect()
            }),
            evidence: None,
            latency_ms: (latency_ms * 1e3).round() / 1e3,
            primary: d.primary,
        }
    }
}
