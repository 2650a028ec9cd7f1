//! The gate plan: for each pack the conveyor follows, the belt count at which it reaches the reject
//! gate, and the commands that tell the controller (expect it, then reject or pass it).
//!
//! Each frame a pack is seen in gives one estimate: the frame's belt count (from the [`BeltClock`]
//! at the frame's capture instant) plus the belt distance from the pack's leading edge to the view's
//! exit edge (pixels ÷ `px_per_mm`) plus the gate's distance past that edge, in counts. A pack cut by
//! the exit edge shows no leading edge; its trailing edge and the length it showed whole stand in.
//! The pack's target is the median of its estimates (a bad box moves it little), sent again whenever
//! it moves by a count or more. Observations are kept by instant, not count, so frames captured while
//! the link was cut are placed once the clock has counts on both sides of the gap.
//!
//! A pack is announced (given its item id and a pending entry at the gate) once the tracker has seen
//! it in `min_frames` frames, the frames a verdict needs at least; every announced pack gets a
//! verdict from the tracker, so none is left pending unless its verdict comes late.

use std::collections::BTreeMap;
use std::time::Instant;

use super::belt::BeltClock;
use super::{Direction, GateCommand, GateConfig, GateTiming};

/// A pack's decision as the gate takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The pack's item id (the verdict event's `item.id`).
    pub item: u32,
    /// What to send the controller now (`None`: after its target, from [`GatePlan::refresh`]).
    pub command: Option<GateCommand>,
    /// Target, decision count and margin, when the clock could place both.
    pub timing: Option<GateTiming>,
}

/// Observations kept per pack (the newest).
const MAX_OBS: usize = 32;
/// Packs remembered at once; past it the one announced first is forgotten.
const MAX_PACKS: usize = 256;
/// A box edge this close to the frame's edge is cut by it.
const EDGE_PX: f32 = 2.0;

#[derive(Debug, Clone)]
struct Pack {
    item: Option<u32>,
    frames: u32,
    /// The capture instant of the last frame it was seen in.
    seen_at: Instant,
    /// (capture instant, millimetres from the leading edge to the gate).
    obs: Vec<(Instant, f64)>,
    /// Its length along the belt in pixels, from a frame that showed it whole.
    length_px: Option<f32>,
    /// The target last sent to the controller.
    sent: Option<u64>,
    /// Its decision (true: reject), once decided, and whether the controller was told.
    decided: Option<bool>,
    decision_sent: bool,
}

/// The gate plan (see the module docs).
#[derive(Debug)]
pub struct GatePlan {
    cfg: GateConfig,
    packs: BTreeMap<u64, Pack>,
    /// The belt clock's epoch the targets were sent in.
    epoch: u64,
}

/// A pack seen but never announced (a glimpse) is let go this long after it was last seen.
const GHOST_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl GatePlan {
    pub fn new(cfg: GateConfig) -> GatePlan {
        GatePlan {
            cfg,
            packs: BTreeMap::new(),
            epoch: 0,
        }
    }

    pub fn config(&self) -> &GateConfig {
        &self.cfg
    }

    /// The tracked packs of one frame (track id, box) captured at `captured` in a frame of `size`;
    /// a pack seen for the `min_frames`-th time is given the next item id from `next_item`.
    pub fn observe(
        &mut self,
        captured: Instant,
        size: (u32, u32),
        tracked: &[(u64, [f32; 4])],
        next_item: &mut u32,
    ) {
        for &(track, bbox) in tracked {
            if !self.packs.contains_key(&track) && self.packs.len() >= MAX_PACKS {
                if let Some(&oldest) = self.packs.keys().next() {
                    self.packs.remove(&oldest);
                }
            }
            let pack = self.packs.entry(track).or_insert_with(|| Pack {
                item: None,
                frames: 0,
                seen_at: captured,
                obs: Vec::new(),
                length_px: None,
                sent: None,
                decided: None,
                decision_sent: false,
            });
            pack.frames += 1;
            pack.seen_at = pack.seen_at.max(captured);
            let edges = along(self.cfg.direction, bbox, size);
            if !edges.cut_entry && !edges.cut_exit {
                pack.length_px = Some(edges.lead - edges.trail);
            }
            let lead = if edges.cut_exit {
                pack.length_px.map(|l| edges.trail + l)
            } else {
                Some(edges.lead)
            };
            if let Some(lead) = lead {
                let to_exit_px = (edges.exit - lead) as f64;
                let mm = to_exit_px / self.cfg.px_per_mm + self.cfg.distance_mm;
                if pack.obs.len() >= MAX_OBS {
                    pack.obs.remove(0);
                }
                pack.obs.push((captured, mm));
            }
            if pack.item.is_none() && pack.frames >= self.cfg.min_frames.max(1) {
                pack.item = Some(*next_item);
                *next_item = next_item.wrapping_add(1);
            }
        }
    }

    /// How far the belt reaching the gate is inspected by a frame captured at `captured` (of `size`):
    /// the count at which the belt then at the middle of the view reaches the gate. A pack downstream
    /// of the middle had been in view half a crossing, time enough to be tracked and announced; one
    /// upstream of it arrives later, so if no later frame is judged (a stalled agent, a cut line) the
    /// controller diverts it. `None` when the clock cannot place the frame.
    pub fn inspected(&self, captured: Instant, size: (u32, u32), clock: &BeltClock) -> Option<u64> {
        let view_px = match self.cfg.direction {
            Direction::LeftToRight | Direction::RightToLeft => size.0,
            Direction::TopToBottom | Direction::BottomToTop => size.1,
        } as f64;
        let mm = view_px / 2.0 / self.cfg.px_per_mm + self.cfg.distance_mm;
        let at = clock.count_at(captured)?;
        Some((at + mm * self.cfg.counts_per_mm).round().max(0.0) as u64)
    }

    /// The item id given to a track's pack, if announced.
    pub fn item_of(&self, track: u64) -> Option<u32> {
        self.packs.get(&track).and_then(|p| p.item)
    }

    /// What the controller must be told now: a new or moved target for each announced pack still
    /// ahead of the gate, and decisions not yet sent. Packs well past the gate are forgotten.
    pub fn refresh(&mut self, clock: &BeltClock) -> Vec<GateCommand> {
        let Some((now_at, now)) = clock.latest() else {
            return Vec::new();
        };
        self.follow_epoch(clock);
        let guard = guard(clock);
        let mut out = Vec::new();
        let cpm = self.cfg.counts_per_mm;
        for pack in self.packs.values_mut() {
            let Some(item) = pack.item else { continue };
            // Once its target is reached, or about to be, the controller has handled it (the count
            // here is up to a report old): never sent again, or the gate would take it twice.
            if pack.sent.is_some_and(|s| s <= now.saturating_add(guard)) {
                continue;
            }
            let Some(target) = estimate(pack, clock, cpm) else {
                continue;
            };
            if target > now && pack.sent != Some(target) {
                pack.sent = Some(target);
                out.push(GateCommand::Expect {
                    item,
                    arrives_at: target,
                });
            }
            if let (Some(reject), false, Some(_)) = (pack.decided, pack.decision_sent, pack.sent) {
                pack.decision_sent = true;
                out.push(GateCommand::Decide { item, reject });
            }
        }
        // Forget a decided pack once the belt has carried it a full gate distance past its target.
        // An undecided one is kept (up to MAX_PACKS) however late its decision: the verdict event
        // must still say the gate handled it by `on_late`.
        let slack = (self.cfg.distance_mm * cpm).max(1.0) as u64;
        self.packs.retain(|_, p| {
            if p.item.is_none() {
                return now_at.saturating_duration_since(p.seen_at) < GHOST_AFTER;
            }
            p.decided.is_none()
                || p.sent
                    .or_else(|| estimate(p, clock, cpm))
                    .is_none_or(|t| t.saturating_add(slack) > now)
        });
        out
    }

    /// The pack of `track` is decided (`reject` or pass) at instant `at`: the command for the
    /// controller and how the decision stood against the pack's arrival. `None` for a pack never
    /// announced (the caller falls back to an immediate reject). A pack whose target the clock cannot
    /// place yet gets no command now: [`GatePlan::refresh`] sends the decision after the target.
    pub fn decide(
        &mut self,
        track: u64,
        reject: bool,
        clock: &BeltClock,
        at: Instant,
    ) -> Option<Decision> {
        let cpm = self.cfg.counts_per_mm;
        let pack = self.packs.get_mut(&track)?;
        let item = pack.item?;
        pack.decided = Some(reject);
        let target = pack.sent.or_else(|| estimate(pack, clock, cpm));
        // A stale clock (a cut link) cannot say where the belt is now: no timing then.
        let decided_at = clock.count_at(at).map(|c| c.round().max(0.0) as u64);
        let timing = match (target, decided_at) {
            (Some(t), Some(d)) => Some(GateTiming {
                arrives_at: t,
                decided_at: d,
                margin_mm: (t as f64 - d as f64) / cpm,
                late: d >= t,
                reject,
            }),
            _ => None,
        };
        if pack.sent.is_none() {
            // The controller has no target for it yet: the decision follows the target.
            return Some(Decision {
                item,
                command: None,
                timing,
            });
        }
        pack.decision_sent = true;
        Some(Decision {
            item,
            command: Some(GateCommand::Decide { item, reject }),
            timing,
        })
    }

    /// After the controller (re)connected: every announced pack still ahead of the gate again, with
    /// its decision when it has one. Packs that already passed are not sent (the controller would
    /// handle them at once).
    pub fn resend(&mut self, clock: &BeltClock) -> Vec<GateCommand> {
        self.follow_epoch(clock);
        let Some((_, now)) = clock.latest() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for pack in self.packs.values_mut() {
            let (Some(item), Some(target)) = (pack.item, pack.sent) else {
                continue;
            };
            if target <= now.saturating_add(guard(clock)) {
                continue;
            }
            out.push(GateCommand::Expect {
                item,
                arrives_at: target,
            });
            if let Some(reject) = pack.decided {
                pack.decision_sent = true;
                out.push(GateCommand::Decide { item, reject });
            }
        }
        out
    }

    /// After an encoder or controller reset the sent targets are in the old count scale: void. Packs
    /// whose frames the new clock cannot place are not sent again (they are lost to the gate).
    fn follow_epoch(&mut self, clock: &BeltClock) {
        if clock.epoch() == self.epoch {
            return;
        }
        self.epoch = clock.epoch();
        for pack in self.packs.values_mut() {
            pack.sent = None;
            pack.decision_sent = false;
        }
    }

    /// Packs remembered now.
    pub fn len(&self) -> usize {
        self.packs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packs.is_empty()
    }
}

/// The belt's travel over [`GUARD`]: a target this close to the newest count may already have been
/// handled by the controller.
fn guard(clock: &BeltClock) -> u64 {
    (clock.speed().unwrap_or(0.0) * GUARD.as_secs_f64()).max(1.0) as u64
}

/// See [`guard`].
const GUARD: std::time::Duration = std::time::Duration::from_millis(250);

/// The median of a pack's estimates of its target count, over the observations the clock can place.
fn estimate(pack: &Pack, clock: &BeltClock, counts_per_mm: f64) -> Option<u64> {
    let mut v: Vec<f64> = pack
        .obs
        .iter()
        .filter_map(|&(at, mm)| clock.count_at(at).map(|c| c + mm * counts_per_mm))
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Some(m.round().max(0.0) as u64)
}

/// A box's edges along the belt, in pixels along the direction of travel.
pub(super) struct Along {
    /// The leading edge (first to reach the gate) and the trailing one.
    lead: f32,
    trail: f32,
    /// The view's exit edge.
    exit: f32,
    pub(super) cut_exit: bool,
    cut_entry: bool,
}

/// Turns a box into positions along the belt: every direction becomes "increasing towards the exit".
pub(super) fn along(direction: Direction, b: [f32; 4], (w, h): (u32, u32)) -> Along {
    let (w, h) = (w as f32, h as f32);
    let (lead, trail, exit) = match direction {
        Direction::LeftToRight => (b[2], b[0], w),
        Direction::RightToLeft => (w - b[0], w - b[2], w),
        Direction::TopToBottom => (b[3], b[1], h),
        Direction::BottomToTop => (h - b[1], h - b[3], h),
    };
    Along {
        lead,
        trail,
        exit,
        cut_exit: lead >= exit - EDGE_PX,
        cut_entry: trail <= EDGE_PX,
    }
}

#[cfg(test)]
mod tests {
    use super::super::OnLate;
    use super::*;
    use std::time::Duration;

    const SPEED_MM_S: f64 = 500.0;
    const PX_PER_MM: f64 = 2.0;

    fn cfg() -> GateConfig {
        GateConfig {
            distance_mm: 400.0,
            counts_per_mm: 1.0,
            px_per_mm: PX_PER_MM,
            direction: Direction::LeftToRight,
            on_late: OnLate::Reject,
            pulse_ms: 100,
            min_frames: 2,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The belt reported every 20 ms from t0 up to `until` ms (1 count per mm).
    fn clock(t0: Instant, until: u64) -> BeltClock {
        let mut c = BeltClock::new();
        for k in (0..=until).step_by(20) {
            c.observe(t0 + ms(k), (SPEED_MM_S * k as f64 / 1000.0) as u64);
        }
        c
    }

    /// A 200 px pack whose leading edge is at `lead0` px at t0, moving with the belt, as seen in a
    /// 960 px wide frame at `ms_at`.
    fn pack_at(lead0: f64, at_ms: u64) -> [f32; 4] {
        let lead = lead0 + SPEED_MM_S * PX_PER_MM * at_ms as f64 / 1000.0;
        let lead = lead.min(960.0) as f32;
        let trail = (lead0 - 200.0 + SPEED_MM_S * PX_PER_MM * at_ms as f64 / 1000.0) as f32;
        [trail.max(0.0), 100.0, lead, 300.0]
    }

    #[test]
    fn a_pack_seen_over_frames_is_expected_at_the_count_its_leading_edge_reaches_the_gate() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 7;
        // Leading edge at 260 px at t0: 700 px = 350 mm from the exit edge, + 400 mm: count 750.
        for f in 0..4u64 {
            let at = f * 100;
            plan.observe(
                t0 + ms(at),
                (960, 720),
                &[(1, pack_at(260.0, at))],
                &mut next,
            );
            if f == 0 {
                assert_eq!(plan.item_of(1), None, "one frame: not announced yet");
            }
        }
        assert_eq!(plan.item_of(1), Some(7));
        assert_eq!(next, 8);
        let c = clock(t0, 400);
        let cmds = plan.refresh(&c);
        let Some(GateCommand::Expect {
            item: 7,
            arrives_at,
        }) = cmds.first().copied()
        else {
            panic!("{cmds:?}");
        };
        assert!(arrives_at.abs_diff(750) <= 1, "{arrives_at}");
        assert!(
            plan.refresh(&c).is_empty(),
            "nothing moved, nothing re-sent"
        );
    }

    #[test]
    fn a_pack_cut_by_the_exit_edge_is_placed_by_its_trailing_edge_and_length() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 1;
        // Whole at 0 and 100 ms, then cut by the exit edge at 200..400 ms.
        for f in 0..5u64 {
            let at = f * 100;
            plan.observe(
                t0 + ms(at),
                (960, 720),
                &[(1, pack_at(560.0, at))],
                &mut next,
            );
        }
        let c = clock(t0, 500);
        let cmds = plan.refresh(&c);
        // 400 px = 200 mm to the exit at t0, + 400 mm: 600.
        assert!(
            matches!(cmds[..], [GateCommand::Expect { arrives_at, .. }] if arrives_at.abs_diff(600) <= 1),
            "{cmds:?}"
        );
    }

    #[test]
    fn a_frame_vouches_for_the_belt_up_to_the_middle_of_the_view_reaching_the_gate() {
        let t0 = Instant::now();
        let plan = GatePlan::new(cfg());
        let c = clock(t0, 1000);
        // At 500 ms the belt is at 250; mid-view is 480 px = 240 mm from the exit, + 400 mm.
        assert_eq!(plan.inspected(t0 + ms(500), (960, 720), &c), Some(890));
        assert_eq!(plan.inspected(t0 + ms(5000), (960, 720), &c), None, "stale");
        let down = GatePlan::new(GateConfig {
            direction: Direction::TopToBottom,
            ..cfg()
        });
        assert_eq!(
            down.inspected(t0 + ms(500), (960, 720), &c),
            Some(250 + 180 + 400)
        );
    }

    #[test]
    fn a_controller_reporting_counts_near_the_end_of_the_range_breaks_nothing() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 1;
        let mut c = BeltClock::new();
        for k in 0..=20u64 {
            c.observe(t0 + ms(k * 20), u64::MAX - 1000 + k * 10);
        }
        for f in 0..3u64 {
            plan.observe(
                t0 + ms(f * 100),
                (960, 720),
                &[(1, pack_at(260.0, f * 100))],
                &mut next,
            );
        }
        let _ = plan.refresh(&c);
        let _ = plan.resend(&c);
        let _ = plan.decide(1, true, &c, t0 + ms(400));
        let _ = plan.inspected(t0 + ms(400), (960, 720), &c);
        let _ = plan.refresh(&c);
    }

    #[test]
    fn every_direction_measures_towards_its_own_exit_edge() {
        let size = (960, 720);
        let b = [100.0, 200.0, 300.0, 500.0];
        let d = |dir| {
            let a = along(dir, b, size);
            a.exit - a.lead
        };
        assert_eq!(d(Direction::LeftToRight), 660.0);
        assert_eq!(d(Direction::RightToLeft), 100.0);
        assert_eq!(d(Direction::TopToBottom), 220.0);
        assert_eq!(d(Direction::BottomToTop), 200.0);
    }

    #[test]
    fn a_decision_in_time_has_a_positive_margin_and_a_late_one_says_late() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 1;
        for f in 0..3u64 {
            let at = f * 100;
            plan.observe(
                t0 + ms(at),
                (960, 720),
                &[(1, pack_at(260.0, at)), (2, pack_at(60.0, at))],
                &mut next,
            );
        }
        let c = clock(t0, 600);
        assert_eq!(plan.refresh(&c).len(), 2);
        let d = plan.decide(1, true, &c, t0 + ms(600)).unwrap();
        assert_eq!(
            d.command,
            Some(GateCommand::Decide {
                item: 1,
                reject: true
            })
        );
        let t = d.timing.unwrap();
        assert!(!t.late && (t.margin_mm - 450.0).abs() <= 1.0, "{t:?}");
        // Pack 2 reaches the gate at 950; decided at count 1000.
        let c = clock(t0, 2000);
        let t = plan
            .decide(2, false, &c, t0 + ms(2000))
            .unwrap()
            .timing
            .unwrap();
        assert!(t.late && t.margin_mm < 0.0, "{t:?}");
        assert_eq!(
            plan.decide(99, true, &c, t0),
            None,
            "a pack never announced"
        );
    }

    #[test]
    fn after_a_reconnect_only_packs_still_ahead_of_the_gate_are_sent_again_with_their_decisions() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 1;
        for f in 0..3u64 {
            let at = f * 100;
            plan.observe(
                t0 + ms(at),
                (960, 720),
                &[(1, pack_at(560.0, at)), (2, pack_at(60.0, at))],
                &mut next,
            );
        }
        let c = clock(t0, 300);
        plan.refresh(&c);
        plan.decide(2, true, &c, t0 + ms(300)).unwrap();
        // Pack 1 reaches the gate at ~600, pack 2 at ~1000: at 700 only pack 2 is ahead.
        let c = clock(t0, 1400);
        let cmds = plan.resend(&c);
        assert_eq!(
            cmds.iter()
                .map(|c| match c {
                    GateCommand::Expect { item, .. } => ("expect", *item),
                    GateCommand::Decide { item, .. } => ("decide", *item),
                })
                .collect::<Vec<_>>(),
            vec![("expect", 2), ("decide", 2)]
        );
    }

    #[test]
    fn a_frame_from_a_cut_link_is_placed_once_counts_come_back_and_its_decision_follows() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 1;
        let mut c = clock(t0, 100);
        // The link is cut from 100 ms: frames at 1000 and 1100 ms cannot be placed yet.
        for at in [1000, 1100] {
            plan.observe(
                t0 + ms(at),
                (960, 720),
                &[(1, pack_at(-440.0, at))],
                &mut next,
            );
        }
        assert!(plan.refresh(&c).is_empty());
        let d = plan.decide(1, true, &c, t0 + ms(1200)).unwrap();
        assert_eq!(
            (d.item, d.command, d.timing),
            (1, None, None),
            "no target yet: the decision waits for it"
        );
        for k in (1300..=1500).step_by(20) {
            c.observe(t0 + ms(k), (SPEED_MM_S * k as f64 / 1000.0) as u64);
        }
        let cmds = plan.refresh(&c);
        // Leading edge at 560 px at 1000 ms (count 500): 200 mm + 400 mm → 1100.
        assert!(
            matches!(cmds[..], [GateCommand::Expect { item: 1, arrives_at }, GateCommand::Decide { item: 1, reject: true }] if arrives_at.abs_diff(1100) <= 1),
            "{cmds:?}"
        );
    }

    #[test]
    fn packs_are_forgotten_once_well_past_the_gate_and_the_plan_stays_bounded() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 1;
        for f in 0..2u64 {
            plan.observe(
                t0 + ms(f * 100),
                (960, 720),
                &[(1, pack_at(560.0, f * 100))],
                &mut next,
            );
        }
        plan.refresh(&clock(t0, 200));
        assert_eq!(plan.len(), 1);
        plan.refresh(&clock(t0, 3000));
        assert_eq!(plan.len(), 1, "undecided: kept, however late its decision");
        let d = plan
            .decide(1, false, &clock(t0, 3000), t0 + ms(3000))
            .unwrap();
        assert!(d.timing.unwrap().late);
        plan.refresh(&clock(t0, 3000));
        assert!(plan.is_empty(), "decided and well past the gate: forgotten");
        for id in 0..(MAX_PACKS as u64 + 10) {
            plan.observe(t0, (960, 720), &[(id, pack_at(100.0, 0))], &mut next);
        }
        assert_eq!(plan.len(), MAX_PACKS);
        plan.refresh(&clock(t0, 3000));
        assert!(plan.is_empty(), "glimpses never announced are let go");
    }

    #[test]
    fn a_target_reached_is_never_sent_again_and_a_reset_encoder_voids_the_old_targets() {
        let t0 = Instant::now();
        let mut plan = GatePlan::new(cfg());
        let mut next = 1;
        for f in 0..2u64 {
            plan.observe(
                t0 + ms(f * 100),
                (960, 720),
                &[(1, pack_at(560.0, f * 100))],
                &mut next,
            );
        }
        assert_eq!(plan.refresh(&clock(t0, 200)).len(), 1);
        // Still in view (a short gate) after its target: seen again, not announced again.
        plan.observe(
            t0 + ms(1300),
            (960, 720),
            &[(1, [0.0, 100.0, 100.0, 300.0])],
            &mut next,
        );
        assert!(plan.refresh(&clock(t0, 1400)).is_empty());
        // The encoder resets: the old target means nothing now, and the old frames cannot be placed.
        let mut c = clock(t0, 1400);
        c.observe(t0 + ms(1420), 5);
        assert!(plan.resend(&c).is_empty());
        assert!(plan.refresh(&c).is_empty());
    }
}
