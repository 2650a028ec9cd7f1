//! Tracked items and their evidence: the [`Tracker`] says which item is which pack, an
//! [`Aggregate`] per track gathers its evidence, and a track is decided once (when due, or when it
//! leaves). Shared by the conveyor (always on) and a triggered kiosk scan (over the scan's frames).
//!
//! Two tracks seen in one frame are two packs in view together: when they carry one SGTIN they are a
//! clone pair, decided by [`crate::verdict::serial`]'s rule whichever of them is decided first (a
//! track that left is remembered while a track it was seen with is still followed).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::decided::{Decided, Sighting};
use crate::frame::OwnedFrame;
use crate::track::{TrackEvent, Tracker, TrackerOptions};
use crate::verdict::frame::primary;
use crate::verdict::{Aggregate, Context, FrameVerdict, Partner, Sgtin};
use hallmark_detect::Detection;
use hallmark_proto::manifest::Manifest;

struct TrackState {
    agg: Aggregate,
    last: Sighting,
    decided: bool,
    /// Tracks seen in the same frame as this one.
    seen_with: BTreeSet<u64>,
}

/// What a clone partner needs of a track that left: its SGTINs and how it looked.
struct Departed {
    sgtins: BTreeSet<Sgtin>,
    looks_counterfeit: bool,
}

/// Tracks and their evidence.
pub struct Tracks {
    tracker: Tracker,
    states: HashMap<u64, TrackState>,
    /// Tracks that left with an SGTIN, kept while a track seen with them is followed.
    departed: HashMap<u64, Departed>,
    min_frames: u32,
    /// The tracks of the last frame and their boxes.
    seen: Vec<(u64, [f32; 4])>,
    /// A conveyor with a reject gate: a pack is decided as soon as it reaches the view's exit edge
    /// (frames cut by the edge add no evidence while whole ones exist), so its decision is at the
    /// gate well before it is.
    exit: Option<crate::gate::Direction>,
}

/// What the verdict of a track needs besides its evidence.
pub struct Judging<'a> {
    pub manifest: &'a Manifest,
    pub ctx: Context<'a>,
}

impl Tracks {
    pub fn new(opts: TrackerOptions, min_frames: u32) -> Tracks {
        Tracks {
            tracker: Tracker::new(opts),
            states: HashMap::new(),
            departed: HashMap::new(),
            min_frames,
            seen: Vec::new(),
            exit: None,
        }
    }

    /// Decides each pack as soon as it reaches the exit edge of a belt moving in `direction`.
    pub fn decide_at_exit(mut self, direction: crate::gate::Direction) -> Tracks {
        self.exit = Some(direction);
        self
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
        self.seen = ids.iter().copied().zip(boxes.iter().copied()).collect();
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
                seen_with: BTreeSet::new(),
            });
            state.agg.add(&members, item.bbox, size, &item.codes);
            state
                .seen_with
                .extend(ids.iter().copied().filter(|&other| other != id));
            // Design: the evidence and the event show the item where it was seen best: whole in view
            // rather than cut by the edge, then larger.
            if better(&sighting, &state.last) {
                state.last = sighting;
            }
        }
        let mut out = Vec::new();
        if let Some(direction) = self.exit {
            let leaving: Vec<u64> = self
                .seen
                .iter()
                .filter(|(_, b)| direction.at_exit(*b, size))
                .map(|(id, _)| *id)
                .collect();
            for id in leaving {
                if let Some(d) = self.decide(id, j, false) {
                    out.push(d);
                }
            }
        }
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
        self.forget_departed();
        out
    }

    /// Ends every track (end of stream, end of a scan); returns the undecided ones' verdicts.
    pub fn finish(&mut self, j: &Judging<'_>) -> Vec<Decided> {
        let events = self.tracker.finish();
        let out = events
            .into_iter()
            .filter_map(|e| match e {
                TrackEvent::Left { id, .. } => self.decide(id, j, true),
                _ => None,
            })
            .collect();
        self.departed.clear();
        out
    }

    /// The tracks seen in the last frame, with their boxes there.
    pub fn seen(&self) -> &[(u64, [f32; 4])] {
        &self.seen
    }

    /// Tracks followed now.
    pub fn active(&self) -> usize {
        self.tracker.tracks().len()
    }

    fn decide(&mut self, id: u64, j: &Judging<'_>, leaving: bool) -> Option<Decided> {
        let partners = self.partners(id, j);
        let state = self.states.get_mut(&id)?;
        let decided = if state.decided || state.agg.frames() < self.min_frames {
            None
        } else {
            state.decided = true;
            let decision = state.agg.decide(j.manifest, &j.ctx, &partners);
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
            if let Some(state) = self.states.remove(&id) {
                let sgtins = state.agg.sgtins();
                if !sgtins.is_empty() {
                    self.departed.insert(
                        id,
                        Departed {
                            sgtins,
                            looks_counterfeit: state.agg.looks_counterfeit(j.manifest, j.ctx.today),
                        },
                    );
                }
            }
        }
        decided
    }

    /// The packs seen in view with track `id` (followed now, or left) that carry one of its SGTINs.
    fn partners(&self, id: u64, j: &Judging<'_>) -> Vec<Partner> {
        let Some(state) = self.states.get(&id) else {
            return Vec::new();
        };
        let mine = state.agg.sgtins();
        if mine.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for other in &state.seen_with {
            let (theirs, looks_counterfeit) =
                match (self.states.get(other), self.departed.get(other)) {
                    (Some(o), _) => (
                        o.agg.sgtins(),
                        o.agg.looks_counterfeit(j.manifest, j.ctx.today),
                    ),
                    (None, Some(d)) => (d.sgtins.clone(), d.looks_counterfeit),
                    (None, None) => continue,
                };
            out.extend(mine.intersection(&theirs).map(|s| Partner {
                sgtin: s.clone(),
                looks_counterfeit,
            }));
        }
        out
    }

    /// Drops the tracks that left once no followed track was seen with them.
    fn forget_departed(&mut self) {
        let states = &self.states;
        self.departed
            .retain(|id, _| states.values().any(|s| s.seen_with.contains(id)));
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
