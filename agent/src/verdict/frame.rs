//! A frame judged item by item: items from the detections, each item's barcodes and verdict, and the
//! primary item — the largest item nearest the centre, which is what a person holding a pack up to a
//! kiosk camera means. The frame's own verdict is its primary item's, `no_product` when there is none.

use hallmark_detect::Detection;

use super::code::{Code, Serials};
use super::items::group;
use super::rule::{decide_with_codes, Decision, Evidence};
use super::{Verdict, VerdictKind};
use crate::bundle::Manifest;

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
/// centre lies in. `seen` answers whether a serial was seen on a pack before; a serial on two items of
/// this frame is a clone for both.
pub fn judge(
    detections: &[Detection],
    codes: &[Code],
    manifest: &Manifest,
    (width, height): (u32, u32),
    today: &str,
    seen: &dyn Fn(&str) -> bool,
) -> FrameVerdict {
    let groups = group(detections);
    let codes_of: Vec<Vec<&Code>> = groups
        .iter()
        .map(|item| codes.iter().filter(|c| c.inside(&item.bbox)).collect())
        .collect();
    // The items of each serial in view (a code read twice on one pack counts once).
    let mut holders: std::collections::HashMap<&str, std::collections::BTreeSet<usize>> =
        Default::default();
    for (i, mine) in codes_of.iter().enumerate() {
        for serial in mine.iter().filter_map(|c| c.serial.as_deref()) {
            holders.entry(serial).or_default().insert(i);
        }
    }
    let items: Vec<ItemVerdict> = groups
        .into_iter()
        .zip(codes_of)
        .enumerate()
        .map(|(index, (item, mine))| {
            let evidence = Evidence::of(&item.members, detections, manifest);
            let in_view = |s: &str| {
                holders
                    .get(s)
                    .is_some_and(|h| h.iter().any(|&o| o != index))
            };
            let serials = Serials {
                seen,
                in_view: &in_view,
            };
            let decision = decide_with_codes(&evidence, &mine, manifest, today, &serials);
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

    #[test]
    fn the_centred_pack_wins_over_a_larger_one_at_the_edge() {
        let boxes = [[0.0, 0.0, 300.0, 300.0], [380.0, 260.0, 580.0, 460.0]];
        assert_eq!(primary(boxes.into_iter(), 960, 720), Some(1));
    }

    #[test]
    fn no_box_no_primary() {
        assert_eq!(primary(std::iter::empty(), 960, 720), None);
    }
}
