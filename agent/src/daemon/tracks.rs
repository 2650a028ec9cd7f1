//! Tracked items and their evidence: the [`Tracker`] says which item is which pack, an
//! [`Aggregate`] per track gathers its evidence, and a track is decided once (when due, or when it
//! leaves). Shared by the conveyor (always on) and a triggered kiosk scan (over the scan's frames).

use std::collections::HashMap;
use std::sync::Arc;

use super::decided::{Decided, Sighting};
use crate::bundle::Manifest;
use crate::capture::OwnedFrame;
use crate::track::{TrackEvent, Tracker, TrackerOptions};
use crate::verdict::frame::primary;
use crate::verdict::{Aggregate, FrameVerdict};
use hallmark_detect::Detection;

struct TrackState {
    agg: Aggregate,
    last: Sighting,
    decided: bool,
}

/// Tracks and their evidence.
pub struct Tracks {
    tracker: Tracker,
    states: HashMap<u64, TrackState>,
    min_frames: u32,
}

/// What the verdict of a track needs besides its evidence.
pub struct Judging<'a> {
    pub manifest: &'a Manifest,
    pub today: &'a str,
    pub seen: &'a dyn Fn(&str) -> bool,
}

impl Tracks {
    pub fn new(opts: TrackerOptions, min_frames: u32) -> Tracks {
        Tracks {
            tracker: Tracker::new(opts),
            states: HashMap::new(),
            min_frames,
        }
    }

    /// Adds one judged frame; returns the tracks decided by it (due, or left with enough frames).
    pub fn on_frame(
        &mut self,
        frame_no: u64,
        frame: &Arc<OwnedFrame>,
        judged: &FrameVerdict,
        detections: &[Detection],
        j: &Judging<'_>,
    ) -> Vec<Decided> {
        let boxes: Vec<[f32; 4]> = judged.items.iter().map(|i| i.bbox).collect();
        let (ids, events) = self.tracker.update(frame_no, &boxes);
        let size = (frame.width, frame.height);
        for (item, &id) in judged.items.iter().zip(&ids) {
            let members: Vec<&Detection> = item.members.iter().map(|&m| &detections[m]).collect();
            let sighting = Sighting {
                frame: frame.clone(),
                bbox: item.bbox,
                detections: members.iter().map(|d| **d).collect(),
            };
            let state = self.states.entry(id).or_insert_with(|| TrackState {
                agg: Aggregate::new(j.manifest.classes.len()),
                last: sighting.clone(),
                decided: false,
            });
            state.agg.add(&members, item.bbox, size, &item.codes);
            // Design: the evidence and the event show the item where it was seen best: whole in view
            // rather than cut by the edge, then larger.
            if better(&sighting, &state.last) {
                state.last = sighting;
            }
        }
        let mut out = Vec::new();
        for e in events {
            match e {
                TrackEvent::Entered { .. } => {}
                TrackEvent::Due { id } => {
                    if let Some(d) = self.decide(id, j, false) {
                        out.push(d);
                    }
                }
                TrackEvent::Left { id, .. } => {
                    if let Some(d) = self.decide(id, j, true) {
                        out.push(d);
                    }
                }
            }
        }
        out
    }

    /// Ends every track (end of stream, end of a scan); returns the undecided ones' verdicts.
    pub fn finish(&mut self, j: &Judging<'_>) -> Vec<Decided> {
        let events = self.tracker.finish();
        events
            .into_iter()
            .filter_map(|e| match e {
                TrackEvent::Left { id, .. } => self.decide(id, j, true),
                _ => None,
            })
            .collect()
    }

    /// Tracks followed now.
    pub fn active(&self) -> usize {
        self.tracker.tracks().len()
    }

    fn decide(&mut self, id: u64, j: &Judging<'_>, leaving: bool) -> Option<Decided> {
        let state = self.states.get_mut(&id)?;
        let decided = if state.decided || state.agg.frames() < self.min_frames {
            None
        } else {
            state.decided = true;
            let decision = state.agg.decide(j.manifest, j.today, j.seen);
            Some(Decided {
                track: id,
                frames: state.agg.frames(),
                decision,
                codes: state.agg.codes().to_vec(),
                last: Some(state.last.clone()),
                primary: false,
            })
        };
        if leaving {
            self.states.remove(&id);
        }
        decided
    }
}

/// Whether `a` shows its item better than `b`: not cut by the frame's edge, then a larger box.
fn better(a: &Sighting, b: &Sighting) -> bool {
    let cut = |s: &Sighting| {
        let e = crate::verdict::aggregate::EDGE_PX;
        s.bbox[0] <= e
            || s.bbox[1] <= e
            || s.bbox[2] >= s.frame.width as f32 - e
            || s.bbox[3] >= s.frame.height as f32 - e
    };
    let area = |s: &Sighting| (s.bbox[2] - s.bbox[0]) * (s.bbox[3] - s.bbox[1]);
    (!cut(a), area(a)) >= (!cut(b), area(b))
}

/// Marks as primary the decided item whose last box is the largest nearest the centre.
pub fn mark_primary(decided: &mut [Decided]) {
    let Some(first) = decided.iter().find_map(|d| d.last.as_ref()) else {
        return;
    };
    let (w, h) = (first.frame.width, first.frame.height);
    let boxes: Vec<[f32; 4]> = decided
        .iter()
        .map(|d| d.last.as_ref().map_or([0.0; 4], |l| l.bbox))
        .collect();
    if let Some(p) = primary(boxes.into_iter(), w, h) {
        decided[p].primary = true;
    }
}
