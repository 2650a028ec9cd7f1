//! Decided items and judged frames as the wire records (`hallmark_proto`): the verdict event the
//! daemon publishes per item, and the record `hallmark scan` prints per image. Pure data shaping:
//! figures are rounded here (confidences to 4 places, boxes to 2, latencies to the microsecond).

use hallmark_detect::Detection;
use hallmark_proto::event::{DetectionRecord, ItemInfo, VerdictEvent, SCHEMA};
use hallmark_proto::manifest::Manifest;
use hallmark_proto::scan::{ItemRecord, ScanRecord, Timings};

use crate::modes::decided::Decided;
use crate::modes::Mode;
use crate::verdict::code::shown;
use crate::verdict::{FrameVerdict, ItemVerdict};

/// Who is speaking: the fields every event of this agent shares.
#[derive(Debug, Clone)]
pub struct Origin {
    pub thing: String,
    pub source: String,
    pub mode: Mode,
}

/// The event of a decided item: `id` unique, `ts` RFC 3339, `item_id` the agent's item counter,
/// `latency_ms` from its frame's capture to now. `evidence` is the caller's to set.
pub fn verdict_event(
    (id, ts): (String, String),
    item_id: u32,
    origin: &Origin,
    manifest: &Manifest,
    d: &Decided,
    latency_ms: f64,
) -> VerdictEvent {
    VerdictEvent {
        schema: SCHEMA.to_string(),
        id,
        ts,
        thing: origin.thing.clone(),
        source: origin.source.clone(),
        mode: origin.mode.as_str().to_string(),
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
        barcode: shown(&d.codes).map(|c| c.barcode()),
        detections: d.last.as_ref().map_or_else(Vec::new, |l| {
            l.detections
                .iter()
                .map(|x| detection_record(x, manifest))
                .collect()
        }),
        evidence: None,
        latency_ms: (latency_ms * 1e3).round() / 1e3,
        primary: d.primary,
        gate: None,
    }
}

/// One detection, with its class's name and role.
pub fn detection_record(d: &Detection, manifest: &Manifest) -> DetectionRecord {
    let class = manifest.class(d.class);
    DetectionRecord {
        class: class.map_or_else(|| format!("class-{}", d.class), |c| c.name.clone()),
        role: class.map(|c| c.role),
        confidence: round(d.score, 1e4),
        bbox: d.bbox.map(|v| round(v, 1e2)),
    }
}

/// One item of a judged frame; `id` is the caller's (the item's index in a scan).
pub fn item_record(
    id: u32,
    item: &ItemVerdict,
    detections: &[Detection],
    manifest: &Manifest,
) -> ItemRecord {
    let d = &item.decision;
    ItemRecord {
        id,
        bbox: item.bbox.map(|v| round(v, 1e2)),
        product: d.product.clone(),
        gtin: d.gtin.clone(),
        verdict: d.verdict,
        confidence: round(d.confidence, 1e4),
        reason: d.reason.clone(),
        barcode: shown(&item.codes).map(|c| c.barcode()),
        detections: item
            .members
            .iter()
            .map(|&i| detection_record(&detections[i], manifest))
            .collect(),
    }
}

/// The record of one scanned image.
pub fn scan_record(
    image: String,
    (width, height): (u32, u32),
    manifest: &Manifest,
    judged: &FrameVerdict,
    detections: &[Detection],
    timings_ms: Timings,
) -> ScanRecord {
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
            .map(|it| item_record(it.index as u32, it, detections, manifest))
            .collect(),
        verdict: judged.verdict.verdict,
        confidence: round(judged.verdict.confidence, 1e4),
        reason: judged.verdict.reason.clone(),
        primary: judged.primary.map(|p| p as u32),
        detections: detections
            .iter()
            .map(|d| detection_record(d, manifest))
            .collect(),
        timings_ms,
    }
}

/// Milliseconds with microsecond resolution.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round(v: f32, scale: f32) -> f32 {
    (v * scale).round() / scale
}
