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

pub mod decided;
pub mod tracks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_detect::nms::iou;
use hallmark_detect::Detection;

use self::decided::{Decided, Sighting};
use self::tracks::{mark_primary, Judging, Tracks};
use crate::frame::OwnedFrame;
use crate::track::TrackerOptions;
use crate::verdict::{Decision, FrameVerdict, VerdictKind};

/// How the agent is used (`agent.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Kiosk,
    Conveyor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Kiosk => "kiosk",
            Mode::Conveyor => "conveyor",
        }
    }
}

/// What starts a kiosk scan (`kiosk.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Every frame is a scan (replays, demos).
    Frame,
    /// A scan starts on the controller's button, Enter on a terminal, or a `scan` command.
    Button,
    /// A scan starts when an item is held still in view.
    Auto,
}

/// The kiosk's settings (`[kiosk]`).
#[derive(Debug, Clone, PartialEq)]
pub struct KioskConfig {
    pub trigger: Trigger,
    /// Frames one scan looks at.
    pub scan_frames: u32,
    /// A triggered scan that sees no frame for this long ends.
    pub scan_timeout: Duration,
    /// `auto`: frames the item must stay (nearly) still before a scan starts.
    pub still_frames: u32,
}

/// The conveyor's settings (`[conveyor]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConveyorConfig {
    pub track_iou: f32,
    pub max_missed: u32,
    pub max_frames: u32,
    /// Tracks seen in fewer frames get no verdict (a glimpse is not a pack).
    pub min_frames: u32,
    pub reject_pulse_ms: u16,
    /// Divert inconclusive items too, for a person to check.
    pub reject_inconclusive: bool,
    /// The reject gate downstream of the view; `None`: a reject pulses when its verdict comes.
    pub gate: Option<crate::gate::GateConfig>,
    /// A test hook: every verdict goes out this much later (to make decisions reach the gate late).
    pub added_latency: Duration,
}

/// What a mode did with a frame.
#[derive(Debug, Default)]
pub struct Step {
    /// Verdicts decided now.
    pub decided: Vec<Decided>,
    /// A triggered scan started with this frame (the screen shows "scanning").
    pub scan_started: bool,
    /// Conveyor: the packs followed in this frame (track id, box), for the reject gate's plan.
    pub tracked: Vec<(u64, [f32; 4])>,
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
            Modes::Conveyor(c) => {
                let decided = c.tracks.on_frame(frame_no, frame, judged, detections, j);
                Step {
                    decided,
                    scan_started: false,
                    tracked: c.tracks.seen().to_vec(),
                }
            }
        }
    }

    /// A scan was asked for (button, Enter, command). Ignored by the conveyor and while scanning.
    pub fn trigger(&mut self) {
        if let Modes::Kiosk(k) = self {
            // Design: a press during a scan (or a bouncing button) must not queue a second scan of the
            // same pack.
            if k.scan.is_none() {
                k.requested = true;
            }
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
        let tracks = Tracks::new(opts, cfg.min_frames);
        Conveyor {
            tracks: match &cfg.gate {
                Some(g) => tracks.decide_at_exit(g.direction),
                None => tracks,
            },
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
                tracked: Vec::new(),
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
            tracked: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{judge, Code, Context};
    use hallmark_detect::PixelFormat;
    use hallmark_proto::manifest::Manifest;

    fn manifest() -> Manifest {
        crate::verdict::test_manifest()
    }

    fn frame() -> Arc<OwnedFrame> {
        Arc::new(OwnedFrame {
            seq: 0,
            captured: Instant::now(),
            origin: "f".into(),
            width: 960,
            height: 720,
            stride: 2880,
            format: PixelFormat::Rgb8,
            data: vec![0; 960 * 720 * 3],
        })
    }

    fn det(class: u32, score: f32, x: f32) -> Detection {
        Detection {
            class,
            score,
            bbox: [x, 200.0, x + 200.0, 500.0],
        }
    }

    /// Feeds `frames` (detections per frame) to `modes`, pressing the trigger before frame `press`.
    fn feed(
        modes: &mut Modes,
        frames: &[Vec<Detection>],
        press: Option<usize>,
    ) -> Vec<(usize, Step)> {
        feed_coded(modes, frames, &[], press)
    }

    /// As [`feed`], with the codes read in each frame (`codes[i]` for frame `i`, none past its end).
    fn feed_coded(
        modes: &mut Modes,
        frames: &[Vec<Detection>],
        codes: &[Vec<Code>],
        press: Option<usize>,
    ) -> Vec<(usize, Step)> {
        let m = manifest();
        let j = Judging {
            manifest: &m,
            ctx: Context {
                today: "2026-01-01",
                seen: &|_| false,
            },
        };
        let f = frame();
        let mut out = Vec::new();
        for (i, dets) in frames.iter().enumerate() {
            if press == Some(i) {
                modes.trigger();
            }
            let none = Vec::new();
            let read = codes.get(i).unwrap_or(&none);
            let judged = judge(dets, read, &m, (960, 720), &j.ctx);
            out.push((
                i,
                modes.on_frame(i as u64, &f, &judged, dets, &j, Instant::now()),
            ));
        }
        out
    }

    fn kiosk(trigger: Trigger) -> Modes {
        Modes::Kiosk(Kiosk::new(KioskConfig {
            trigger,
            scan_frames: 3,
            scan_timeout: Duration::from_secs(3),
            still_frames: 2,
        }))
    }

    #[test]
    fn a_button_scan_follows_its_items_over_the_scan_frames_and_decides_each_once() {
        let mut k = kiosk(Trigger::Button);
        let frames: Vec<Vec<Detection>> = (0..8)
            .map(|_| vec![det(0, 0.9, 380.0), det(1, 0.95, 0.0)])
            .collect();
        let steps = feed(&mut k, &frames, Some(2));
        let decided: Vec<(usize, &Decided)> = steps
            .iter()
            .flat_map(|(i, s)| s.decided.iter().map(move |d| (*i, d)))
            .collect();
        assert!(
            steps[2].1.scan_started && steps.iter().filter(|(_, s)| s.scan_started).count() == 1
        );
        assert_eq!(decided.len(), 2, "two packs, one verdict each");
        assert!(decided.iter().all(|(i, d)| *i == 4 && d.frames == 3));
        let primary: Vec<_> = decided.iter().filter(|(_, d)| d.primary).collect();
        assert_eq!(primary.len(), 1);
        assert_eq!(
            primary[0].1.decision.verdict,
            VerdictKind::Genuine,
            "the centred pack is the one on the screen"
        );
    }

    #[test]
    fn a_press_during_a_scan_does_not_queue_a_second_scan() {
        let mut k = kiosk(Trigger::Button);
        let frames: Vec<Vec<Detection>> = (0..4).map(|_| vec![det(0, 0.9, 380.0)]).collect();
        feed(&mut k, &frames[..2], Some(0));
        k.trigger();
        let steps = feed(&mut k, &frames, None);
        assert!(
            steps.iter().all(|(_, s)| !s.scan_started),
            "the press during the scan was ignored"
        );
        assert_eq!(
            steps.iter().map(|(_, s)| s.decided.len()).sum::<usize>(),
            1,
            "one pack, one verdict"
        );
    }

    #[test]
    fn a_scan_of_an_empty_view_says_no_product() {
        let mut k = kiosk(Trigger::Button);
        let steps = feed(&mut k, &vec![Vec::new(); 4], Some(0));
        let decided: Vec<&Decided> = steps.iter().flat_map(|(_, s)| &s.decided).collect();
        assert_eq!(decided.len(), 1);
        assert_eq!(decided[0].decision.verdict, VerdictKind::NoProduct);
    }

    #[test]
    fn auto_scans_an_item_held_still_once_until_the_view_clears() {
        let mut k = kiosk(Trigger::Auto);
        let held = vec![det(0, 0.9, 380.0)];
        let mut frames = vec![held.clone(); 8];
        frames.push(Vec::new());
        frames.extend(vec![held.clone(); 6]);
        let steps = feed(&mut k, &frames, None);
        let starts: Vec<usize> = steps
            .iter()
            .filter(|(_, s)| s.scan_started)
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(
            starts,
            vec![1, 10],
            "held still for two frames; again only after the view cleared"
        );
        let verdicts = steps.iter().map(|(_, s)| s.decided.len()).sum::<usize>();
        assert_eq!(verdicts, 2);
    }

    #[test]
    fn every_frame_is_a_scan_with_trigger_frame() {
        let mut k = kiosk(Trigger::Frame);
        let steps = feed(
            &mut k,
            &[
                vec![det(0, 0.9, 380.0)],
                vec![],
                vec![det(1, 0.9, 380.0), det(0, 0.85, 0.0)],
            ],
            None,
        );
        let kinds: Vec<Vec<VerdictKind>> = steps
            .iter()
            .map(|(_, s)| s.decided.iter().map(|d| d.decision.verdict).collect())
            .collect();
        assert_eq!(
            kinds,
            vec![
                vec![VerdictKind::Genuine],
                vec![VerdictKind::NoProduct],
                vec![VerdictKind::Counterfeit, VerdictKind::Genuine]
            ]
        );
    }

    fn conveyor() -> Modes {
        conveyor_with(None)
    }

    fn conveyor_with(gate: Option<crate::gate::GateConfig>) -> Modes {
        Modes::Conveyor(Conveyor::new(&ConveyorConfig {
            track_iou: 0.2,
            max_missed: 3,
            max_frames: 30,
            min_frames: 2,
            reject_pulse_ms: 300,
            reject_inconclusive: true,
            gate,
            added_latency: Duration::ZERO,
        }))
    }

    #[test]
    fn with_a_reject_gate_a_pack_is_decided_as_it_reaches_the_exit_edge_not_after_it_left() {
        let gate = crate::gate::GateConfig {
            distance_mm: 400.0,
            counts_per_mm: 1.0,
            px_per_mm: 2.0,
            direction: crate::gate::Direction::LeftToRight,
            on_late: crate::gate::OnLate::Reject,
            pulse_ms: 100,
            min_frames: 2,
        };
        let moving: Vec<Vec<Detection>> = [300.0, 500.0, 700.0, 760.0]
            .iter()
            .map(|&x| vec![det(0, 0.9, x)])
            .chain((0..5).map(|_| Vec::new()))
            .collect();
        let decided_at = |gate: Option<crate::gate::GateConfig>| {
            let mut m = conveyor_with(gate);
            let steps = feed(&mut m, &moving, None);
            let at: Vec<usize> = steps
                .iter()
                .filter(|(_, s)| !s.decided.is_empty())
                .map(|(i, _)| *i)
                .collect();
            assert_eq!(
                steps[2].1.tracked.len(),
                1,
                "the pack is reported as tracked"
            );
            at
        };
        assert_eq!(
            decided_at(Some(gate)),
            vec![3],
            "box [760, 960] touches the exit edge"
        );
        assert_eq!(
            decided_at(None),
            vec![7],
            "without a gate: after it left (3 frames missed)"
        );
    }

    /// A GS1 DataMatrix with `gtin` and `serial`, on a pack whose box starts at `x`.
    fn code_at(x: f32, gtin: &str, serial: &str) -> Code {
        Code {
            format: "datamatrix".into(),
            text: format!("(01){gtin}(21){serial}"),
            gtin: Some(gtin.into()),
            serial: Some(serial.into()),
            expiry: None,
            check_digit_ok: true,
            bbox: [x + 80.0, 300.0, x + 120.0, 340.0],
        }
    }

    fn verdicts_of(steps: &[(usize, Step)]) -> Vec<(f32, VerdictKind, String)> {
        let mut out: Vec<(f32, VerdictKind, String)> = steps
            .iter()
            .flat_map(|(_, s)| &s.decided)
            .map(|d| {
                (
                    d.last.as_ref().map_or(-1.0, |l| l.bbox[0]),
                    d.decision.verdict,
                    d.decision.reason.clone(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }

    #[test]
    fn two_tracked_packs_with_one_code_are_a_clone_pair_whichever_is_decided_first() {
        let gtin = manifest().classes[0].gtin.clone();
        // A genuine-looking pack at x = 100 and a counterfeit-looking one at x = 500, both with one code;
        // the counterfeit-looking one leaves the view first, then the genuine one.
        let mut frames: Vec<Vec<Detection>> = (0..4)
            .map(|_| vec![det(0, 0.9, 100.0), det(1, 0.95, 500.0)])
            .collect();
        frames.extend((0..4).map(|_| vec![det(0, 0.9, 100.0)]));
        frames.extend(vec![Vec::new(); 40]);
        let codes: Vec<Vec<Code>> = (0..8)
            .map(|i| {
                let mut c = vec![code_at(100.0, &gtin, "SN1")];
                if i < 4 {
                    c.push(code_at(500.0, &gtin, "SN1"));
                }
                c
            })
            .collect();
        let mut c = conveyor();
        let got = verdicts_of(&feed_coded(&mut c, &frames, &codes, None));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].1, VerdictKind::Inconclusive, "{got:?}");
        assert!(got[0].2.contains("was copied onto another pack"), "{got:?}");
        assert_eq!(got[1].1, VerdictKind::Counterfeit, "{got:?}");
        assert!(got[1].2.contains("carries a copy of the code"), "{got:?}");
    }

    #[test]
    fn two_genuine_looking_packs_with_one_code_decided_together_are_both_inconclusive() {
        let gtin = manifest().classes[0].gtin.clone();
        let mut frames: Vec<Vec<Detection>> = (0..4)
            .map(|_| vec![det(0, 0.9, 100.0), det(0, 0.92, 500.0)])
            .collect();
        frames.extend(vec![Vec::new(); 40]);
        let codes: Vec<Vec<Code>> = (0..4)
            .map(|_| vec![code_at(100.0, &gtin, "SN1"), code_at(500.0, &gtin, "SN1")])
            .collect();
        let mut c = conveyor();
        let got = verdicts_of(&feed_coded(&mut c, &frames, &codes, None));
        assert_eq!(got.len(), 2, "{got:?}");
        for (_, kind, reason) in &got {
            assert_eq!(*kind, VerdictKind::Inconclusive, "{got:?}");
            assert!(reason.contains("check both by hand"), "{got:?}");
        }
    }

    #[test]
    fn packs_in_view_together_with_one_serial_under_two_gtins_are_no_pair() {
        let m = manifest();
        let gtin = m.classes[0].gtin.clone();
        let frames: Vec<Vec<Detection>> = (0..4)
            .map(|_| vec![det(0, 0.9, 100.0), det(0, 0.92, 500.0)])
            .chain(std::iter::repeat_n(Vec::new(), 40))
            .collect();
        let codes: Vec<Vec<Code>> = (0..4)
            .map(|_| {
                vec![
                    code_at(100.0, &gtin, "SN1"),
                    code_at(500.0, "05012345999992", "SN1"),
                ]
            })
            .collect();
        let mut c = conveyor();
        let got = verdicts_of(&feed_coded(&mut c, &frames, &codes, None));
        assert_eq!(got[0].1, VerdictKind::Genuine, "{got:?}");
        assert!(
            !got[1].2.contains("copy"),
            "another GTIN is no clone: {got:?}"
        );
    }
}
