//! The verdict spool: every verdict event is committed here (fsync'd, crash-safe) before anything
//! publishes it, and leaves only when the broker has acknowledged it. It is the truth about what the
//! fleet has not heard yet; after a reconnect or a restart it is replayed in verdict order.
//!
//! Storage is `redb` (an embedded, copy-on-write B-tree with checksummed commits): a table of
//! `seq → payload` whose key order is decision order, and a small table of counters. Appends are
//! `Durability::Immediate`; removals are `Durability::None` — a removal lost in a crash re-sends a
//! verdict the broker already has (a duplicate the cloud drops by `id`), never loses one.
//!
//! Bounded by payload bytes: when an append would pass the bound, the oldest verdicts are dropped in
//! the same commit, counted (the count survives restarts) and logged.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

const VERDICTS: TableDefinition<u64, &[u8]> = TableDefinition::new("verdicts");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const NEXT_SEQ: &str = "next_seq";
const DROPPED: &str = "dropped";

#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("verdict spool {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("verdict spool: {0}")]
    Storage(String),
}

/// Maps any redb error into [`SpoolError::Storage`] (redb has one error type per operation).
fn storage(e: impl std::fmt::Display) -> SpoolError {
    SpoolError::Storage(e.to_string())
}

/// Depth, size and drops at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Level {
    pub depth: u64,
    pub bytes: u64,
    /// Verdicts dropped because the spool was full, since it was created.
    pub dropped: u64,
}

/// What one append did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Appended {
    /// The sequence numbers given to the payloads, in order.
    pub seqs: Vec<u64>,
    /// Oldest verdicts dropped to make room.
    pub dropped: Vec<u64>,
}

pub struct Spool {
    db: Database,
    max_bytes: u64,
    /// Counters mirrored in memory; the lock also orders writers.
    level: Mutex<(Level, u64)>,
}

impl Spool {
    /// Opens (or creates) the spool at `path`. A second agent on the same state folder is refused.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        let open_err = |message: String| SpoolError::Open {
            path: path.to_path_buf(),
            message,
        };
        let db = Database::create(path).map_err(|e| {
            open_err(match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    "already open by another process (is another agent using this state folder?)"
                        .into()
                }
                other => other.to_string(),
            })
        })?;
        // Create the tables, and count what a previous run left.
        let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        let (level, next) = {
            let verdicts = txn
                .open_table(VERDICTS)
                .map_err(|e| open_err(e.to_string()))?;
            let counters = txn
                .open_table(COUNTERS)
                .map_err(|e| open_err(e.to_string()))?;
            let mut level = Level::default();
            let mut last = 0;
            for row in verdicts.iter().map_err(|e| open_err(e.to_string()))? {
                let (k, v) = row.map_err(|e| open_err(e.to_string()))?;
                level.depth += 1;
                level.bytes += v.value().len() as u64;
                last = k.value();
            }
            let get = |key: &str| -> Result<u64, SpoolError> {
                Ok(counters
                    .get(key)
                    .map_err(|e| open_err(e.to_string()))?
                    .map_or(0, |v| v.value()))
            };
            level.dropped = get(DROPPED)?;
            (level, get(NEXT_SEQ)?.max(last + 1))
        };
        txn.commit().map_err(|e| open_err(e.to_string()))?;
        Ok(Spool {
            db,
            max_bytes,
            level: Mutex::new((level, next)),
        })
    }

    /// Commits `payloads` durably, in order; returns once they are on disk.
    pub fn append(&self, payloads: &[&[u8]]) -> Result<Appended, SpoolError> {
        let mut guard = self.level.lock().map_err(|_| storage("lock poisoned"))?;
        let (mut level, mut next) = *guard;
        let mut out = Appended::default();
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_durability(Durability::Immediate).map_err(storage)?;
        {
            let mut verdicts = txn.open_table(VERDICTS).map_err(storage)?;
            let incoming: u64 = payloads.iter().map(|p| p.len() as u64).sum();
            // Design: make room first, oldest out; a payload larger than the bound is still kept
            // (alone) rather than refused — the newest verdict is the one the store is waiting on.
            while level.depth > 0 && level.bytes + incoming > self.max_bytes {
                let Some((k, v)) = verdicts.pop_first().map_err(storage)? else {
                    break;
                };
                level.depth -= 1;
                level.bytes -= v.value().len() as u64;
                level.dropped += 1;
                out.dropped.push(k.value());
            }
            for p in payloads {
                verdicts.insert(next, *p).map_err(storage)?;
                out.seqs.push(next);
                next += 1;
                level.depth += 1;
                level.bytes += p.len() as u64;
            }
            let mut counters = txn.open_table(COUNTERS).map_err(storage)?;
            counters.insert(NEXT_SEQ, next).map_err(storage)?;
            counters.insert(DROPPED, level.dropped).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        *guard = (level, next);
        if !out.dropped.is_empty() {
            tracing::warn!(
                dropped = out.dropped.len(),
                total_dropped = level.dropped,
                max_bytes = self.max_bytes,
                "verdict spool full: dropped the oldest undelivered verdicts"
            );
        }
        Ok(out)
    }

    /// Up to `limit` verdicts after `after` (all from the oldest when `None`), in order.
    pub fn after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, SpoolError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let verdicts = txn.open_table(VERDICTS).map_err(storage)?;
        let from = after.map_or(0, |s| s.saturating_add(1));
        let mut out = Vec::new();
        for row in verdicts.range(from..).map_err(storage)?.take(limit) {
            let (k, v) = row.map_err(storage)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Removes acknowledged verdicts (unknown ones are ignored: dropped meanwhile, or a duplicate ack).
    pub fn remove(&self, seqs: &[u64]) -> Result<(), SpoolError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut guard = self.level.lock().map_err(|_| storage("lock poisoned"))?;
        let mut level = guard.0;
        let mut txn = self.db.begin_write().map_err(storage)?;
        // Design: a lost removal only re-sends an acknowledged verdict, so it need not wait for fsync.
        txn.set_durability(Durability::None).map_err(storage)?;
        {
            let mut verdicts = txn.open_table(VERDICTS).map_err(storage)?;
            for s in seqs {
                if let Some(v) = verdicts.remove(*s).map_err(storage)? {
                    level.depth -= 1;
                    level.bytes -= v.value().len() as u64;
                }
            }
        }
        txn.commit().map_err(storage)?;
        guard.0 = level;
        Ok(())
    }

    pub fn level(&self) -> Level {
        self.level.lock().map(|g| g.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![b'a' + (i % 26) as u8; len]).collect()
    }

    fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
        v.iter().map(|p| p.as_slice()).collect()
    }

    #[test]
    fn appends_in_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        let p = payloads(5, 10);
        {
            let spool = Spool::open(&path, 1 << 20).unwrap();
            let a = spool.append(&refs(&p[..3])).unwrap();
            assert_eq!(a.seqs, vec![1, 2, 3]);
            let b = spool.append(&refs(&p[3..])).unwrap();
            assert_eq!(b.seqs, vec![4, 5]);
            spool.remove(&[1, 3, 99]).unwrap();
            assert_eq!(
                spool.level(),
                Level {
                    depth: 3,
                    bytes: 30,
                    dropped: 0
                }
            );
        }
        let spool = Spool::open(&path, 1 << 20).unwrap();
        let rows = spool.after(None, 10).unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 4, 5]);
        assert_eq!(rows[0].1, p[1]);
        assert_eq!(spool.after(Some(2), 1).unwrap()[0].0, 4);
        // Sequence numbers never go back, even when the newest were acknowledged.
        spool.remove(&[2, 4, 5]).unwrap();
        drop(spool);
        let spool = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(spool.append(&refs(&p[..1])).unwrap().seqs, vec![6]);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        {
            let spool = Spool::open(&path, 100).unwrap();
            let p = payloads(12, 10);
            for chunk in p.chunks(3) {
                spool.append(&refs(chunk)).unwrap();
            }
            let level = spool.level();
            assert_eq!((level.depth, level.bytes, level.dropped), (10, 100, 2));
            assert_eq!(
                spool.after(None, 1).unwrap()[0].0,
                3,
                "the oldest went first"
            );
        }
        let spool = Spool::open(&path, 100).unwrap();
        assert_eq!(spool.level().dropped, 2);
        let a = spool.append(&refs(&payloads(1, 30))).unwrap();
        assert_eq!(a.dropped, vec![3, 4, 5]);
        assert_eq!(
            spool.level(),
            Level {
                depth: 8,
                bytes: 100,
                dropped: 5
            }
        );
    }

    #[test]
    fn a_second_opener_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        let _first = Spool::open(&path, 1000).unwrap();
        let err = Spool::open(&path, 1000).err().unwrap().to_string();
        assert!(err.contains("another"), "{err}");
    }
}
