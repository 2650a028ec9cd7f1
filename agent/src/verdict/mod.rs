//! Verdicts: what the detections (and barcodes) say about each physical pack in view.
//!
//! One rule, evaluated as it runs: the model pipeline scores the same rule in Python, and both
//! implementations pass the shared vectors in `tests/vectors/verdict.json`.
//! - [`items`]: detections of any class that overlap are one item (one physical pack).
//! - [`rule`]: an item's genuine and counterfeit evidence → `genuine` / `counterfeit` / `inconclusive`,
//!   with a margin so a near tie is never a counterfeit.
//! - [`code`]: barcode facts inside an item (check digit, GS1 prefix, another product's GTIN, a cloned
//!   serial, an expiry date) as counterfeit or inconclusive signals.
//! - [`frame`]: a whole frame judged item by item, and its primary item (kiosk framing).
//! - [`aggregate`]: a tracked item's evidence over many frames (conveyor), decided by the same rule.
//!
//! Everything here is pure: values in, values out.

pub mod aggregate;
pub mod code;
pub mod frame;
pub mod items;
pub mod rule;

use serde::Serialize;

/// The verdict kinds are the link's, so the screen, the JSON and MQTT share one type.
pub use hallmark_link::Verdict as VerdictKind;

pub use aggregate::Aggregate;
pub use code::{Code, Signal};
pub use frame::{judge, FrameVerdict, ItemVerdict};
pub use items::{group, Item, ITEM_IOU};
pub use rule::{decide, Decision, Evidence};

/// A verdict with its confidence and a reason a person can read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
}
