//! Class-aware non-maximum suppression, as `torchvision.ops.nms` applied per class (YOLOv5 offsets each
//! class's boxes so they never overlap): candidates are taken by descending score, and one is dropped
//! when it overlaps an already kept box of the same class by IoU above the threshold. At most
//! `max_detections` are kept. Pure; the order buffer and output are the caller's, reused across frames.

use crate::decode::Candidate;

/// Writes into `keep` (cleared first) the indices of `candidates` that survive, best first.
pub fn nms(
    candidates: &[Candidate],
    iou_threshold: f32,
    max_detections: usize,
    order: &mut Vec<usize>,
    keep: &mut Vec<usize>,
) {
    keep.clear();
    order.clear();
    order.extend(0..candidates.len());
    // Stable sort: equal scores keep their output order.
    order.sort_by(|&a, &b| candidates[b].score.total_cmp(&candidates[a].score));
    for &i in order.iter() {
        if keep.len() >= max_detections {
            break;
        }
        let c = &candidates[i];
        let suppressed = keep.iter().any(|&k| {
            let kept = &candidates[k];
            kept.class == c.class && iou(&kept.bbox, &c.bbox) > iou_threshold
        });
        if !suppressed {
            keep.push(i);
        }
    }
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes (0 when either has no area).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let union = area_a + area_b - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(bbox: [f32; 4], score: f32, class: u32) -> Candidate {
        Candidate { bbox, score, class }
    }

    fn run(c: &[Candidate], iou_t: f32, max: usize) -> Vec<usize> {
        let (mut order, mut keep) = (Vec::new(), Vec::new());
        nms(c, iou_t, max, &mut order, &mut keep);
        keep
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 20.0, 10.0]), 0.0);
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn overlapping_boxes_of_one_class_keep_only_the_best() {
        let c = [
            cand([0.0, 0.0, 10.0, 10.0], 0.6, 0),
            cand([1.0, 0.0, 11.0, 10.0], 0.9, 0),
            cand([50.0, 50.0, 60.0, 60.0], 0.5, 0),
        ];
        assert_eq!(run(&c, 0.45, 300), vec![1, 2]);
    }

    #[test]
    fn suppression_is_per_class() {
        let c = [
            cand([0.0, 0.0, 10.0, 10.0], 0.6, 0),
            cand([1.0, 0.0, 11.0, 10.0], 0.9, 1),
        ];
        assert_eq!(run(&c, 0.45, 300), vec![1, 0]);
    }

    #[test]
    fn overlap_at_the_threshold_is_kept() {
        // IoU exactly 1/3: suppressed only when above the threshold.
        let c = [
            cand([0.0, 0.0, 10.0, 10.0], 0.9, 0),
            cand([5.0, 0.0, 15.0, 10.0], 0.8, 0),
        ];
        assert_eq!(run(&c, 0.5, 300), vec![0, 1]);
        assert_eq!(run(&c, 0.3, 300), vec![0]);
    }

    #[test]
    fn at_most_max_detections_are_kept_best_first() {
        let c: Vec<_> = (0..10)
            .map(|i| {
                cand(
                    [i as f32 * 20.0, 0.0, i as f32 * 20.0 + 10.0, 10.0],
                    i as f32 / 10.0,
                    0,
                )
            })
            .collect();
        assert_eq!(run(&c, 0.45, 3), vec![9, 8, 7]);
    }
}
