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
//!
//! Faults:
//! - **A write that fails** (a full disk, an I/O error) leaves redb refusing every later operation, so
//!   the spool closes its database and opens it again on the next use (at most every
//!   [`REOPEN_EVERY`]): it recovers by itself once space returns. Until then [`Spool::failing`] says
//!   why (the health check fails on it) and the caller keeps what it could not append.
//! - **A damaged file** (truncated, cut, bit-flipped: redb refuses it, or panics reading it) found at
//!   start is renamed `spool.redb.damaged-<unix time>` and kept for inspection; the agent starts with
//!   a fresh spool and says what it set aside ([`Opened::set_aside`]). Verdicts in it are lost (their
//!   number cannot be read from a damaged file). A file that cannot be opened for another reason (no
//!   space to repair it, a permission) is left alone: the spool starts failing and retries.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition,
};
use thiserror::Error;

const VERDICTS: TableDefinition<u64, &[u8]> = TableDefinition::new("verdicts");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const NEXT_SEQ: &str = "next_seq";
const DROPPED: &str = "dropped";

/// How often a failing spool tries to open its database again.
pub const REOPEN_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("verdict spool {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("verdict spool: {0}")]
    Storage(String),
    #[error("verdict spool cannot write: {0}")]
    Failing(String),
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

/// A damaged spool file moved aside at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub path: PathBuf,
    pub reason: String,
}

/// An opened spool, and the damaged file it replaced, if any.
pub struct Opened {
    pub spool: Spool,
    pub set_aside: Option<SetAside>,
}

pub struct Spool {
    path: PathBuf,
    max_bytes: u64,
    /// The database and its counters; the lock also orders writers.
    inner: Mutex<Inner>,
}

struct Inner {
    /// `None` after a failed write, until it is open again.
    db: Option<Database>,
    level: Level,
    next: u64,
    /// Why the last write failed, while it has not succeeded since.
    failing: Option<String>,
    last_open: Option<Instant>,
}

/// How an open attempt went.
enum Attempt {
    Open(Database, Level, u64),
    /// The file is damaged: set it aside.
    Damaged(String),
    /// It cannot be opened now (another agent holds it, no space, a permission).
    Unavailable(DatabaseError),
}

impl Spool {
    /// Opens (or creates) the spool at `path`. A second agent on the same state folder is refused; a
    /// damaged file is set aside for a fresh one; a file that cannot be opened now leaves the spool
    /// failing, retrying on each use.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Opened, SpoolError> {
        let open_err = |message: String| SpoolError::Open {
            path: path.to_path_buf(),
            message,
        };
        let mut set_aside = None;
        let (db, level, next, failing) =
            match attempt(path) {
                Attempt::Open(db, level, next) => (Some(db), level, next, None),
                Attempt::Unavailable(DatabaseError::DatabaseAlreadyOpen) => return Err(open_err(
                    "already open by another process (is another agent using this state folder?)"
                        .into(),
                )),
                Attempt::Unavailable(e) => (None, Level::default(), 1, Some(e.to_string())),
                Attempt::Damaged(reason) => {
                    let unix = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let aside = path.with_extension(format!("redb.damaged-{unix}"));
                    std::fs::rename(path, &aside).map_err(|e| {
                        open_err(format!(
                            "damaged ({reason}), and it cannot be moved aside: {e}"
                        ))
                    })?;
                    set_aside = Some(SetAside {
                        path: aside,
                        reason,
                    });
                    match attempt(path) {
                        Attempt::Open(db, level, next) => (Some(db), level, next, None),
                        Attempt::Damaged(e) => return Err(open_err(e)),
                        Attempt::Unavailable(e) => (None, Level::default(), 1, Some(e.to_string())),
                    }
                }
            };
        let spool = Spool {
            path: path.to_path_buf(),
            max_bytes,
            inner: Mutex::new(Inner {
                db,
                level,
                next,
                failing,
                last_open: Some(Instant::now()),
            }),
        };
        Ok(Opened { spool, set_aside })
    }

    /// Commits `payloads` durably, in order; returns once they are on disk. While the spool cannot
    /// write, returns [`SpoolError::Failing`] and nothing is committed.
    pub fn append(&self, payloads: &[&[u8]]) -> Result<Appended, SpoolError> {
        let mut guard = self.inner.lock().map_err(|_| storage("lock poisoned"))?;
        let inner = &mut *guard;
        self.ensure_open(inner)?;
        let (mut level, mut next) = (inner.level, inner.next);
        let mut out = Appended::default();
        let db = inner.db.as_ref().ok_or_else(closed)?;
        let result = (|| -> Result<(), SpoolError> {
            let mut txn = db.begin_write().map_err(storage)?;
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
            txn.commit().map_err(storage)
        })();
        if let Err(e) = result {
            return Err(self.failed(inner, e));
        }
        inner.level = level;
        inner.next = next;
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
        let mut guard = self.inner.lock().map_err(|_| storage("lock poisoned"))?;
        let inner = &mut *guard;
        self.ensure_open(inner)?;
        let db = inner.db.as_ref().ok_or_else(closed)?;
        let result = (|| {
            let txn = db.begin_read().map_err(storage)?;
            let verdicts = txn.open_table(VERDICTS).map_err(storage)?;
            let from = after.map_or(0, |s| s.saturating_add(1));
            let mut out = Vec::new();
            for row in verdicts.range(from..).map_err(storage)?.take(limit) {
                let (k, v) = row.map_err(storage)?;
                out.push((k.value(), v.value().to_vec()));
            }
            Ok(out)
        })();
        result.map_err(|e| self.failed(inner, e))
    }

    /// Removes acknowledged verdicts (unknown ones are ignored: dropped meanwhile, or a duplicate ack).
    pub fn remove(&self, seqs: &[u64]) -> Result<(), SpoolError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut guard = self.inner.lock().map_err(|_| storage("lock poisoned"))?;
        let inner = &mut *guard;
        self.ensure_open(inner)?;
        let mut level = inner.level;
        let db = inner.db.as_ref().ok_or_else(closed)?;
        let result = (|| {
            let mut txn = db.begin_write().map_err(storage)?;
            // Design: a lost removal only re-sends an acknowledged verdict, so it need not wait for
            // fsync.
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
            txn.commit().map_err(storage)
        })();
        match result {
            Ok(()) => {
                inner.level = level;
                Ok(())
            }
            Err(e) => Err(self.failed(inner, e)),
        }
    }

    pub fn level(&self) -> Level {
        self.inner.lock().map(|g| g.level).unwrap_or_default()
    }

    /// Why the spool cannot write now (`None` while it can).
    pub fn failing(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|g| g.failing.clone())
    }

    /// Opens the database again after a failure (not more often than [`REOPEN_EVERY`]).
    fn ensure_open(&self, inner: &mut Inner) -> Result<(), SpoolError> {
        if inner.db.is_none() {
            let due = inner.last_open.is_none_or(|t| t.elapsed() >= REOPEN_EVERY);
            if !due {
                return Err(SpoolError::Failing(
                    inner.failing.clone().unwrap_or_else(|| "closed".into()),
                ));
            }
            inner.last_open = Some(Instant::now());
            match attempt(&self.path) {
                Attempt::Open(db, level, next) => {
                    tracing::info!(path = %self.path.display(), depth = level.depth, "verdict spool writable again");
                    inner.db = Some(db);
                    inner.level = Level {
                        dropped: inner.level.dropped.max(level.dropped),
                        ..level
                    };
                    inner.next = inner.next.max(next);
                    inner.failing = None;
                }
                Attempt::Damaged(reason) => {
                    inner.failing = Some(format!("damaged while running: {reason}"));
                    return Err(SpoolError::Failing(reason));
                }
                Attempt::Unavailable(e) => {
                    let why = e.to_string();
                    inner.failing = Some(why.clone());
                    return Err(SpoolError::Failing(why));
                }
            }
        }
        Ok(())
    }

    /// A read or write failed: redb refuses everything after an I/O error, so the database is closed
    /// and opened again on the next use.
    fn failed(&self, inner: &mut Inner, e: SpoolError) -> SpoolError {
        let why = e.to_string();
        if inner.failing.is_none() {
            tracing::error!(path = %self.path.display(), error = %why, "verdict spool cannot write; verdicts are held in memory until it can");
        }
        inner.failing = Some(why);
        inner.db = None;
        e
    }
}

fn closed() -> SpoolError {
    SpoolError::Failing("closed".into())
}

/// Opens the database and reads its counters, catching a panic (redb may panic on a damaged page).
fn attempt(path: &Path) -> Attempt {
    match std::panic::catch_unwind(AssertUnwindSafe(|| open_db(path))) {
        Ok(Ok((db, level, next))) => Attempt::Open(db, level, next),
        Ok(Err(e)) => classify(e),
        Err(panic) => Attempt::Damaged(format!(
            "reading it panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message")
        )),
    }
}

/// Damage is what redb calls corruption, a repair that could not finish, or a file it cannot parse;
/// an I/O error (no space, a permission) or another opener is not.
fn classify(e: DatabaseError) -> Attempt {
    match e {
        DatabaseError::DatabaseAlreadyOpen => Attempt::Unavailable(e),
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData
                && io.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            Attempt::Unavailable(DatabaseError::Storage(StorageError::Io(io)))
        }
        other => Attempt::Damaged(other.to_string()),
    }
}

fn open_db(path: &Path) -> Result<(Database, Level, u64), DatabaseError> {
    let mut db = Database::create(path)?;
    if !db.check_integrity()? {
        return Err(DatabaseError::Storage(StorageError::Corrupted(
            "the integrity check failed (repaired pages lost data)".into(),
        )));
    }
    // Create the tables, and count what a previous run left.
    let txn = db.begin_write().map_err(tx)?;
    let (level, next) = {
        let verdicts = txn.open_table(VERDICTS).map_err(table)?;
        let counters = txn.open_table(COUNTERS).map_err(table)?;
        let mut level = Level::default();
        let mut last = 0;
        for row in verdicts.iter()? {
            let (k, v) = row?;
            level.depth += 1;
            level.bytes += v.value().len() as u64;
            last = k.value();
        }
        level.dropped = counters.get(DROPPED)?.map_or(0, |v| v.value());
        let next = counters
            .get(NEXT_SEQ)?
            .map_or(0, |v| v.value())
            .max(last + 1);
        (level, next)
    };
    txn.commit().map_err(commit)?;
    Ok((db, level, next))
}

fn tx(e: redb::TransactionError) -> DatabaseError {
    match e {
        redb::TransactionError::Storage(s) => DatabaseError::Storage(s),
        other => DatabaseError::Storage(StorageError::Corrupted(other.to_string())),
    }
}

fn table(e: redb::TableError) -> DatabaseError {
    match e {
        redb::TableError::Storage(s) => DatabaseError::Storage(s),
        other => DatabaseError::Storage(StorageError::Corrupted(other.to_string())),
    }
}

fn commit(e: redb::CommitError) -> DatabaseError {
    match e {
        redb::CommitError::Storage(s) => DatabaseError::Storage(s),
        other => DatabaseError::Storage(StorageError::Corrupted(other.to_string())),
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
            let spool = Spool::open(&path, 1 << 20).unwrap().spool;
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
        let spool = Spool::open(&path, 1 << 20).unwrap().spool;
        let rows = spool.after(None, 10).unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 4, 5]);
        assert_eq!(rows[0].1, p[1]);
        assert_eq!(spool.after(Some(2), 1).unwrap()[0].0, 4);
        // Sequence numbers never go back, even when the newest were acknowledged.
        spool.remove(&[2, 4, 5]).unwrap();
        drop(spool);
        let spool = Spool::open(&path, 1 << 20).unwrap().spool;
        assert_eq!(spool.append(&refs(&p[..1])).unwrap().seqs, vec![6]);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        {
            let spool = Spool::open(&path, 100).unwrap().spool;
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
        let spool = Spool::open(&path, 100).unwrap().spool;
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
        let _first = Spool::open(&path, 1000).unwrap().spool;
        let err = Spool::open(&path, 1000).err().unwrap().to_string();
        assert!(err.contains("another"), "{err}");
    }

    /// Leaves a spool with `n` verdicts at `path`.
    fn spool_with(path: &Path, n: usize) {
        let spool = Spool::open(path, 1 << 20).unwrap().spool;
        for chunk in payloads(n, 200).chunks(10) {
            spool.append(&refs(chunk)).unwrap();
        }
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_a_fresh_spool_takes_its_place() {
        type Damage = fn(&Path);
        let damages: [(&str, Damage); 3] = [
            ("truncated", |p| {
                let n = std::fs::metadata(p).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(n / 2)
                    .unwrap();
            }),
            ("cut", |p| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(7)
                    .unwrap();
            }),
            ("bit-flipped", |p| {
                let mut b = std::fs::read(p).unwrap();
                for i in (0..b.len()).step_by(97) {
                    b[i] ^= 0x55;
                }
                std::fs::write(p, b).unwrap();
            }),
        ];
        for (what, damage) in damages {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("spool.redb");
            spool_with(&path, 300);
            damage(&path);
            let opened = Spool::open(&path, 1 << 20)
                .unwrap_or_else(|e| panic!("{what}: the agent must start: {e}"));
            let aside = opened
                .set_aside
                .unwrap_or_else(|| panic!("{what}: set aside"));
            assert!(aside.path.exists(), "{what}: kept for inspection");
            assert!(
                aside
                    .path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("spool.redb.damaged-"),
                "{what}"
            );
            let spool = opened.spool;
            assert_eq!(spool.level().depth, 0, "{what}: a fresh spool");
            assert_eq!(spool.append(&[b"x"]).unwrap().seqs, vec![1], "{what}");
        }
    }

    #[test]
    fn a_healthy_spool_is_never_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        spool_with(&path, 50);
        let opened = Spool::open(&path, 1 << 20).unwrap();
        assert!(opened.set_aside.is_none());
        assert_eq!(opened.spool.level().depth, 50);
    }
}
