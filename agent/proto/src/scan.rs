//! The JSON line `hallmark scan` prints per image (see the conventions): one entry per item (physical
//! pack) with its verdict, the primary item's verdict at the top level, every detection in the original
//! image's pixels, and the time of each stage; or, for an image that could not be scanned, its error.

use serde::{Deserialize, Serialize};

use crate::event::{Barcode, DetectionRecord};
use crate::VerdictKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub brand: String,
    pub model_revision: u64,
    /// The bundle variant that ran (absent: the main model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub id: u32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub product: String,
    pub gtin: String,
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
    /// The code that identifies the pack best, if any was read inside it.
    pub barcode: Option<Barcode>,
    pub detections: Vec<DetectionRecord>,
}

/// Milliseconds per stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub decode: f64,
    pub preprocess: f64,
    pub inference: f64,
    pub postprocess: f64,
    pub total: f64,
}

/// An image that could not be scanned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub image: String,
    pub error: String,
}
