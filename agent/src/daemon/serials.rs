//! The memory of serialised packs (GS1 SGTIN: GTIN + serial), to spot a cloned code: the same SGTIN on
//! another pack later.
//!
//! Only packs decided genuine from live capture are remembered (the daemon's rule): a doubtful pack or
//! a replayed recording must never make a later genuine pack look copied. Bounded (the oldest forgotten
//! first) and kept in the state folder as an append-only log (`<unix time> <GTIN> <serial>` a line),
//! compacted when it grows past twice the bound, so a restart remembers. The same SGTIN seen again
//! within the re-scan window is the same pack scanned twice (a clerk scanning again), not a clone.
//! Lines of the older serial-only form are skipped: a serial without its GTIN proves nothing.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::verdict::Sgtin;

/// Remembered SGTINs with the time (seconds since the Unix epoch) each was first seen.
pub struct SerialLedger {
    first_seen: HashMap<Sgtin, u64>,
    order: VecDeque<Sgtin>,
    capacity: usize,
    window: Duration,
    log: Option<PathBuf>,
    logged: usize,
}

impl SerialLedger {
    /// An in-memory ledger.
    pub fn new(capacity: usize, window: Duration) -> SerialLedger {
        SerialLedger {
            first_seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            window,
            log: None,
            logged: 0,
        }
    }

    /// A ledger backed by `path` (created if missing; unreadable lines are skipped).
    pub fn open(path: &Path, capacity: usize, window: Duration) -> SerialLedger {
        let mut ledger = SerialLedger::new(capacity, window);
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                if let Some((t, sgtin)) = parse_line(line) {
                    ledger.remember(&sgtin, t);
                    ledger.logged += 1;
                }
            }
        }
        ledger.log = Some(path.to_path_buf());
        ledger
    }

    /// Whether `sgtin` at time `now` is a clone: already seen on a pack at least the re-scan window
    /// ago (with a zero window, any earlier sighting).
    pub fn is_clone(&self, sgtin: &Sgtin, now: u64) -> bool {
        self.first_seen
            .get(sgtin)
            .is_some_and(|&t| now.saturating_sub(t) >= self.window.as_secs())
    }

    /// Records an SGTIN seen now (the first sighting is what counts).
    pub fn record(&mut self, sgtin: &Sgtin, now: u64) {
        if self.first_seen.contains_key(sgtin) {
            return;
        }
        self.remember(sgtin, now);
        if let Some(path) = self.log.clone() {
            self.logged += 1;
            let result = if self.logged > 2 * self.capacity {
                self.compact(&path)
            } else {
                append(&path, sgtin, now)
            };
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the serial memory; cloned codes are checked in memory only");
            }
        }
    }

    fn remember(&mut self, sgtin: &Sgtin, t: u64) {
        if self.first_seen.insert(sgtin.clone(), t).is_none() {
            self.order.push_back(sgtin.clone());
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.first_seen.remove(&old);
            }
        }
    }

    fn compact(&mut self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut out = std::fs::File::create(&tmp)?;
        for s in &self.order {
            writeln!(out, "{} {} {}", self.first_seen[s], s.gtin, s.serial)?;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, path)?;
        self.logged = self.order.len();
        Ok(())
    }
}

fn append(path: &Path, sgtin: &Sgtin, t: u64) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{t} {} {}", sgtin.gtin, sgtin.serial)
}

/// `<unix time> <GTIN> <serial>`; `None` for anything else (the older `<time> <serial>` lines too).
fn parse_line(line: &str) -> Option<(u64, Sgtin)> {
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
        let mut l = SerialLedger::new(10, Duration::from_secs(60));
        let a1 = s(EARL_GREY, "A1");
        assert!(!l.is_clone(&a1, 1000));
        l.record(&a1, 1000);
        assert!(!l.is_clone(&a1, 1030), "the same pack scanned again");
        assert!(l.is_clone(&a1, 1100));
    }

    #[test]
    fn one_serial_under_another_gtin_is_another_pack() {
        let mut l = SerialLedger::new(10, Duration::ZERO);
        l.record(&s(EARL_GREY, "SN00000001"), 1000);
        assert!(l.is_clone(&s(EARL_GREY, "SN00000001"), 1001));
        assert!(!l.is_clone(&s(JASMINE, "SN00000001"), 1001));
    }

    #[test]
    fn the_oldest_are_forgotten_and_a_restart_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serials.log");
        let mut l = SerialLedger::open(&path, 2, Duration::ZERO);
        for (i, serial) in ["A", "B", "C", "D", "E"].iter().enumerate() {
            l.record(&s(EARL_GREY, serial), i as u64);
        }
        assert!(
            !l.is_clone(&s(EARL_GREY, "A"), 100),
            "forgotten: over capacity"
        );
        assert!(l.is_clone(&s(EARL_GREY, "E"), 100));
        let again = SerialLedger::open(&path, 2, Duration::ZERO);
        assert!(again.is_clone(&s(EARL_GREY, "E"), 100) && again.is_clone(&s(EARL_GREY, "D"), 100));
        assert!(!again.is_clone(&s(EARL_GREY, "A"), 100));
        assert!(!again.is_clone(&s(JASMINE, "E"), 100));
    }

    #[test]
    fn serial_only_lines_of_the_older_log_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serials.log");
        std::fs::write(&path, format!("5 SN1\nnonsense\n6 {EARL_GREY} SN2\n")).unwrap();
        let l = SerialLedger::open(&path, 10, Duration::ZERO);
        assert!(l.is_clone(&s(EARL_GREY, "SN2"), 100));
        assert!(!l.is_clone(&s(EARL_GREY, "SN1"), 100));
    }
}
