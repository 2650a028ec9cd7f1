//! A small IoU tracker: which item in this frame is which pack from earlier frames, so that a pack
//! crossing a conveyor gets one verdict, not one per frame. Pure: boxes and frame numbers in, track ids
//! and events out.
//!
//! Each track predicts where its pack is now from its last box and its velocity (packs on a belt move
//! steadily; at 10 fps a pack moves about half its own width per frame, so the raw previous box would
//! barely overlap). Observations are matched to predictions greedily by IoU, best pair first, above
//! `iou`. A track that misses more than `max_missed` frames in a row has left (occlusion gaps up to
//! that are bridged). A track seen `max_frames` times is due for its verdict while still in view.

use hallmark_detect::nms::iou;

/// How tracks are matched and ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerOptions {
    /// Least IoU between a track's predicted box and an observation to match.
    pub iou: f32,
    /// Frames a track may go unseen before it has left.
    pub max_missed: u32,
    /// Frames after which a track's verdict is due even though it is still in view.
    pub max_frames: u32,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions {
            iou: 0.2,
            max_missed: 3,
            max_frames: 30,
        }
    }
}

/// A pack being followed.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u64,
    pub bbox: [f32; 4],
    /// Centre displacement per frame.
    velocity: [f32; 2],
    pub first_frame: u64,
    pub last_frame: u64,
    /// Frames it was seen in.
    pub frames: u32,
    /// Its verdict was already due (so it is not due again).
    due_sent: bool,
}

impl Track {
    fn predicted(&self, frame: u64) -> [f32; 4] {
        let dt = frame.saturating_sub(self.last_frame) as f32;
        let [dx, dy] = [self.velocity[0] * dt, self.velocity[1] * dt];
        [
            self.bbox[0] + dx,
            self.bbox[1] + dy,
            self.bbox[2] + dx,
            self.bbox[3] + dy,
        ]
    }
}

/// What happened to tracks in one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackEvent {
    /// A new pack came into view.
    Entered { id: u64 },
    /// Seen `max_frames` times: decide now (once per track).
    Due { id: u64 },
    /// Gone from view (or the stream ended); seen in `frames` frames.
    Left { id: u64, frames: u32 },
}

/// The tracker's state.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    opts: TrackerOptions,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(opts: TrackerOptions) -> Tracker {
        Tracker {
            opts,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Tracks in view (or within their occlusion gap).
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Matches this frame's boxes to tracks. Returns the track id of each box, and the events.
    pub fn update(&mut self, frame: u64, boxes: &[[f32; 4]]) -> (Vec<u64>, Vec<TrackEvent>) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            let p = track.predicted(frame);
            for (b, bbox) in boxes.iter().enumerate() {
                let overlap = iou(&p, bbox);
                if overlap >= self.opts.iou {
                    pairs.push((overlap, t, b));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of_box: Vec<Option<usize>> = vec![None; boxes.len()];
        let mut matched_track = vec![false; self.tracks.len()];
        for (_, t, b) in pairs {
            if !matched_track[t] && track_of_box[b].is_none() {
                matched_track[t] = true;
                track_of_box[b] = Some(t);
            }
        }
        let mut events = Vec::new();
        let mut ids = Vec::with_capacity(boxes.len());
        for (b, bbox) in boxes.iter().enumerate() {
            match track_of_box[b] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    let dt = frame.saturating_sub(track.last_frame).max(1) as f32;
                    let (oc, nc) = (centre(&track.bbox), centre(bbox));
                    let v = [(nc[0] - oc[0]) / dt, (nc[1] - oc[1]) / dt];
                    // Design: the first displacement is taken as it is; later ones are smoothed.
                    track.velocity = if track.frames == 1 {
                        v
                    } else {
                        [
                            0.5 * track.velocity[0] + 0.5 * v[0],
                            0.5 * track.velocity[1] + 0.5 * v[1],
                        ]
                    };
                    track.bbox = *bbox;
                    track.last_frame = frame;
                    track.frames += 1;
                    if track.frames >= self.opts.max_frames && !track.due_sent {
                        track.due_sent = true;
                        events.push(TrackEvent::Due { id: track.id });
                    }
                    ids.push(track.id);
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        bbox: *bbox,
                        velocity: [0.0, 0.0],
                        first_frame: frame,
                        last_frame: frame,
                        frames: 1,
                        due_sent: false,
                    });
                    events.push(TrackEvent::Entered { id });
                    if self.opts.max_frames <= 1 {
                        if let Some(t) = self.tracks.last_mut() {
                            t.due_sent = true;
                        }
                        events.push(TrackEvent::Due { id });
                    }
                    ids.push(id);
                }
            }
        }
        let max_missed = self.opts.max_missed as u64;
        self.tracks.retain(|t| {
            let gone = frame.saturating_sub(t.last_frame) > max_missed;
            if gone {
                events.push(TrackEvent::Left {
                    id: t.id,
                    frames: t.frames,
                });
            }
            !gone
        });
        (ids, events)
    }

    /// Ends every track (the stream ended or the scan is over).
    pub fn finish(&mut self) -> Vec<TrackEvent> {
        self.tracks
            .drain(..)
            .map(|t| TrackEvent::Left {
                id: t.id,
                frames: t.frames,
            })
            .collect()
    }
}

fn centre(b: &[f32; 4]) -> [f32; 2] {
    [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker::new(TrackerOptions {
            iou: 0.2,
            max_missed: 2,
            max_frames: 30,
        })
    }

    fn at(x: f32) -> [f32; 4] {
        [x, 100.0, x + 200.0, 300.0]
    }

    #[test]
    fn a_pack_crossing_the_belt_keeps_one_id_and_leaves_once() {
        let mut t = tracker();
        let mut ids = Vec::new();
        let mut events = Vec::new();
        // 110 px per frame on a 200 px pack: consecutive boxes overlap by IoU 0.29 only.
        for f in 0..8u64 {
            let (i, e) = t.update(f, &[at(f as f32 * 110.0)]);
            ids.extend(i);
            events.extend(e);
        }
        for f in 8..12u64 {
            events.extend(t.update(f, &[]).1);
        }
        assert!(ids.iter().all(|&i| i == ids[0]), "{ids:?}");
        assert_eq!(
            events,
            vec![
                TrackEvent::Entered { id: 1 },
                TrackEvent::Left { id: 1, frames: 8 }
            ]
        );
    }

    #[test]
    fn a_short_occlusion_is_bridged_a_long_one_is_not() {
        let mut t = tracker();
        t.update(0, &[at(0.0)]);
        t.update(1, &[at(50.0)]);
        t.update(2, &[]);
        t.update(3, &[]);
        let (ids, _) = t.update(4, &[at(200.0)]);
        assert_eq!(ids, vec![1], "two missed frames are within max_missed");
        for f in 5..8 {
            t.update(f, &[]);
        }
        let (ids, events) = t.update(8, &[at(400.0)]);
        assert_eq!(ids, vec![2]);
        assert!(events.contains(&TrackEvent::Entered { id: 2 }));
    }

    #[test]
    fn two_packs_side_by_side_keep_their_ids() {
        let mut t = tracker();
        let (a, _) = t.update(0, &[at(0.0), at(400.0)]);
        let (b, _) = t.update(1, &[at(460.0), at(60.0)]);
        assert_eq!(a, vec![1, 2]);
        assert_eq!(b, vec![2, 1]);
    }

    #[test]
    fn a_long_stay_is_due_once_then_leaves_at_the_end() {
        let mut t = Tracker::new(TrackerOptions {
            iou: 0.2,
            max_missed: 1,
            max_frames: 3,
        });
        let mut events = Vec::new();
        for f in 0..6 {
            events.extend(t.update(f, &[at(0.0)]).1);
        }
        events.extend(t.finish());
        assert_eq!(
            events,
            vec![
                TrackEvent::Entered { id: 1 },
                TrackEvent::Due { id: 1 },
                TrackEvent::Left { id: 1, frames: 6 }
            ]
        );
    }
}
