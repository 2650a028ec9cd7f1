//! Items: one physical pack, however many detections the model put on it.
//!
//! The detector suppresses overlapping boxes per class only, so a pack can carry a genuine and a
//! counterfeit box at once. Grouping is class-agnostic: detections are taken best first, and each joins
//! the first item whose anchor (its best detection) it overlaps by IoU ≥ [`ITEM_IOU`]; otherwise it
//! starts a new item.

use hallmark_detect::nms::iou;
use hallmark_detect::Detection;

/// Overlap at which two detections are taken for the same pack.
pub const ITEM_IOU: f32 = 0.5;

/// One pack: indices into the frame's detections, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub members: Vec<usize>,
    /// The anchor's box.
    pub bbox: [f32; 4],
}

impl Item {
    /// The best detection's index.
    pub fn anchor(&self) -> usize {
        self.members[0]
    }
}

/// Groups `detections` into items, in order of their best detection's score.
pub fn group(detections: &[Detection]) -> Vec<Item> {
    let mut order: Vec<usize> = (0..detections.len()).collect();
    // Stable: equal scores keep their input order.
    order.sort_by(|&a, &b| detections[b].score.total_cmp(&detections[a].score));
    let mut items: Vec<Item> = Vec::new();
    for i in order {
        let d = &detections[i];
        match items
            .iter_mut()
            .find(|it| iou(&it.bbox, &d.bbox) >= ITEM_IOU)
        {
            Some(item) => item.members.push(i),
            None => items.push(Item {
                members: vec![i],
                bbox: d.bbox,
            }),
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: u32, score: f32, bbox: [f32; 4]) -> Detection {
        Detection { class, score, bbox }
    }

    #[test]
    fn a_genuine_and_a_counterfeit_box_on_one_pack_are_one_item() {
        let d = [
            det(0, 0.55, [0.0, 0.0, 100.0, 100.0]),
            det(1, 0.49, [2.0, 0.0, 102.0, 100.0]),
        ];
        assert_eq!(
            group(&d),
            vec![Item {
                members: vec![0, 1],
                bbox: [0.0, 0.0, 100.0, 100.0]
            }]
        );
    }

    #[test]
    fn separate_packs_are_separate_items_best_first() {
        let d = [
            det(0, 0.6, [0.0, 0.0, 100.0, 100.0]),
            det(2, 0.9, [200.0, 0.0, 300.0, 100.0]),
        ];
        let items = group(&d);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].members, vec![1]);
        assert_eq!(items[1].members, vec![0]);
    }

    #[test]
    fn a_detection_joins_by_its_overlap_with_the_anchor_only() {
        // B overlaps A (anchor) by less than ITEM_IOU, C overlaps A enough: A+C, then B alone.
        let d = [
            det(0, 0.9, [0.0, 0.0, 100.0, 100.0]),
            det(0, 0.8, [60.0, 0.0, 160.0, 100.0]),
            det(1, 0.7, [10.0, 0.0, 110.0, 100.0]),
        ];
        let items = group(&d);
        assert_eq!(
            items.iter().map(|i| i.members.clone()).collect::<Vec<_>>(),
            vec![vec![0, 2], vec![1]]
        );
    }

    #[test]
    fn nothing_detected_is_no_item() {
        assert!(group(&[]).is_empty());
    }
}
