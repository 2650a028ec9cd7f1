//! A tracked item's evidence over the frames it was seen in, decided once by the same rule.
//!
//! Per class, the mean score over the item's frames (0 in a frame where that class was absent); the
//! best genuine and best counterfeit class by mean then go through [`rule::decide`]. A mean, not a
//! maximum: a single frame's spurious counterfeit box must not reject a genuine pack. Frames in which the
//! item touches the edge of the view are left out while any other frame exists: a pack cut off by the
//! frame edge shows too little of itself, and measured on the conveyor recordings, that is where the
//! model confuses roles. Barcodes are pooled (each distinct code once).

use hallmark_detect::Detection;

use std::collections::BTreeSet;

use super::code::{Code, Sgtin};
use super::rule::{self, Decision, Evidence};
use super::serial::{self, Partner};
use super::Context;
use hallmark_proto::manifest::Manifest;

/// Pixels from the frame edge within which a box counts as cut off.
pub const EDGE_PX: f32 = 2.0;

/// Evidence gathered for one tracked item.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    /// Per class: score sum over whole-view frames, and over edge frames.
    inner: Vec<f32>,
    edge: Vec<f32>,
    inner_frames: u32,
    edge_frames: u32,
    anchor_inner: Vec<u32>,
    anchor_edge: Vec<u32>,
    codes: Vec<Code>,
}

impl Aggregate {
    pub fn new(classes: usize) -> Aggregate {
        Aggregate {
            inner: vec![0.0; classes],
            edge: vec![0.0; classes],
            anchor_inner: vec![0; classes],
            anchor_edge: vec![0; classes],
            ..Aggregate::default()
        }
    }

    /// Frames seen so far.
    pub fn frames(&self) -> u32 {
        self.inner_frames + self.edge_frames
    }

    /// Adds one frame: the item's member detections (best first), its box, the frame size, its codes.
    pub fn add(
        &mut self,
        members: &[&Detection],
        bbox: [f32; 4],
        (width, height): (u32, u32),
        codes: &[Code],
    ) {
        let cut = bbox[0] <= EDGE_PX
            || bbox[1] <= EDGE_PX
            || bbox[2] >= width as f32 - EDGE_PX
            || bbox[3] >= height as f32 - EDGE_PX;
        let (sums, anchors, frames) = if cut {
            (&mut self.edge, &mut self.anchor_edge, &mut self.edge_frames)
        } else {
            (
                &mut self.inner,
                &mut self.anchor_inner,
                &mut self.inner_frames,
            )
        };
        *frames += 1;
        let mut best = vec![0f32; sums.len()];
        for d in members {
            if let Some(b) = best.get_mut(d.class as usize) {
                *b = b.max(d.score);
            }
        }
        for (s, b) in sums.iter_mut().zip(best) {
            *s += b;
        }
        if let Some(a) = members
            .first()
            .and_then(|d| anchors.get_mut(d.class as usize))
        {
            *a += 1;
        }
        for c in codes {
            if !self
                .codes
                .iter()
                .any(|k| k.text == c.text && k.format == c.format)
            {
                self.codes.push(c.clone());
            }
        }
    }

    /// The pooled codes.
    pub fn codes(&self) -> &[Code] {
        &self.codes
    }

    /// The mean evidence: per role, the class with the best mean score.
    pub fn evidence(&self, manifest: &Manifest) -> Evidence {
        let (sums, anchors, n) = if self.inner_frames > 0 {
            (&self.inner, &self.anchor_inner, self.inner_frames)
        } else {
            (&self.edge, &self.anchor_edge, self.edge_frames.max(1))
        };
        let best = |role| {
            manifest
                .classes
                .iter()
                .filter(|c| c.role == role)
                .filter_map(|c| sums.get(c.id as usize).map(|s| (c.id, s / n as f32)))
                .filter(|&(_, s)| s > 0.0)
                .fold(None, |acc: Option<(u32, f32)>, (id, s)| match acc {
                    Some((_, bs)) if bs >= s => acc,
                    _ => Some((id, s)),
                })
        };
        let anchor_class = anchors
            .iter()
            .enumerate()
            .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
            .map_or(0, |(i, _)| i as u32);
        Evidence {
            genuine: best(hallmark_proto::manifest::Role::Genuine),
            counterfeit: best(hallmark_proto::manifest::Role::Counterfeit),
            anchor_class,
        }
    }

    /// The pooled codes' SGTINs.
    pub fn sgtins(&self) -> BTreeSet<Sgtin> {
        serial::sgtins(&self.codes)
    }

    /// Whether the item judged on its own is counterfeit (how the pack looks to its clone partners).
    pub fn looks_counterfeit(&self, manifest: &Manifest, today: &str) -> bool {
        let codes: Vec<&Code> = self.codes.iter().collect();
        rule::looks_counterfeit(&self.evidence(manifest), &codes, manifest, today)
    }

    /// The item's one verdict. `partners`: the packs seen in view with it that carry one of its SGTINs.
    pub fn decide(&self, manifest: &Manifest, ctx: &Context<'_>, partners: &[Partner]) -> Decision {
        let codes: Vec<&Code> = self.codes.iter().collect();
        rule::decide_item(&self.evidence(manifest), &codes, partners, manifest, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::VerdictKind;

    fn manifest() -> Manifest {
        crate::verdict::test_manifest()
    }

    fn ctx() -> Context<'static> {
        Context {
            today: "2026-01-01",
            seen: &|_| false,
        }
    }

    const INSIDE: [f32; 4] = [300.0, 200.0, 500.0, 500.0];
    const AT_EDGE: [f32; 4] = [0.0, 200.0, 150.0, 500.0];

    fn add(a: &mut Aggregate, dets: &[Detection], bbox: [f32; 4]) {
        let refs: Vec<&Detection> = dets.iter().collect();
        a.add(&refs, bbox, (960, 720), &[]);
    }

    fn d(class: u32, score: f32) -> Detection {
        Detection {
            class,
            score,
            bbox: INSIDE,
        }
    }

    #[test]
    fn one_spurious_counterfeit_frame_does_not_outweigh_a_pack_seen_genuine() {
        let m = manifest();
        let mut a = Aggregate::new(2);
        for _ in 0..5 {
            add(&mut a, &[d(0, 0.92)], INSIDE);
        }
        add(&mut a, &[d(1, 0.9), d(0, 0.3)], INSIDE);
        let v = a.decide(&m, &ctx(), &[]);
        assert_eq!(v.verdict, VerdictKind::Genuine, "{}", v.reason);
        assert!((v.confidence - (0.92 * 5.0 + 0.3) / 6.0).abs() < 1e-5);
    }

    #[test]
    fn frames_cut_by_the_edge_are_left_out_while_whole_ones_exist() {
        let m = manifest();
        let mut a = Aggregate::new(2);
        add(&mut a, &[d(1, 0.95)], AT_EDGE);
        add(&mut a, &[d(0, 0.9)], INSIDE);
        add(&mut a, &[d(0, 0.88)], INSIDE);
        assert_eq!(a.frames(), 3);
        assert_eq!(a.decide(&m, &ctx(), &[]).verdict, VerdictKind::Genuine);
        let mut only_edge = Aggregate::new(2);
        add(&mut only_edge, &[d(1, 0.95)], AT_EDGE);
        assert_eq!(
            only_edge.decide(&m, &ctx(), &[]).verdict,
            VerdictKind::Counterfeit,
            "an edge frame is all there is"
        );
    }

    #[test]
    fn a_counterfeit_seen_throughout_is_counterfeit() {
        let m = manifest();
        let mut a = Aggregate::new(2);
        for _ in 0..4 {
            add(&mut a, &[d(1, 0.9), d(0, 0.4)], INSIDE);
        }
        assert_eq!(a.decide(&m, &ctx(), &[]).verdict, VerdictKind::Counterfeit);
    }
}
