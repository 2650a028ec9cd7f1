//! Anti-rollback state, per brand (`<root>/<brand>/anti-rollback.json`): what a release message alone
//! (anyone who can publish on the release topic) may no longer move the device to, and what a broken
//! `active` pointer must never fall back to.
//!
//! ```json
//! {"highest": 29, "rollback": {"to": 27, "supersedes": 29}, "refused": [29]}
//! ```
//! - `highest`: the highest revision this device has activated or served. A revision below it needs a
//!   rollback statement signed by a trusted publisher key (`update::rollback`).
//! - `rollback`: the last signed rollback applied: back `to` a revision, withdrawing every revision up to
//!   `supersedes`. A revision in (`to`, `supersedes`] needs a signed statement too, and a statement is only
//!   taken while the device has run nothing above its `supersedes` (older statements cannot be replayed).
//! - `refused`: revisions the device refused (a self-test or a load failed after the install) or rolled
//!   back from; never a fallback for a broken `active` pointer.
//!
//! Written like the pointers: to a `.tmp`, fsynced, renamed, the folder fsynced. A store that predates
//! the file (or whose file is unreadable) starts from its pointers: `highest` is the larger of `active`
//! and `previous`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::archive::sync_dir;
use super::pointer::{tmp_path, PointerError};

/// The file's name in a brand's folder.
pub const FILE: &str = "anti-rollback.json";

/// How many refused revisions are remembered (the oldest forgotten first).
const REFUSED_KEPT: usize = 32;

/// The last signed rollback a device applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The revision it went back to.
    pub to: u64,
    /// The highest revision it withdrew.
    pub supersedes: u64,
}

/// One brand's anti-rollback state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    #[serde(default)]
    pub highest: Option<u64>,
    #[serde(default)]
    pub rollback: Option<Rollback>,
    #[serde(default)]
    pub refused: Vec<u64>,
}

impl Guard {
    /// Whether a broken `active` pointer may fall back to `revision`: never one the device refused or
    /// rolled back from, nor one a signed rollback withdrew.
    pub fn may_fall_back_to(&self, revision: u64) -> bool {
        !self.refused.contains(&revision)
            && !self
                .rollback
                .is_some_and(|r| r.to < revision && revision <= r.supersedes)
    }

    /// Remembers `revision` as refused (or rolled back from).
    pub fn refuse(&mut self, revision: u64) {
        self.refused.retain(|&r| r != revision);
        self.refused.push(revision);
        if self.refused.len() > REFUSED_KEPT {
            let extra = self.refused.len() - REFUSED_KEPT;
            self.refused.drain(..extra);
        }
    }

    /// `revision` was activated: the highest so far moves up, and it is no longer refused.
    pub fn activated(&mut self, revision: u64) {
        self.highest = Some(self.highest.map_or(revision, |h| h.max(revision)));
        self.refused.retain(|&r| r != revision);
    }
}

/// The state in `path`: `Ok(None)` when there is no such file; an unreadable file is an error (the
/// caller falls back to the pointers and says so).
pub fn read(path: &Path) -> Result<Option<Guard>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Replaces the state in `path`, atomically and durably.
pub fn write(path: &Path, guard: &Guard) -> Result<(), PointerError> {
    use std::io::Write;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| PointerError::Io {
            path: p.clone(),
            message: e.to_string(),
        }
    };
    let tmp = tmp_path(path);
    // A struct of plain fields always serialises.
    let bytes = serde_json::to_vec(guard).unwrap_or_default();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(&bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    sync_dir(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_never_lands_on_a_refused_or_withdrawn_revision() {
        let mut g = Guard::default();
        assert!(g.may_fall_back_to(5));
        g.refuse(9);
        g.rollback = Some(Rollback {
            to: 5,
            supersedes: 8,
        });
        for (rev, ok) in [
            (4, true),
            (5, true),
            (6, false),
            (8, false),
            (9, false),
            (10, true),
        ] {
            assert_eq!(g.may_fall_back_to(rev), ok, "{rev}");
        }
        g.activated(9);
        assert_eq!((g.highest, g.refused.as_slice()), (Some(9), &[][..]));
        g.activated(3);
        assert_eq!(g.highest, Some(9));
    }

    #[test]
    fn refused_revisions_are_bounded_and_the_file_round_trips() {
        let mut g = Guard::default();
        for r in 0..100 {
            g.refuse(r);
        }
        g.refuse(80);
        assert_eq!(g.refused.len(), REFUSED_KEPT);
        assert_eq!(g.refused.last(), Some(&80));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        assert_eq!(read(&p), Ok(None));
        write(&p, &g).unwrap();
        assert_eq!(read(&p), Ok(Some(g)));
        assert!(!tmp_path(&p).exists());
        std::fs::write(&p, b"{\"highest\": \"x\"}").unwrap();
        assert!(read(&p).is_err());
    }
}
