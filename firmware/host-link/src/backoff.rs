//! How long the link thread waits before reopening the port: doubling from `reconnect_min` up to
//! `reconnect_max` while attempts fail, back to the minimum only after a connection that worked.
//!
//! Design: "worked" means the controller said something. Opening the port is not enough — a USB
//! adapter whose controller is unpowered or wedged opens fine and then fails at once; resetting the
//! delay on every open would retry (and log a warning) ten times a second forever.

use std::time::Duration;

/// The reconnect delay.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// A connection ended (or an open failed); `heard` says whether the controller spoke during it.
    /// Returns how long to wait before the next attempt.
    pub(crate) fn after_attempt(&mut self, heard: bool) -> Duration {
        if heard {
            self.next = self.min;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn failed_attempts_double_the_wait_up_to_the_cap() {
        let mut b = Backoff::new(100 * MS, 2_000 * MS);
        let waits: Vec<_> = (0..7).map(|_| b.after_attempt(false)).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1_600, 2_000, 2_000].map(|ms| ms * MS)
        );
    }

    #[test]
    fn a_connection_that_heard_nothing_does_not_reset_the_wait() {
        let mut b = Backoff::new(100 * MS, 2_000 * MS);
        for _ in 0..5 {
            let _ = b.after_attempt(false);
        }
        // The port opened, but the controller never answered: keep backing off.
        assert_eq!(b.after_attempt(false), 2_000 * MS);
    }

    #[test]
    fn a_connection_that_heard_the_controller_starts_over() {
        let mut b = Backoff::new(100 * MS, 2_000 * MS);
        for _ in 0..5 {
            let _ = b.after_attempt(false);
        }
        assert_eq!(b.after_attempt(true), 100 * MS);
        assert_eq!(b.after_attempt(false), 200 * MS);
    }

    #[test]
    fn a_cap_below_the_minimum_is_raised_to_it() {
        let mut b = Backoff::new(500 * MS, 100 * MS);
        assert_eq!(b.after_attempt(false), 500 * MS);
        assert_eq!(b.after_attempt(false), 500 * MS);
    }
}
