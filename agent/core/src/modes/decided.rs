//! What the modes hand to the sinks: one decided item (a pack's one verdict), with the frame it was
//! seen best in, for the evidence picture.

use std::sync::Arc;

use hallmark_detect::Detection;

use crate::frame::OwnedFrame;
use crate::verdict::{Code, Decision, Sgtin};

/// A sighting of an item (the best one, for a tracked item): the frame, its box there, and its
/// detections there.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub frame: Arc<OwnedFrame>,
    pub bbox: [f32; 4],
    pub detections: Vec<Detection>,
}

/// A pack's verdict, decided once.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The track (conveyor, triggered kiosk scan) or per-frame item number this verdict belongs to.
    pub track: u64,
    /// Frames the verdict was aggregated over (0 for `no_product`).
    pub frames: u32,
    pub decision: Decision,
    pub codes: Vec<Code>,
    /// `None` for `no_product` (nothing was seen).
    pub last: Option<Sighting>,
    /// The item a kiosk scan is about (shown on the screen).
    pub primary: bool,
}

impl Decided {
    /// The SGTINs to remember from this verdict, to spot a cloned code later: those of a pack decided
    /// genuine, and only from live capture (`live`). A doubtful pack, or a recording replayed, must never
    /// make a later genuine pack look copied.
    pub fn remembered(&self, live: bool) -> Vec<Sgtin> {
        if !live {
            return Vec::new();
        }
        crate::verdict::serial::remembered(&self.decision, &self.codes)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::VerdictKind;

    fn decided(verdict: VerdictKind) -> Decided {
        Decided {
            track: 1,
            frames: 3,
            decision: Decision {
                verdict,
                confidence: 0.9,
                product: "Tea".into(),
                gtin: "05012345000013".into(),
                reason: String::new(),
            },
            codes: vec![Code {
                format: "datamatrix".into(),
                text: "(01)05012345000013(21)SN1".into(),
                gtin: Some("05012345000013".into()),
                serial: Some("SN1".into()),
                expiry: None,
                check_digit_ok: true,
                bbox: [0.0; 4],
            }],
            last: None,
            primary: true,
        }
    }

    #[test]
    fn only_a_pack_decided_genuine_from_live_capture_is_remembered() {
        let sn1 = Sgtin {
            gtin: "05012345000013".into(),
            serial: "SN1".into(),
        };
        assert_eq!(decided(VerdictKind::Genuine).remembered(true), vec![sn1]);
        assert!(
            decided(VerdictKind::Genuine).remembered(false).is_empty(),
            "a replay"
        );
        for doubtful in [VerdictKind::Inconclusive, VerdictKind::Counterfeit] {
            assert!(decided(doubtful).remembered(true).is_empty());
        }
    }
}
