//! The verdict event (`schema: "hallmark.verdict/1"`), one per decided item, on
//! `{prefix}/things/{thing}/verdicts` (QoS 1) and as a JSON line on the daemon's stdout; with a unique
//! `id` so a consumer can drop duplicates. Its detection and barcode records are also those of
//! `hallmark scan`'s record ([`crate::scan`]).

use serde::{Deserialize, Serialize};

use crate::manifest::Role;
use crate::VerdictKind;

pub const SCHEMA: &str = "hallmark.verdict/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictEvent {
    pub schema: String,
    pub id: String,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    pub thing: String,
    pub source: String,
    /// `kiosk` or `conveyor`.
    pub mode: String,
    pub brand: String,
    pub model_revision: u64,
    pub item: ItemInfo,
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
    pub barcode: Option<Barcode>,
    pub detections: Vec<DetectionRecord>,
    /// File name of the annotated picture in the evidence folder (counterfeit and inconclusive only).
    pub evidence: Option<String>,
    /// From the capture of the frame the item is shown in (its best sighting) to this verdict; for a
    /// tracked pack this includes the frames it stayed in view after that.
    pub latency_ms: f64,
    /// The item a kiosk scan is about (the one on the screen).
    pub primary: bool,
    /// Conveyor with a reject gate: when the pack reaches the gate and when its decision came, in
    /// belt encoder counts. Absent elsewhere, and when the belt's count could not be known at the
    /// decision (the controller's line cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateTiming>,
}

/// A conveyor pack's decision against its arrival at the reject gate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GateTiming {
    /// The belt count at which its leading edge reaches the gate (the agent's estimate).
    pub arrives_at: u64,
    /// The belt count when its decision was made.
    pub decided_at: u64,
    /// How far before the gate the decision came, in belt millimetres (negative: after it).
    pub margin_mm: f64,
    /// The decision came when the pack was at the gate or past it: the gate handled the pack by its
    /// `on_late` rule (default: diverted), not by this verdict.
    pub late: bool,
    /// The verdict's consequence at the gate: divert (reject) or let pass.
    pub reject: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// A barcode read on an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Barcode {
    /// `ean13`, `upca` or `datamatrix`.
    pub format: String,
    pub text: String,
    /// 14 digits, when the code carries a GTIN.
    pub gtin: Option<String>,
    pub serial: Option<String>,
    /// `YYYY-MM-DD`.
    pub expiry: Option<String>,
    /// The GTIN's check digit is right.
    pub valid: bool,
}

/// One detection, in the original image's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRecord {
    pub class: String,
    pub role: Option<Role>,
    pub confidence: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

impl VerdictEvent {
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of plain fields always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_back_as_written_with_the_contract_names() {
        let e = VerdictEvent {
            schema: SCHEMA.into(),
            id: "0190-abc".into(),
            ts: "2026-11-27T01:02:03.045Z".into(),
            thing: "kiosk-1".into(),
            source: "replay:models/samples/northwind".into(),
            mode: "kiosk".into(),
            brand: "northwind".into(),
            model_revision: 28,
            item: ItemInfo {
                id: 3,
                bbox: Some([1.0, 2.0, 3.0, 4.0]),
                product: "Earl Grey".into(),
                gtin: "05012345000019".into(),
                frames: 1,
                frame: Some("a.jpg".into()),
            },
            verdict: VerdictKind::Counterfeit,
            confidence: 0.99,
            reason: "the barcode has a wrong check digit".into(),
            barcode: Some(Barcode {
                format: "ean13".into(),
                text: "5012345000018".into(),
                gtin: Some("05012345000018".into()),
                serial: None,
                expiry: None,
                valid: false,
            }),
            detections: vec![DetectionRecord {
                class: "earl-grey".into(),
                role: Some(Role::Genuine),
                confidence: 0.9,
                bbox: [1.0, 2.0, 3.0, 4.0],
            }],
            evidence: Some("x.jpg".into()),
            latency_ms: 12.5,
            primary: true,
            gate: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["item"]["box"][3], 4.0);
        assert_eq!(v["barcode"]["valid"], false);
        assert_eq!(v["detections"][0]["role"], "genuine");
        assert_eq!(v["verdict"], "counterfeit");
        assert!(v.get("gate").is_none(), "no gate, no key: {v}");
        let back: VerdictEvent = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(back, e);
        let gated = VerdictEvent {
            gate: Some(GateTiming {
                arrives_at: 1200,
                decided_at: 900,
                margin_mm: 300.0,
                late: false,
                reject: true,
            }),
            ..e
        };
        let v: serde_json::Value = serde_json::from_slice(&gated.to_json()).unwrap();
        assert_eq!(v["gate"]["margin_mm"], 300.0);
        let back: VerdictEvent = serde_json::from_slice(&gated.to_json()).unwrap();
        assert_eq!(back, gated);
    }
}
