//! The one backoff: capped exponential delays with jitter, so a fleet that lost its broker (or a
//! camera hub, or an update server) does not come back in lockstep. Used by the MQTT reconnects,
//! the camera watchdog's reopens and the update retries.
//!
//! The `n`-th delay's step is `first · 2^n`, capped at `max`; the delay is the step less up to
//! `jitter` of it: `step · (1 − jitter · (1 − unit))` for a uniform `unit` in [0, 1]. With
//! `jitter = 0.5` that is "equal jitter" (between half the step and the step: never hammering,
//! never waiting longer than the cap); with `jitter = 1` it would be "full jitter". Pure: the caller
//! brings the random number.

use std::time::Duration;

/// `first · 2^n`, capped at `max`.
pub fn step(first: Duration, max: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

/// `step` less up to `jitter` (0..=1) of it, by `unit` (0..=1; 1 keeps the whole step; a `unit` that
/// is not a number counts as 1).
pub fn jittered(step: Duration, jitter: f64, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        1.0
    };
    step.mul_f64(1.0 - jitter.clamp(0.0, 1.0) * (1.0 - unit))
}

/// Successive delays of one thing that keeps failing: [`Backoff::next`] after each failure,
/// [`Backoff::reset`] once it works again.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    jitter: f64,
    attempt: u32,
}

impl Backoff {
    /// From `first`, doubling to `max`, with equal jitter (0.5).
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max: max.max(first),
            jitter: 0.5,
            attempt: 0,
        }
    }

    /// The same with another share of jitter (0..=1).
    pub fn with_jitter(self, jitter: f64) -> Backoff {
        Backoff { jitter, ..self }
    }

    /// The step of the next delay: `first · 2^attempt`, capped.
    pub fn ceiling(&self) -> Duration {
        step(self.first, self.max, self.attempt)
    }

    /// The next delay, given a uniform random number in [0, 1].
    pub fn next(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        jittered(ceiling, self.jitter, unit)
    }

    /// It worked: the next failure starts from `first` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let ceilings: Vec<_> = (0..6)
            .map(|_| {
                let c = b.ceiling();
                let d = b.next(0.99);
                assert!(d <= c && d >= c / 2, "{d:?} within [{:?}, {c:?}]", c / 2);
                c.as_millis()
            })
            .collect();
        assert_eq!(ceilings, vec![500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(b.next(0.0), Duration::from_secs(2));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(500));
    }

    #[test]
    fn the_jitter_takes_off_at_most_its_share_and_never_overflows() {
        let s = Duration::from_secs(8);
        assert_eq!(jittered(s, 0.25, 1.0), s);
        assert_eq!(jittered(s, 0.25, 0.0), Duration::from_secs(6));
        assert_eq!(jittered(s, 0.5, f64::NAN), s, "not a number keeps the step");
        assert_eq!(jittered(s, 0.5, 7.0), s, "clamped");
        let max = Duration::from_secs(600);
        assert_eq!(step(Duration::from_secs(5), max, 200), max);
        assert_eq!(
            step(Duration::from_secs(5), max, 3),
            Duration::from_secs(40)
        );
    }
}
