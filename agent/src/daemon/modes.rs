//! The two ways Hallmark is used, as state machines over judged frames (pure: frames, triggers and
//! times in, decided items out).
//!
//! - **Kiosk**: a person holds a pack up. With `trigger = frame` every frame is a scan (replays,
//!   demos); with `button` a scan starts on the controller's button, Enter or a `scan` command; with
//!   `auto` when an item is held still. A triggered scan follows the items over `scan_frames` frames
//!   and decides each once; the primary item (largest, nearest the centre) is the one shown. A scan
//!   that finds nothing says `no_product`.
//! - **Conveyor**: every frame; items tracked across frames, each decided once when it leaves the view
//!   or after `max_frames`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_detect::nms::iou;
use hallmark_detect::Detection;

use super::decided::{Decided, Sighting};
use super::tracks::{mark_primary, Judging, Tracks};
use crate::capture::OwnedFrame;
use crate::config::{ConveyorConfig, KioskConfig, Trigger};
use crate::track::TrackerOptions;
use crate::verdict::{Decision, FrameVerdict, VerdictKind};

/// What a mode did with a frame.
#[derive(Debug, Default)]
pub struct Step {
    /// Verdicts decided now.
    pub decided: Vec<Decided>,
    /// A triggered scan started with this frame (the screen shows "scanning").
    pub scan_started: bool,
}

/// Either mode.
pub enum Modes {
    Kiosk(Kiosk),
    Conveyor(Conveyor),
}

impl Modes {
    pub fn on_frame(
        &mut self,
        frame_no: u64,
        frame: &Arc<OwnedFrame>,
        judged: &FrameVerdict,
        detections: &[Detection],
        j: &Judging<'_>,
        now: Instant,
    ) -> Step {
        match self {
            Modes::Kiosk(k) => k.on_frame(frame_no, frame, judged, detections, j, now),
            Modes::Conveyor(c) => Step {
                decided: c.tracks.on_frame(frame_no, frame, judged, detections, j),
                scan_started: false,
            },
        }
    }

    /// A scan was asked for (button, Enter, command). Ignored by the conveyor and while scanning.
    pub fn trigger(&mut self) {
        if let Modes::Kiosk(k) = self {
            k.requested = true;
        }
    }

    /// Time passing without frames: a triggered scan that sees no frame in time ends.
    pub fn on_idle(&mut self, j: &Judging<'_>, now: Instant) -> Vec<Decided> {
        match self {
            Modes::Kiosk(k) => match &k.scan {
                Some(scan) if now.duration_since(scan.started) > k.cfg.scan_timeout => {
                    k.end_scan(j)
                }
                _ => Vec::new(),
            },
            Modes::Conveyor(_) => Vec::new(),
        }
    }

    /// End of stream or shutdown: decide what is still open.
    pub fn finish(&mut self, j: &Judging<'_>) -> Vec<Decided> {
        match self {
            Modes::Kiosk(k) => {
                if k.scan.is_some() {
                    k.end_scan(j)
                } else {
                    Vec::new()
                }
            }
            Modes::Conveyor(c) => c.tracks.finish(j),
        }
    }
}

/// The conveyor: tracks and their evidence.
pub struct Conveyor {
    tracks: Tracks,
}

impl Conveyor {
    pub fn new(cfg: &ConveyorConfig) -> Conveyor {
        let opts = TrackerOptions {
            iou: cfg.track_iou,
            max_missed: cfg.max_missed,
            max_frames: cfg.max_frames,
        };
        Conveyor {
            tracks: Tracks::new(opts, cfg.min_frames),
        }
    }
}

struct Scan {
    tracks: Tracks,
    frames_left: u32,
    started: Instant,
    /// A frame seen during the scan (for a `no_product` sighting's size), the last one.
    frames_seen: u32,
}

/// The kiosk.
pub struct Kiosk {
    cfg: KioskConfig,
    scan: Option<Scan>,
    requested: bool,
    /// `auto`: the primary box of the previous frame and for how many frames it has been still.
    still: Option<([f32; 4], u32)>,
    /// `auto`: no new scan until the view has been cleared since the last one.
    armed: bool,
}

/// Overlap between consecutive primary boxes that counts as "held still".
const STILL_IOU: f32 = 0.85;

impl Kiosk {
    pub fn new(cfg: KioskConfig) -> Kiosk {
        Kiosk {
            cfg,
            scan: None,
            requested: false,
            still: None,
            armed: true,
        }
    }

    fn on_frame(
        &mut self,
        frame_no: u64,
        frame: &Arc<OwnedFrame>,
        judged: &FrameVerdict,
        detections: &[Detection],
        j: &Judging<'_>,
        now: Instant,
    ) -> Step {
        if self.cfg.trigger == Trigger::Frame {
            return Step {
                decided: per_frame(frame, judged, detections, j),
                scan_started: false,
            };
        }
        let mut scan_started = false;
        if self.scan.is_none() {
            let auto = self.cfg.trigger == Trigger::Auto && self.held_still(judged);
            if self.requested || auto {
                self.requested = false;
                self.armed = false;
                scan_started = true;
                let opts = TrackerOptions {
                    iou: 0.3,
                    max_missed: self.cfg.scan_frames,
                    max_frames: u32::MAX,
                };
                self.scan = Some(Scan {
                    tracks: Tracks::new(opts, 1),
                    frames_left: self.cfg.scan_frames,
                    started: now,
                    frames_seen: 0,
                });
            }
        }
        let Some(scan) = self.scan.as_mut() else {
            return Step::default();
        };
        scan.tracks.on_frame(frame_no, frame, judged, detections, j);
        scan.frames_seen += 1;
        scan.frames_left = scan.frames_left.saturating_sub(1);
        let decided = if scan.frames_left == 0 {
            self.end_scan(j)
        } else {
            Vec::new()
        };
        Step {
            decided,
            scan_started,
        }
    }

    fn end_scan(&mut self, j: &Judging<'_>) -> Vec<Decided> {
        let Some(mut scan) = self.scan.take() else {
            return Vec::new();
        };
        let mut decided = scan.tracks.finish(j);
        if decided.is_empty() {
            decided.push(no_product(j));
        }
        mark_primary(&mut decided);
        decided
    }

    /// `auto`: true once the primary item has stayed put for `still_frames` frames, and the view was
    /// cleared since the last scan.
    fn held_still(&mut self, judged: &FrameVerdict) -> bool {
        let Some(p) = judged.primary.map(|p| judged.items[p].bbox) else {
            self.still = None;
            self.armed = true;
            return false;
        };
        let count = match self.still {
            Some((prev, n)) if iou(&prev, &p) >= STILL_IOU => n + 1,
            _ => 1,
        };
        self.still = Some((p, count));
        self.armed && count >= self.cfg.still_frames
    }
}

/// `trigger = frame`: every item of this frame decided from this frame alone; nothing → `no_product`.
fn per_frame(
    frame: &Arc<OwnedFrame>,
    judged: &FrameVerdict,
    detections: &[Detection],
    j: &Judging<'_>,
) -> Vec<Decided> {
    if judged.items.is_empty() {
        return vec![no_product(j)];
    }
    judged
        .items
        .iter()
        .map(|item| {
            let members: Vec<&Detection> = item.members.iter().map(|&m| &detections[m]).collect();
            Decided {
                track: item.index as u64,
                frames: 1,
                decision: item.decision.clone(),
                codes: item.codes.clone(),
                last: Some(Sighting {
                    frame: frame.clone(),
                    bbox: item.bbox,
                    detections: members.iter().map(|d| **d).collect(),
                }),
                primary: judged.primary == Some(item.index),
            }
        })
        .collect()
}

fn no_product(j: &Judging<'_>) -> Decided {
    let confidence = j.manifest.thresholds.confidence;
    Decided {
        track: 0,
        frames: 0,
        decision: Decision {
            verdict: VerdictKind::NoProduct,
            confidence: 1.0 - confidence,
            product: String::new(),
            gtin: String::new(),
            reason: format!("no product detected above confidence {confidence:.2}"),
        },
        codes: Vec::new(),
        last: None,
        primary: true,
    }
}

/// How long the daemon waits for a frame before calling [`Modes::on_idle`].
pub const IDLE_TICK: Duration = Duration::from_millis(200);
