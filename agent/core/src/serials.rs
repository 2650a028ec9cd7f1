//! The memory of serialised packs (GS1 SGTIN: GTIN + serial), to spot a cloned code: the same SGTIN on
//! another pack later.
//!
//! Only packs decided genuine from live capture are remembered (the daemon's rule): a doubtful pack or
//! a replayed recording must never make a later genuine pack look copied. Bounded (the oldest forgotten
//! first). The same SGTIN seen again within the re-scan window is the same pack scanned twice (a clerk
//! scanning again), not a clone. This is the memory itself; the agent keeps it in the state folder as
//! an append-only log of [`line`]s (`<unix time> <GTIN> <serial>`), so a restart remembers.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::verdict::Sgtin;

/// Remembered SGTINs with the time (seconds since the Unix epoch) each was first seen.
pub struct SerialMemory {
    first_seen: HashMap<Sgtin, u64>,
    order: VecDeque<Sgtin>,
    capacity: usize,
    window: Duration,
}

impl SerialMemory {
    pub fn new(capacity: usize, window: Duration) -> SerialMemory {
        SerialMemory {
            first_seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            window,
        }
    }

    /// How many it holds at the most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether `sgtin` at time `now` is a clone: already seen on a pack at least the re-scan window
    /// ago (with a zero window, any earlier sighting).
    pub fn is_clone(&self, sgtin: &Sgtin, now: u64) -> bool {
        self.first_seen
            .get(sgtin)
            .is_some_and(|&t| now.saturating_sub(t) >= self.window.as_secs())
    }

    /// Whether `sgtin` is remembered at all.
    pub fn contains(&self, sgtin: &Sgtin) -> bool {
        self.first_seen.contains_key(sgtin)
    }

    /// Remembers `sgtin` as first seen at `t` (a later sighting of one remembered changes nothing),
    /// forgetting the oldest beyond the capacity.
    pub fn remember(&mut self, sgtin: &Sgtin, t: u64) {
        if self.first_seen.insert(sgtin.clone(), t).is_none() {
            self.order.push_back(sgtin.clone());
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.first_seen.remove(&old);
            }
        }
    }

    /// Every SGTIN remembered, oldest first, with its time.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &Sgtin)> {
        self.order.iter().map(|s| (self.first_seen[s], s))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// One line of the log: `<unix time> <GTIN> <serial>`.
pub fn line(t: u64, sgtin: &Sgtin) -> String {
    format!("{t} {} {}", sgtin.gtin, sgtin.serial)
}

/// A line of the log; `None` for anything else (the older serial-only `<time> <serial>` lines too: a
/// serial without its GTIN proves nothing).
pub fn parse_line(line: &str) -> Option<(u64, Sgtin)> {
    let mut parts = line.splitn(3, ' ');
    let t = parts.next()?.parse().ok()?;
    let gtin = parts.next()?;
    let serial = parts.next()?;
    if gtin.len() != 14 || !gtin.bytes().all(|b| b.is_ascii_digit()) || serial.is_empty() {
        return None;
    }
    Some((
        t,
        Sgtin {
            gtin: gtin.to_string(),
            serial: serial.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(gtin: &str, serial: &str) -> Sgtin {
        Sgtin {
            gtin: gtin.into(),
            serial: serial.into(),
        }
    }

    const EARL_GREY: &str = "09501101010215";
    const JASMINE: &str = "09501101010383";

    #[test]
    fn a_serial_seen_again_after_the_window_is_a_clone_within_it_a_rescan() {
        let mut l = SerialMemory::new(10, Duration::from_secs(60));
        let a1 = s(EARL_GREY, "A1");
        assert!(!l.is_clone(&a1, 1000));
        l.remember(&a1, 1000);
        assert!(!l.is_clone(&a1, 1030), "the same pack scanned again");
        assert!(l.is_clone(&a1, 1100));
    }

    #[test]
    fn one_serial_under_another_gtin_is_another_pack() {
        let mut l = SerialMemory::new(10, Duration::ZERO);
        l.remember(&s(EARL_GREY, "SN00000001"), 1000);
        assert!(l.is_clone(&s(EARL_GREY, "SN00000001"), 1001));
        assert!(!l.is_clone(&s(JASMINE, "SN00000001"), 1001));
    }

    #[test]
    fn a_line_reads_back_and_serial_only_lines_are_skipped() {
        let sn = s(EARL_GREY, "SN2");
        assert_eq!(parse_line(&line(6, &sn)), Some((6, sn)));
        assert_eq!(parse_line("5 SN1"), None);
        assert_eq!(parse_line("nonsense"), None);
    }
}
