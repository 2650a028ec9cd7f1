//! The memory of GS1 DataMatrix serials, to spot a cloned code: the same serial on another pack.
//!
//! Bounded (the oldest forgotten first) and kept in the state folder as an append-only log, compacted
//! when it grows past twice the bound, so a restart remembers. The same serial seen again within the
//! re-scan window is the same pack scanned twice (a clerk scanning again), not a clone.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Remembered serials with the time (seconds since the Unix epoch) each was first seen.
pub struct SerialLedger {
    first_seen: HashMap<String, u64>,
    order: VecDeque<String>,
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
                if let Some((t, serial)) = line.split_once(' ') {
                    if let Ok(t) = t.parse() {
                        ledger.remember(serial, t);
                        ledger.logged += 1;
                    }
                }
            }
        }
        ledger.log = Some(path.to_path_buf());
        ledger
    }

    /// Whether `serial` at time `now` is a clone: already seen on a pack at least the re-scan window
    /// ago (with a zero window, any earlier sighting).
    pub fn is_clone(&self, serial: &str, now: u64) -> bool {
        self.first_seen
            .get(serial)
            .is_some_and(|&t| now.saturating_sub(t) >= self.window.as_secs())
    }

    /// Records a serial seen now (the first sighting is what counts).
    pub fn record(&mut self, serial: &str, now: u64) {
        if self.first_seen.contains_key(serial) {
            return;
        }
        self.remember(serial, now);
        if let Some(path) = self.log.clone() {
            self.logged += 1;
            let result = if self.logged > 2 * self.capacity {
                self.compact(&path)
            } else {
                append(&path, serial, now)
            };
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the serial memory; cloned codes are checked in memory only");
            }
        }
    }

    fn remember(&mut self, serial: &str, t: u64) {
        if self.first_seen.insert(serial.to_string(), t).is_none() {
            self.order.push_back(serial.to_string());
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
            writeln!(out, "{} {s}", self.first_seen[s])?;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, path)?;
        self.logged = self.order.len();
        Ok(())
    }
}

fn append(path: &Path, serial: &str, t: u64) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{t} {serial}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_seen_again_after_the_window_is_a_clone_within_it_a_rescan() {
        let mut l = SerialLedger::new(10, Duration::from_secs(60));
        assert!(!l.is_clone("A1", 1000));
        l.record("A1", 1000);
        assert!(!l.is_clone("A1", 1030), "the same pack scanned again");
        assert!(l.is_clone("A1", 1100));
    }

    #[test]
    fn the_oldest_are_forgotten_and_a_restart_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serials.log");
        let mut l = SerialLedger::open(&path, 2, Duration::ZERO);
        for (i, s) in ["A", "B", "C", "D", "E"].iter().enumerate() {
            l.record(s, i as u64);
        }
        assert!(!l.is_clone("A", 100), "forgotten: over capacity");
        assert!(l.is_clone("E", 100));
        let again = SerialLedger::open(&path, 2, Duration::ZERO);
        assert!(again.is_clone("E", 100) && again.is_clone("D", 100) && !again.is_clone("A", 100));
    }
}
