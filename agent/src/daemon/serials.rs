//! The serial memory's file (the memory itself, its rules and its line format are
//! `hallmark_core::serials`): kept in the state folder as an append-only log, compacted when it grows
//! past twice the bound, so a restart remembers. Lines of the older serial-only form are skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hallmark_core::serials::{line, parse_line, SerialMemory};
use hallmark_core::verdict::Sgtin;

/// The memory of SGTINs ([`SerialMemory`]) with its log in the state folder.
pub struct SerialLedger {
    memory: SerialMemory,
    log: Option<PathBuf>,
    logged: usize,
}

impl SerialLedger {
    /// An in-memory ledger.
    pub fn new(capacity: usize, window: Duration) -> SerialLedger {
        SerialLedger {
            memory: SerialMemory::new(capacity, window),
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
                    ledger.memory.remember(&sgtin, t);
                    ledger.logged += 1;
                }
            }
        }
        ledger.log = Some(path.to_path_buf());
        ledger
    }

    /// Whether `sgtin` at time `now` is a clone ([`SerialMemory::is_clone`]).
    pub fn is_clone(&self, sgtin: &Sgtin, now: u64) -> bool {
        self.memory.is_clone(sgtin, now)
    }

    /// Records an SGTIN seen now (the first sighting is what counts).
    pub fn record(&mut self, sgtin: &Sgtin, now: u64) {
        if self.memory.contains(sgtin) {
            return;
        }
        self.memory.remember(sgtin, now);
        if let Some(path) = self.log.clone() {
            self.logged += 1;
            let result = if self.logged > 2 * self.memory.capacity() {
                self.compact(&path)
            } else {
                append(&path, sgtin, now)
            };
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the serial memory; cloned codes are checked in memory only");
            }
        }
    }

    fn compact(&mut self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut out = std::fs::File::create(&tmp)?;
        for (t, s) in self.memory.entries() {
            writeln!(out, "{}", line(t, s))?;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, path)?;
        self.logged = self.memory.len();
        Ok(())
    }
}

fn append(path: &Path, sgtin: &Sgtin, t: u64) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{}", line(t, sgtin))
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
