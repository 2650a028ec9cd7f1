//! Reconnect delays: capped exponential backoff with full jitter, so a fleet that lost its broker
//! does not come back in lockstep.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max: max.max(first),
            attempt: 0,
        }
    }

    /// The ceiling of the next delay: `first · 2^attempt`, capped.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.first.saturating_mul(factor).min(self.max)
    }

    /// The next delay, given a uniform random number in [0, 1): between half the ceiling and the
    /// ceiling ("equal jitter": never hammering, never waiting longer than the cap).
    pub fn next(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// A connection succeeded.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

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
}
