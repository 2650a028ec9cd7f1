//! The belt clock: which encoder count the belt was at when a frame was captured.
//!
//! The controller reports the belt's count every few tens of milliseconds (`BeltCount` on the link);
//! each report is stamped with the instant it arrived. A frame's capture instant is mapped to a count
//! by interpolating between the two reports around it, or by extrapolating from the newest ones at the
//! speed they show when the frame is newer than every report (at most [`MAX_EXTRAPOLATION`]: past it
//! the clock is stale, a cut link or a stopped controller, and says so with `None`).
//!
//! Reports are kept for [`KEEP`] (thinned to one per [`MIN_SPACING`]), so a frame captured while the
//! link was cut is still mapped once reports come back: the belt moved steadily in between, and the
//! reports on both sides of the gap bracket it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far past the newest report a count is extrapolated.
pub const MAX_EXTRAPOLATION: Duration = Duration::from_millis(500);
/// How long reports are kept.
pub const KEEP: Duration = Duration::from_secs(10);
/// Reports closer than this to the previous kept one are not kept (the newest always is).
pub const MIN_SPACING: Duration = Duration::from_millis(40);
/// The window the belt's current speed is measured over, for extrapolation.
const SPEED_WINDOW: Duration = Duration::from_millis(300);
/// Reports this close together were read in one burst.
const BURST: Duration = Duration::from_millis(1);
/// The least span of reports a speed is measured over: reports read in one burst (queued while the
/// port was closed) arrive at one instant and say nothing of the speed.
const MIN_SPEED_SPAN: Duration = Duration::from_millis(100);

/// Belt counts as reported, in arrival order.
#[derive(Debug, Default, Clone)]
pub struct BeltClock {
    samples: VecDeque<(Instant, u64)>,
    /// Counts up at every reset (a count below the previous one): targets from before are void.
    epoch: u64,
}

impl BeltClock {
    pub fn new() -> BeltClock {
        BeltClock::default()
    }

    /// A report: the belt was at `count` at `at`. A count below the previous one (an encoder or
    /// controller reset) starts the clock over; a report older than the newest is ignored.
    pub fn observe(&mut self, at: Instant, count: u64) {
        if let Some(&(last_at, last)) = self.samples.back() {
            if at < last_at {
                return;
            }
            if count < last {
                self.samples.clear();
                self.epoch += 1;
            } else if at.duration_since(last_at) < BURST {
                // Read in one burst: the newest count is the one true at this instant.
                self.samples.pop_back();
            } else if self.samples.len() >= 2 {
                // Thin: the newest replaces the previous newest while they are close together.
                let prev_at = self.samples[self.samples.len() - 2].0;
                if at.duration_since(prev_at) <= MIN_SPACING {
                    self.samples.pop_back();
                }
            }
        }
        self.samples.push_back((at, count));
        while let Some(&(first, _)) = self.samples.front() {
            if at.duration_since(first) > KEEP && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// How many times the count went back (an encoder or controller reset).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The newest count and when it was reported.
    pub fn latest(&self) -> Option<(Instant, u64)> {
        self.samples.back().copied()
    }

    /// The count at instant `t`, or `None` when the clock cannot tell (no reports yet, or `t` more
    /// than [`MAX_EXTRAPOLATION`] past the newest report, or older than every report kept).
    pub fn count_at(&self, t: Instant) -> Option<f64> {
        let &(last_at, last) = self.samples.back()?;
        if t >= last_at {
            let ahead = t.duration_since(last_at);
            if ahead > MAX_EXTRAPOLATION {
                return None;
            }
            return Some(last as f64 + self.speed()? * ahead.as_secs_f64());
        }
        // The two reports around t (t < last_at, so a later one exists).
        let i = self.samples.partition_point(|&(at, _)| at <= t);
        if i == 0 {
            return None;
        }
        let (a_at, a) = self.samples[i - 1];
        let (b_at, b) = self.samples[i];
        let span = b_at.duration_since(a_at).as_secs_f64();
        if span <= 0.0 {
            return Some(a as f64);
        }
        let f = t.duration_since(a_at).as_secs_f64() / span;
        Some(a as f64 + (b - a) as f64 * f)
    }

    /// Counts per second over the newest [`SPEED_WINDOW`] of reports; `None` until reports span
    /// [`MIN_SPEED_SPAN`].
    pub fn speed(&self) -> Option<f64> {
        let &(last_at, last) = self.samples.back()?;
        let first = self
            .samples
            .iter()
            .rev()
            .find(|(at, _)| last_at.duration_since(*at) >= SPEED_WINDOW)
            .or_else(|| self.samples.front())
            .copied();
        match first {
            Some((at, c)) if last_at.duration_since(at) >= MIN_SPEED_SPAN => {
                Some((last - c) as f64 / last_at.duration_since(at).as_secs_f64())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A belt at 500 counts/s reported every 20 ms from t0.
    fn belt(t0: Instant, until_ms: u64) -> BeltClock {
        let mut c = BeltClock::new();
        for k in (0..=until_ms).step_by(20) {
            c.observe(t0 + ms(k), k / 2);
        }
        c
    }

    #[test]
    fn a_frame_between_reports_gets_the_interpolated_count() {
        let t0 = Instant::now();
        let c = belt(t0, 1000);
        let at = c.count_at(t0 + ms(333)).unwrap();
        assert!((at - 166.5).abs() < 0.6, "{at}");
        let speed = c.speed().unwrap();
        assert!((speed - 500.0).abs() < 1.0, "{speed}");
    }

    #[test]
    fn a_frame_after_the_newest_report_is_extrapolated_at_the_belts_speed_until_stale() {
        let t0 = Instant::now();
        let c = belt(t0, 1000);
        let at = c.count_at(t0 + ms(1100)).unwrap();
        assert!((at - 550.0).abs() < 1.0, "{at}");
        assert_eq!(c.count_at(t0 + ms(1000) + MAX_EXTRAPOLATION + ms(1)), None);
        assert_eq!(BeltClock::new().count_at(t0), None, "no reports yet");
        assert_eq!(c.count_at(t0 - ms(1)), None, "older than every report");
    }

    #[test]
    fn reports_read_in_one_burst_give_no_speed_until_they_span_a_tenth_of_a_second() {
        let t0 = Instant::now();
        let mut c = BeltClock::new();
        // Queued while the port was closed: read at one instant.
        for k in 0..20u64 {
            c.observe(t0, 1000 + k * 20);
        }
        assert_eq!(c.speed(), None);
        assert_eq!(c.count_at(t0 + ms(50)), None, "no speed: no extrapolation");
        for k in 1..=10u64 {
            c.observe(t0 + ms(k * 20), 1380 + k * 20);
        }
        let at = c.count_at(t0 + ms(250)).unwrap();
        assert!((at - 1630.0).abs() < 2.0, "{at}");
    }

    #[test]
    fn a_frame_captured_while_the_link_was_cut_is_mapped_once_reports_come_back() {
        let t0 = Instant::now();
        let mut c = belt(t0, 1000);
        let in_gap = t0 + ms(2000);
        assert_eq!(c.count_at(in_gap), None, "cut: stale");
        for k in (3000..=3200).step_by(20) {
            c.observe(t0 + ms(k), k / 2);
        }
        let at = c.count_at(in_gap).unwrap();
        assert!((at - 1000.0).abs() < 1.0, "{at}");
    }

    #[test]
    fn a_reset_encoder_starts_the_clock_over_and_old_reports_are_let_go() {
        let t0 = Instant::now();
        let mut c = belt(t0, 20_000);
        assert!(c.samples.len() <= (KEEP.as_millis() / MIN_SPACING.as_millis()) as usize + 2);
        c.observe(t0 + ms(20_020), 3);
        assert_eq!(c.latest().map(|(_, n)| n), Some(3));
        assert_eq!(c.epoch(), 1);
        assert_eq!(c.count_at(t0 + ms(19_000)), None);
    }
}
