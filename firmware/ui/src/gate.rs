//! The reject gate's queue: packs on their way from the camera to the gate, keyed by belt position.
//!
//! The agent announces every pack as soon as it enters the view ([`Gate::enter`]: the count at which
//! its leading edge reaches the gate), pending; its verdict later turns it into reject or pass
//! ([`Gate::decide`]). Each time the belt count moves ([`Gate::advance`]) every entry whose count has
//! come is handled: a reject fires the actuator, a pass does nothing, and a pack still pending — its
//! decision late, the link lost, the agent stalled — is handled fail-safe (`on_late`: divert it by
//! default), so nothing passes unchecked. Every outcome is reported back with the count it happened at.
//!
//! Entries may come in any order and be refined (the same `item_id` again moves its count). The queue
//! is bounded; a full queue refuses the new entry, says so, and sets [`Gate::overflowing`], which the
//! controller turns into diverting everything until there is room again.
//!
//! Coverage: with each judged frame the agent says how far the belt reaching the gate has been
//! inspected ([`Gate::inspected`]). Belt past that reaches the gate unseen — a stalled agent, a
//! stopped camera, a cut line — and [`Gate::uninspected`] turns the controller to diverting
//! everything until inspection catches up, so a pack the agent never saw cannot pass unchecked. A gate
//! that never heard of coverage (an older agent) does not divert for it.
//!
//! Design: the queue keeps running without the agent. A link drop loses no entry and fires every
//! pending one fail-safe as it arrives; after a reconnect, decisions for packs already gone by are
//! answered [`GateOutcome::Unknown`] and never fire.

use hallmark_link::{GateDecision, GateEntry, GateOutcome, GateReport, OnLate};
use heapless::Vec;

/// Packs the gate can expect at once.
pub const CAPACITY: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    item_id: u32,
    arrives_at: u64,
    pulse_ms: u16,
    on_late: OnLate,
    /// `Some(true)`: reject; `Some(false)`: pass; `None`: pending.
    reject: Option<bool>,
}

/// What one belt movement did: the actuator pulse to start (the longest due), and the reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passed {
    pub fire_ms: Option<u16>,
    pub reports: Vec<GateReport, CAPACITY>,
}

/// Counts of what the gate did, since power-on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    pub rejected: u32,
    pub passed: u32,
    pub late_rejected: u32,
    pub late_passed: u32,
    pub refused: u32,
    /// Times the belt at the gate ran past the inspected belt (diverting began).
    pub uninspected: u32,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    entries: Vec<Entry, CAPACITY>,
    count: u64,
    overflowing: bool,
    /// The belt reaching the gate is inspected up to this count (`None`: never said).
    inspected: Option<u64>,
    stats: GateStats,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// The belt count last seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Packs expected now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// The earliest count a pack is expected at.
    pub fn next_arrival(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.arrives_at).min()
    }

    /// The agent inspected the belt reaching the gate up to `through` (it only grows; a smaller one,
    /// from an agent restarted against a reset encoder, is taken as is).
    pub fn inspected(&mut self, through: u64) {
        self.inspected = Some(through);
    }

    /// The belt at the gate now was never inspected: divert everything.
    pub fn uninspected(&self) -> bool {
        self.inspected.is_some_and(|t| self.count > t)
    }

    /// A full queue refused an entry, and there is no room yet: divert everything.
    pub fn overflowing(&self) -> bool {
        self.overflowing
    }

    /// A pack to expect (or a refined estimate of one already expected). `None` when taken; a report
    /// when refused: the queue is full, or the pack's count has already gone by (it is handled at
    /// once, as a pack at the gate).
    pub fn enter(&mut self, e: GateEntry) -> Option<GateReport> {
        if let Some(old) = self.entries.iter_mut().find(|x| x.item_id == e.item_id) {
            old.arrives_at = e.arrives_at;
            old.pulse_ms = e.pulse_ms;
            old.on_late = e.on_late;
            return None;
        }
        let entry = Entry {
            item_id: e.item_id,
            arrives_at: e.arrives_at,
            pulse_ms: e.pulse_ms,
            on_late: e.on_late,
            reject: None,
        };
        if self.entries.push(entry).is_err() {
            self.overflowing = true;
            self.stats.refused += 1;
            return Some(GateReport {
                item_id: e.item_id,
                outcome: GateOutcome::Refused,
                count: self.count,
            });
        }
        None
    }

    /// The decision for a pack; a report when the gate does not know it (already gone by, or never
    /// announced since power-on).
    pub fn decide(&mut self, d: GateDecision) -> Option<GateReport> {
        match self.entries.iter_mut().find(|x| x.item_id == d.item_id) {
            Some(e) => {
                e.reject = Some(d.reject);
                None
            }
            None => Some(GateReport {
                item_id: d.item_id,
                outcome: GateOutcome::Unknown,
                count: self.count,
            }),
        }
    }

    /// The belt is at `count` (counts only grow; a smaller one, from a reset encoder, is taken as is):
    /// handles every pack whose count has come.
    pub fn advance(&mut self, count: u64) -> Passed {
        let was_uninspected = self.uninspected();
        self.count = count;
        if !was_uninspected && self.uninspected() {
            self.stats.uninspected += 1;
        }
        let mut out = Passed::default();
        let mut i = 0;
        while i < self.entries.len() {
            let e = self.entries[i];
            if e.arrives_at > count {
                i += 1;
                continue;
            }
            self.entries.swap_remove(i);
            let (outcome, fire) = match (e.reject, e.on_late) {
                (Some(true), _) => (GateOutcome::Rejected, true),
                (Some(false), _) => (GateOutcome::Passed, false),
                (None, OnLate::Reject) => (GateOutcome::LateRejected, true),
                (None, OnLate::Pass) => (GateOutcome::LatePassed, false),
            };
            match outcome {
                GateOutcome::Rejected => self.stats.rejected += 1,
                GateOutcome::Passed => self.stats.passed += 1,
                GateOutcome::LateRejected => self.stats.late_rejected += 1,
                _ => self.stats.late_passed += 1,
            }
            if fire {
                out.fire_ms = Some(out.fire_ms.map_or(e.pulse_ms, |p| p.max(e.pulse_ms)));
            }
            // Design: the report list has the queue's capacity, so every handled entry fits.
            let _ = out.reports.push(GateReport {
                item_id: e.item_id,
                outcome,
                count,
            });
        }
        if self.overflowing && self.entries.len() < CAPACITY {
            self.overflowing = false;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(item_id: u32, arrives_at: u64) -> GateEntry {
        GateEntry {
            item_id,
            arrives_at,
            pulse_ms: 300,
            on_late: OnLate::Reject,
        }
    }

    fn decide(g: &mut Gate, item_id: u32, reject: bool) {
        assert_eq!(g.decide(GateDecision { item_id, reject }), None);
    }

    /// Advances one count at a time from the gate's count to `to`; returns (item, outcome, count) of
    /// every report and the counts at which the actuator fired.
    fn run(g: &mut Gate, to: u64) -> (std::vec::Vec<(u32, GateOutcome, u64)>, std::vec::Vec<u64>) {
        extern crate std;
        let (mut reports, mut fired) = (std::vec::Vec::new(), std::vec::Vec::new());
        for c in g.count() + 1..=to {
            let p = g.advance(c);
            if p.fire_ms.is_some() {
                fired.push(c);
            }
            reports.extend(p.reports.iter().map(|r| (r.item_id, r.outcome, r.count)));
        }
        (reports, fired)
    }

    extern crate std;

    #[test]
    fn each_pack_is_handled_at_its_own_count_whatever_the_order_of_entries_and_decisions() {
        let mut g = Gate::new();
        for (id, at) in [(3, 300), (1, 100), (2, 200)] {
            assert_eq!(g.enter(entry(id, at)), None);
        }
        decide(&mut g, 2, false);
        decide(&mut g, 3, true);
        decide(&mut g, 1, true);
        let (reports, fired) = run(&mut g, 400);
        assert_eq!(
            reports,
            [
                (1, GateOutcome::Rejected, 100),
                (2, GateOutcome::Passed, 200),
                (3, GateOutcome::Rejected, 300)
            ]
        );
        assert_eq!(fired, [100, 300], "fired exactly at each target count");
        assert!(g.is_empty());
    }

    #[test]
    fn a_pack_without_a_decision_at_the_gate_is_handled_fail_safe() {
        let mut g = Gate::new();
        g.enter(entry(1, 50));
        g.enter(GateEntry {
            on_late: OnLate::Pass,
            ..entry(2, 60)
        });
        let (reports, fired) = run(&mut g, 100);
        assert_eq!(
            reports,
            [
                (1, GateOutcome::LateRejected, 50),
                (2, GateOutcome::LatePassed, 60)
            ]
        );
        assert_eq!(fired, [50]);
        assert_eq!(
            g.decide(GateDecision {
                item_id: 1,
                reject: false
            }),
            Some(GateReport {
                item_id: 1,
                outcome: GateOutcome::Unknown,
                count: 100
            }),
            "a decision after the pack went by never fires"
        );
        assert_eq!(g.stats().late_rejected, 1);
    }

    #[test]
    fn a_refined_entry_moves_its_count_and_keeps_its_decision() {
        let mut g = Gate::new();
        g.enter(entry(7, 100));
        decide(&mut g, 7, true);
        assert_eq!(g.enter(entry(7, 140)), None);
        let (reports, fired) = run(&mut g, 200);
        assert_eq!(reports, [(7, GateOutcome::Rejected, 140)]);
        assert_eq!(fired, [140]);
    }

    #[test]
    fn a_full_queue_refuses_says_so_and_overflows_until_there_is_room() {
        let mut g = Gate::new();
        for id in 0..CAPACITY as u32 {
            assert_eq!(g.enter(entry(id, 1000 + u64::from(id))), None);
        }
        let r = g.enter(entry(999, 5000)).unwrap();
        assert_eq!(r.outcome, GateOutcome::Refused);
        assert!(g.overflowing());
        g.advance(1000);
        assert!(!g.overflowing(), "room again after the first pack went by");
        assert_eq!(g.stats().refused, 1);
    }

    #[test]
    fn packs_at_one_count_fire_once_for_the_longest_pulse() {
        let mut g = Gate::new();
        g.enter(GateEntry {
            pulse_ms: 200,
            ..entry(1, 10)
        });
        g.enter(GateEntry {
            pulse_ms: 500,
            ..entry(2, 10)
        });
        let p = g.advance(10);
        assert_eq!(p.fire_ms, Some(500));
        assert_eq!(p.reports.len(), 2);
    }
}
