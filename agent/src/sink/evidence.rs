//! Evidence pictures: for every counterfeit or inconclusive verdict an annotated JPEG (the item's box
//! and verdict drawn on the frame it was last seen in) in `<state_dir>/evidence/`, named in the verdict
//! event, so a supervisor can see what the agent saw. Images never travel in events.
//!
//! Retention: at most `max_files` pictures and `max_mib` MiB; the oldest go first. File names start
//! with the UTC time, so name order is age order, also across restarts.
//!
//! Pictures never take the verdict spool's room: no picture is written while less than
//! `evidence.min_free_mib` is free on the file system ([`Room`]); the verdict then names no picture,
//! and the skip is counted (`hallmark_evidence_skipped_total{reason="low_disk"}`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Queue;
use crate::bundle::Manifest;
use crate::sink::annotate::annotate;
use hallmark_core::modes::decided::Decided;
use hallmark_core::verdict::{Evidence, FrameVerdict, ItemVerdict, Verdict};

/// Whether the evidence folder's file system has room for another picture beyond the reserve.
#[derive(Debug, Clone)]
pub struct Room {
    dir: PathBuf,
    min_free: u64,
}

/// Room a picture needs besides the reserve (a 960×720 JPEG at quality 85 is 100–300 KB).
const PICTURE: u64 = 1 << 20;

impl Room {
    pub fn new(dir: &Path, min_free: u64) -> Room {
        Room {
            dir: dir.to_path_buf(),
            min_free,
        }
    }

    /// True while more than the reserve and one picture is free (and when free space cannot be read:
    /// the write itself then says what is wrong).
    pub fn ok(&self) -> bool {
        match rustix::fs::statvfs(&self.dir) {
            Ok(s) => s.f_bavail.saturating_mul(s.f_frsize) >= self.min_free.saturating_add(PICTURE),
            Err(_) => true,
        }
    }
}

/// One picture to write.
pub struct Job {
    pub name: String,
    pub decided: Decided,
    pub manifest: Arc<Manifest>,
}

/// The evidence folder and its retention bound.
pub struct Store {
    pub(crate) dir: PathBuf,
    max_files: usize,
    max_bytes: u64,
    /// Oldest first: name and size.
    files: VecDeque<(String, u64)>,
    bytes: u64,
}

impl Store {
    /// Opens (creating) the folder and takes stock of what is there.
    pub fn open(dir: &Path, max_files: usize, max_mib: u64) -> std::io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)?
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len())))
            .collect();
        files.sort();
        let bytes = files.iter().map(|f| f.1).sum();
        let mut store = Store {
            dir: dir.to_path_buf(),
            max_files,
            max_bytes: max_mib << 20,
            files: files.into(),
            bytes,
        };
        store.prune();
        Ok(store)
    }

    /// Writes one picture, then prunes to the bound.
    pub fn write(&mut self, name: &str, jpeg: &[u8]) -> std::io::Result<()> {
        std::fs::write(self.dir.join(name), jpeg)?;
        self.files.push_back((name.to_string(), jpeg.len() as u64));
        self.bytes += jpeg.len() as u64;
        self.prune();
        Ok(())
    }

    /// Pictures kept now.
    pub fn count(&self) -> usize {
        self.files.len()
    }

    fn prune(&mut self) {
        let n = excess(
            self.files.iter().map(|f| f.1),
            self.max_files,
            self.max_bytes,
        );
        for _ in 0..n {
            if let Some((name, size)) = self.files.pop_front() {
                self.bytes -= size;
                if let Err(e) = std::fs::remove_file(self.dir.join(&name)) {
                    tracing::warn!(file = %name, error = %e, "cannot remove an old evidence picture");
                }
            }
        }
    }
}

/// How many of the oldest files (sizes oldest first) must go to fit `max_files` and `max_bytes`.
pub fn excess(sizes: impl Iterator<Item = u64> + Clone, max_files: usize, max_bytes: u64) -> usize {
    let count = sizes.clone().count();
    let mut total: u64 = sizes.clone().sum();
    let mut drop = count.saturating_sub(max_files);
    for s in sizes.clone().take(drop) {
        total -= s;
    }
    let mut rest = sizes.skip(drop);
    while total > max_bytes {
        match rest.next() {
            Some(s) => {
                total -= s;
                drop += 1;
            }
            None => break,
        }
    }
    drop
}

/// Starts the evidence writer; `observer` counts the pictures it could not write.
pub fn spawn(
    mut store: Store,
    room: Room,
    capacity: usize,
    observer: std::sync::Arc<crate::observe::Observer>,
) -> std::io::Result<Queue<Job>> {
    Queue::spawn("evidence", capacity, move |job: Job| {
        let Some(last) = &job.decided.last else {
            return;
        };
        if !room.ok() {
            observer.evidence_skipped("low_disk");
            return;
        }
        let mut rgb = Vec::new();
        let view = last.frame.view();
        view.to_packed_rgb(&mut rgb);
        let Some(img) = image::RgbImage::from_raw(view.width, view.height, rgb) else {
            return;
        };
        let d = &job.decided;
        let item = ItemVerdict {
            index: 0,
            bbox: last.bbox,
            members: (0..last.detections.len()).collect(),
            evidence: Evidence {
                genuine: None,
                counterfeit: None,
                anchor_class: 0,
            },
            decision: d.decision.clone(),
            codes: d.codes.clone(),
        };
        let verdict = Verdict {
            verdict: d.decision.verdict,
            confidence: d.decision.confidence,
            reason: d.decision.reason.clone(),
        };
        let judged = FrameVerdict {
            items: vec![item],
            primary: Some(0),
            verdict,
        };
        let annotated = annotate(img, &judged);
        let mut jpeg = Vec::new();
        let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&annotated);
        if let Err(e) = encoded
            .map_err(std::io::Error::other)
            .and_then(|_| store.write(&job.name, &jpeg))
        {
            observer.evidence_skipped("error");
            // A picture cut short by a full disk is no evidence.
            let _ = std::fs::remove_file(store.dir.join(&job.name));
            tracing::warn!(file = %job.name, error = %e, "cannot write an evidence picture");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first_to_fit_both_bounds() {
        assert_eq!(excess([10, 10, 10].into_iter(), 5, 100), 0);
        assert_eq!(excess([10, 10, 10].into_iter(), 2, 100), 1);
        assert_eq!(excess([50, 10, 10].into_iter(), 5, 25), 1);
        assert_eq!(
            excess([10, 10, 50].into_iter(), 5, 25),
            3,
            "a single file over the bound leaves nothing"
        );
    }

    #[test]
    fn a_store_prunes_on_write_and_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 2, 1).unwrap();
        for name in ["a.jpg", "b.jpg", "c.jpg"] {
            s.write(name, b"jpeg").unwrap();
        }
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["b.jpg", "c.jpg"]);
        let s = Store::open(dir.path(), 1, 1).unwrap();
        assert_eq!(s.count(), 1);
        assert!(dir.path().join("c.jpg").exists());
    }
}
