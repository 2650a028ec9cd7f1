//! A frame judged item by item: items from the detections, each item's barcodes and verdict, and the
//! primary item — the largest item nearest the centre, which is what a person holding a pack up to a
//! kiosk camera means. The frame's own verdict is its primary item's, `no_product` when there is none.

use std::collections::BTreeSet;

use hallmark_detect::Detection;

use super::code::{Code, Sgtin};
use super::items::{group, Item};
use super::rule::{decide_item, looks_counterfeit, Decision, Evidence};
use super::serial;
use super::{Context, Verdict, VerdictKind};
use hallmark_proto::manifest::Manifest;

/// One item's verdict in a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemVerdict {
    /// Position in creation order (best detection first), unique within the frame.
    pub index: usize,
    pub bbox: [f32; 4],
    /// Indices into the frame's detections, best first.
    pub members: Vec<usize>,
    pub evidence: Evidence,
    pub decision: Decision,
    /// Codes read inside the item.
    pub codes: Vec<Code>,
}

/// Every item of a frame, and which one is primary.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameVerdict {
    pub items: Vec<ItemVerdict>,
    pub primary: Option<usize>,
    /// The primary item's verdict, or `no_product`.
    pub verdict: Verdict,
}

/// Judges one frame. `codes` are all codes read in the frame (frame pixels); each goes to the item its
/// centre lies in. Items of this frame that share an SGTIN are a clone pair ([`serial`]); `ctx` has
/// today's date and the memory of SGTINs seen before.
pub fn judge(
    detections: &[Detection],
    codes: &[Code],
    manifest: &Manifest,
    size: (u32, u32),
    ctx: &Context<'_>,
) -> FrameVerdict {
    judge_items(detections, group(detections), codes, manifest, size, ctx)
}

/// [`judge`] with the detections already grouped into items ([`group`]).
pub fn judge_items(
    detections: &[Detection],
    groups: Vec<Item>,
    codes: &[Code],
    manifest: &Manifest,
    (width, height): (u32, u32),
    ctx: &Context<'_>,
) -> FrameVerdict {
    let codes_of: Vec<Vec<&Code>> = groups
        .iter()
        .map(|item| codes.iter().filter(|c| c.inside(&item.bbox)).collect())
        .collect();
    let evidence: Vec<Evidence> = groups
        .iter()
        .map(|item| Evidence::of(&item.members, detections, manifest))
        .collect();
    // Design: a pair is judged by how each pack is judged on its own, so every look comes first.
    let looks: Vec<bool> = evidence
        .iter()
        .zip(&codes_of)
        .map(|(e, mine)| looks_counterfeit(e, mine, manifest, ctx.today))
        .collect();
    let sgtins: Vec<BTreeSet<Sgtin>> = codes_of
        .iter()
        .map(|mine| serial::sgtins(mine.iter().copied()))
        .collect();
    let items: Vec<ItemVerdict> = groups
        .into_iter()
        .zip(codes_of)
        .zip(evidence)
        .enumerate()
        .map(|(index, ((item, mine), evidence))| {
            let partners = serial::partners(index, &sgtins, &looks);
            let decision = decide_item(&evidence, &mine, &partners, manifest, ctx);
            ItemVerdict {
                index,
                bbox: item.bbox,
                members: item.members,
                evidence,
                decision,
                codes: mine.into_iter().cloned().collect(),
            }
        })
        .collect();
    let primary = primary(items.iter().map(|i| i.bbox), width, height);
    let verdict = match primary.map(|p| &items[p].decision) {
        Some(d) => Verdict {
            verdict: d.verdict,
            confidence: d.confidence,
            reason: d.reason.clone(),
        },
        None => Verdict {
            verdict: VerdictKind::NoProduct,
            confidence: 1.0 - manifest.thresholds.confidence,
            reason: format!(
                "no product detected above confidence {:.2}",
                manifest.thresholds.confidence
            ),
        },
    };
    FrameVerdict {
        items,
        primary,
        verdict,
    }
}

/// The index of the box that maximises area × max(0, 1 − d / (diagonal / 2)), d being the distance of
/// its centre from the frame's centre; ties go to the lower index.
pub fn primary(boxes: impl Iterator<Item = [f32; 4]>, width: u32, height: u32) -> Option<usize> {
    let (w, h) = (width as f32, height as f32);
    let half_diag = (w * w + h * h).sqrt() / 2.0;
    let score = |b: [f32; 4]| {
        let area = (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0);
        let (dx, dy) = ((b[0] + b[2]) / 2.0 - w / 2.0, (b[1] + b[3]) / 2.0 - h / 2.0);
        area * (1.0 - (dx * dx + dy * dy).sqrt() / half_diag).max(0.0)
    };
    let mut best: Option<(usize, f32)> = None;
    for (i, b) in boxes.enumerate() {
        let s = score(b);
        if best.is_none_or(|(_, bs)| s > bs) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Context;

    #[test]
    fn the_centred_pack_wins_over_a_larger_one_at_the_edge() {
        let boxes = [[0.0, 0.0, 300.0, 300.0], [380.0, 260.0, 580.0, 460.0]];
        assert_eq!(primary(boxes.into_iter(), 960, 720), Some(1));
    }

    #[test]
    fn no_box_no_primary() {
        assert_eq!(primary(std::iter::empty(), 960, 720), None);
    }

    fn code(text: &str, gtin: &str, serial: Option<&str>, ok: bool, x: f32) -> Code {
        Code {
            format: if serial.is_some() {
                "datamatrix"
            } else {
                "ean13"
            }
            .into(),
            text: text.into(),
            gtin: Some(gtin.into()),
            serial: serial.map(str::to_string),
            expiry: None,
            check_digit_ok: ok,
            bbox: [x + 50.0, 300.0, x + 90.0, 340.0],
        }
    }

    #[test]
    fn a_partner_counterfeit_by_its_own_barcode_is_the_copy_in_the_pair() {
        let m = crate::verdict::test_manifest();
        let gtin = "05012345000013";
        // Both packs look genuine to the detector; the second prints a wrong check digit beside a copy
        // of the first one's DataMatrix.
        let dets = [
            Detection {
                class: 0,
                score: 0.9,
                bbox: [0.0, 200.0, 200.0, 500.0],
            },
            Detection {
                class: 0,
                score: 0.85,
                bbox: [400.0, 200.0, 600.0, 500.0],
            },
        ];
        let codes = [
            code("dm", gtin, Some("SN1"), true, 0.0),
            code("dm", gtin, Some("SN1"), true, 400.0),
            code("0501234500001x", gtin, None, false, 420.0),
        ];
        let ctx = Context {
            today: "2026-01-01",
            seen: &|_| false,
        };
        let got = judge(&dets, &codes, &m, (960, 720), &ctx);
        let (genuine, copy) = (&got.items[0].decision, &got.items[1].decision);
        assert_eq!(copy.verdict, VerdictKind::Counterfeit, "{}", copy.reason);
        assert_eq!(genuine.verdict, VerdictKind::Inconclusive);
        assert!(
            genuine
                .reason
                .contains("was copied onto another pack in view"),
            "{}",
            genuine.reason
        );
    }
}
