//! Verdicts: what the detections (and barcodes) say about each physical pack in view.
//!
//! One rule, evaluated as it runs: the model pipeline scores the same rule in Python, and both
//! implementations pass the shared vectors in `tests/vectors/verdict.json`.
//! - [`items`]: detections of any class that overlap are one item (one physical pack).
//! - [`rule`]: an item's genuine and counterfeit evidence → `genuine` / `counterfeit` / `inconclusive`,
//!   with a margin so a near tie is never a counterfeit.
//! - [`code`]: barcode facts inside an item (check digit, GS1 prefix, another product's GTIN, an expiry
//!   date) as counterfeit or inconclusive signals.
//! - [`serial`]: serialised codes (GTIN + serial): a clone pair in view, an SGTIN seen before.
//! - [`frame`]: a whole frame judged item by item, and its primary item (kiosk framing).
//! - [`aggregate`]: a tracked item's evidence over many frames (conveyor), decided by the same rule.
//!
//! Everything here is pure: values in, values out.

pub mod aggregate;
pub mod code;
pub mod frame;
pub mod items;
pub mod rule;
pub mod serial;

use serde::Serialize;

/// The verdict kinds are the link's, so the screen, the JSON and MQTT share one type.
pub use hallmark_proto::VerdictKind;

pub use aggregate::Aggregate;
pub use code::{Code, Sgtin, Signal};
pub use frame::{judge, judge_items, FrameVerdict, ItemVerdict};
pub use items::{group, Item, ITEM_IOU};
pub use rule::{decide, decide_item, Decision, Evidence};
pub use serial::Partner;

/// What an item's verdict needs besides the frame: today's date (`YYYY-MM-DD`, for expiry dates) and
/// whether an SGTIN was remembered from a pack decided genuine before.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub today: &'a str,
    pub seen: &'a dyn Fn(&Sgtin) -> bool,
}

/// A verdict with its confidence and a reason a person can read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
}

/// A two-class manifest (genuine "tea", counterfeit "tea-fake"; thresholds 0.8 / 0.5) for unit tests.
#[cfg(any(test, feature = "test-support"))]
pub fn test_manifest() -> hallmark_proto::manifest::Manifest {
    let v = serde_json::json!({
        "schema": "hallmark.model/1", "brand": "b", "revision": 1,
        "model": {"file": "model.onnx", "sha256": "0".repeat(64), "format": "yolov5",
                  "input": {"name": "images", "width": 320, "height": 320}, "output": {"name": "output0"}},
        "classes": [{"id": 0, "name": "tea", "product": "Tea", "gtin": "05012345000013", "role": "genuine"},
                    {"id": 1, "name": "tea-fake", "product": "Tea", "gtin": "05012345000013", "role": "counterfeit"}],
        "gs1_prefixes": ["5012345"],
        "thresholds": {"confidence": 0.25, "iou": 0.45, "genuine": 0.8, "counterfeit": 0.5}
    });
    hallmark_proto::manifest::Manifest::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
}
