//! What a receive loop does after a read that brought no bytes (a UART error, an empty read): yield
//! to the other tasks first, then, if the failures keep coming, sleep a little longer each time.
//!
//! A UART that reports noise, framing or overrun errors returns from `read` at once. A loop that just
//! reads again never gives the executor back, and on a cooperative executor (embassy) that starves
//! every other task — the screen, the button, the relay's switch-off. [`ReadPacer`] says how long to
//! pause; the loop carries it out with its own executor's yield and timer.
//!
//! Design: every failed read gets at least a [`Pause::Yield`], so no stream of errors can keep the
//! loop from giving way. After [`YIELDS_BEFORE_SLEEP`] failures in a row it sleeps, doubling from
//! 1 ms up to [`MAX_SLEEP_MS`]: a yield alone still lets a never-ending error stream take all spare
//! CPU time. The cap is shorter than the time a 256-byte receive buffer takes to fill at 115200 baud
//! (22 ms), so the pause never costs bytes once the line is good again. The first good read resets it.

/// Failed reads in a row that only yield; the next ones sleep.
pub const YIELDS_BEFORE_SLEEP: u32 = 8;
/// Longest sleep between failed reads, in milliseconds.
pub const MAX_SLEEP_MS: u32 = 16;

/// How a receive loop pauses before reading again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Let every other ready task run once.
    Yield,
    /// Sleep this many milliseconds.
    Sleep { ms: u32 },
}

/// Counts failed reads in a row and turns them into pauses.
#[derive(Debug, Clone, Default)]
pub struct ReadPacer {
    streak: u32,
}

impl ReadPacer {
    /// A pacer with no failures yet.
    pub const fn new() -> Self {
        ReadPacer { streak: 0 }
    }

    /// A read failed or brought no bytes: how long to pause before the next one.
    pub fn on_error(&mut self) -> Pause {
        self.streak = self.streak.saturating_add(1);
        if self.streak <= YIELDS_BEFORE_SLEEP {
            return Pause::Yield;
        }
        let doublings = (self.streak - YIELDS_BEFORE_SLEEP - 1).min(31);
        Pause::Sleep {
            ms: 1u32
                .checked_shl(doublings)
                .unwrap_or(u32::MAX)
                .min(MAX_SLEEP_MS),
        }
    }

    /// A read brought bytes: the line works, start over.
    pub fn on_data(&mut self) {
        self.streak = 0;
    }

    /// Failed reads since the last good one.
    pub fn streak(&self) -> u32 {
        self.streak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failed_read_pauses_and_a_long_streak_sleeps_up_to_the_cap() {
        let mut p = ReadPacer::new();
        let pauses: [Pause; 14] = core::array::from_fn(|_| p.on_error());
        assert!(pauses[..8].iter().all(|x| *x == Pause::Yield));
        assert_eq!(
            pauses[8..],
            [1, 2, 4, 8, 16, 16].map(|ms| Pause::Sleep { ms })
        );
        for _ in 0..100_000 {
            assert_eq!(p.on_error(), Pause::Sleep { ms: MAX_SLEEP_MS });
        }
    }

    #[test]
    fn a_good_read_starts_the_streak_over() {
        let mut p = ReadPacer::new();
        for _ in 0..20 {
            let _ = p.on_error();
        }
        p.on_data();
        assert_eq!(p.streak(), 0);
        assert_eq!(p.on_error(), Pause::Yield);
    }

    #[test]
    fn the_streak_saturates_instead_of_wrapping() {
        let mut p = ReadPacer {
            streak: u32::MAX - 1,
        };
        assert_eq!(p.on_error(), Pause::Sleep { ms: MAX_SLEEP_MS });
        assert_eq!(p.on_error(), Pause::Sleep { ms: MAX_SLEEP_MS });
        assert_eq!(p.streak(), u32::MAX);
    }
}
