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
        };
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["item"]["box"][3], 4.0);
        assert_eq!(v["barcode"]["valid"], false);
        assert_eq!(v["detections"][0]["role"], "genuine");
        assert_eq!(v["verdict"], "counterfeit");
        let back: VerdictEvent = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(back, e);
    }
}
