//! `state_dir/serving.json`: which execution provider each brand's model really runs on, written by
//! `hallmark run` whenever that changes, so that `hallmark models list` — another process — can say it
//! (a GPU provider that fell back to the CPU is visible without the metrics endpoint). The record names
//! the writing process, so a reader can tell a running agent from the last run of a stopped one.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Serving {
    pub pid: u32,
    /// Seconds since the Unix epoch of the last change.
    pub updated_unix: u64,
    /// The providers asked for (`runtime.providers`), in order.
    pub requested: Vec<String>,
    /// Brand → the provider its model runs on.
    pub providers: BTreeMap<String, String>,
}

impl Serving {
    /// Writes the record to `path` atomically (a temporary file renamed over it).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default())?;
        std::fs::rename(&tmp, path)
    }

    /// The record at `path`; `None` when there is none or it cannot be read.
    pub fn read(path: &Path) -> Option<Serving> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// One line for a person, e.g. `serving (hallmark run, pid 42, running): northwind on cpu (asked: cuda)`.
    /// `running` says whether the writing process is still alive.
    pub fn describe(&self, running: bool) -> String {
        let brands: Vec<String> = self
            .providers
            .iter()
            .map(|(b, p)| format!("{b} on {p}"))
            .collect();
        format!(
            "serving (hallmark run, pid {}, {}): {} (asked: {})",
            self.pid,
            if running {
                "running"
            } else {
                "stopped; its last run"
            },
            if brands.is_empty() {
                "nothing yet".to_string()
            } else {
                brands.join(", ")
            },
            self.requested.join(",")
        )
    }
}

/// Whether process `pid` is alive (Linux: `/proc/<pid>` exists).
pub fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_reads_as_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serving.json");
        assert_eq!(Serving::read(&path), None);
        let s = Serving {
            pid: 42,
            updated_unix: 1,
            requested: vec!["tensorrt".into(), "cuda".into()],
            providers: BTreeMap::from([
                ("aurora".into(), "cuda".into()),
                ("northwind".into(), "cpu".into()),
            ]),
        };
        s.write(&path).unwrap();
        assert_eq!(Serving::read(&path), Some(s.clone()));
        assert!(!dir.path().join("serving.json.tmp").exists());
        assert_eq!(
            s.describe(false),
            "serving (hallmark run, pid 42, stopped; its last run): aurora on cuda, northwind on cpu (asked: tensorrt,cuda)"
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Serving::read(&path), None);
        assert!(alive(std::process::id()));
    }
}
