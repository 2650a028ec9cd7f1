//! The interim verdict rule, on detection roles and the manifest's thresholds only:
//! 1. a counterfeit-role detection at or above `thresholds.counterfeit` → `counterfeit` (a fake is never
//!    outvoted by a genuine box elsewhere in the frame);
//! 2. otherwise the best genuine-role detection at or above `thresholds.genuine` → `genuine`;
//! 3. otherwise any detection → `inconclusive` (too weak to call);
//! 4. no detection → `no_product`.
//!
//! The confidence is that of the deciding detection (for `no_product`, 1 − the confidence filter:
//! nothing scored above it).

use super::{Verdict, VerdictKind};
use crate::bundle::{Manifest, Role};
use crate::detector::Detection;

/// The verdict for one frame's detections under `manifest`.
pub fn decide(detections: &[Detection], manifest: &Manifest) -> Verdict {
    let t = &manifest.thresholds;
    let name = |d: &Detection| {
        manifest
            .class(d.class)
            .map_or("unknown", |c| c.name.as_str())
            .to_string()
    };
    let role = |d: &Detection| manifest.class(d.class).map(|c| c.role);
    let best = |r: Role| {
        detections
            .iter()
            .filter(|d| role(d) == Some(r))
            .max_by(|a, b| a.score.total_cmp(&b.score))
    };

    if let Some(d) = best(Role::Counterfeit).filter(|d| d.score >= t.counterfeit) {
        return Verdict {
            verdict: VerdictKind::Counterfeit,
            confidence: d.score,
            reason: format!(
                "counterfeit class '{}' detected at {:.2} (threshold {:.2})",
                name(d),
                d.score,
                t.counterfeit
            ),
        };
    }
    if let Some(d) = best(Role::Genuine).filter(|d| d.score >= t.genuine) {
        return Verdict {
            verdict: VerdictKind::Genuine,
            confidence: d.score,
            reason: format!(
                "genuine class '{}' detected at {:.2} (threshold {:.2}), no counterfeit class",
                name(d),
                d.score,
                t.genuine
            ),
        };
    }
    if let Some(d) = detections.iter().max_by(|a, b| a.score.total_cmp(&b.score)) {
        let (kind, threshold) = match role(d) {
            Some(Role::Counterfeit) => ("counterfeit", t.counterfeit),
            _ => ("genuine", t.genuine),
        };
        return Verdict {
            verdict: VerdictKind::Inconclusive,
            confidence: d.score,
            reason: format!(
                "best detection '{}' at {:.2} is below the {kind} threshold {:.2}",
                name(d),
                d.score,
                threshold
            ),
        };
    }
    Verdict {
        verdict: VerdictKind::NoProduct,
        confidence: 1.0 - t.confidence,
        reason: format!("no product detected above confidence {:.2}", t.confidence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let v = serde_json::json!({
            "schema": "hallmark.model/1", "brand": "b", "revision": 1,
            "model": {"file": "model.onnx", "sha256": "0".repeat(64), "format": "yolov5",
                      "input": {"name": "images", "width": 320, "height": 320}, "output": {"name": "output0"}},
            "classes": [{"id": 0, "name": "tea", "role": "genuine"}, {"id": 1, "name": "tea-fake", "role": "counterfeit"}],
            "thresholds": {"confidence": 0.25, "iou": 0.45, "genuine": 0.5, "counterfeit": 0.35}
        });
        Manifest::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    fn det(class: u32, score: f32) -> Detection {
        Detection {
            class,
            score,
            bbox: [0.0, 0.0, 10.0, 10.0],
        }
    }

    #[test]
    fn a_strong_genuine_detection_is_genuine() {
        let v = decide(&[det(0, 0.9)], &manifest());
        assert_eq!((v.verdict, v.confidence), (VerdictKind::Genuine, 0.9));
        assert!(v.reason.contains("'tea'"), "{}", v.reason);
    }

    #[test]
    fn a_counterfeit_above_its_threshold_wins_over_a_stronger_genuine() {
        let v = decide(&[det(0, 0.95), det(1, 0.4)], &manifest());
        assert_eq!((v.verdict, v.confidence), (VerdictKind::Counterfeit, 0.4));
    }

    #[test]
    fn weak_detections_are_inconclusive() {
        let v = decide(&[det(0, 0.45), det(1, 0.3)], &manifest());
        assert_eq!((v.verdict, v.confidence), (VerdictKind::Inconclusive, 0.45));
        assert!(
            v.reason.contains("below the genuine threshold 0.50"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn nothing_detected_is_no_product() {
        assert_eq!(decide(&[], &manifest()).verdict, VerdictKind::NoProduct);
    }

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(
            decide(&[det(0, 0.5)], &manifest()).verdict,
            VerdictKind::Genuine
        );
        assert_eq!(
            decide(&[det(1, 0.35)], &manifest()).verdict,
            VerdictKind::Counterfeit
        );
    }
}
