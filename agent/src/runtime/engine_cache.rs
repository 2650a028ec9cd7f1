//! The TensorRT engine cache: one folder per engine under `state_dir/engines/`, named by everything
//! that makes an engine valid, so a stale engine (another model, ONNX Runtime, TensorRT, GPU or build
//! option) is never picked up: it simply lives under another name, and `prune` removes it.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Everything an engine depends on. The strings are compared as given (no normalisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineKey<'a> {
    /// SHA-256 of the ONNX model's bytes, hex.
    pub model_sha256: &'a str,
    /// The loaded ONNX Runtime library's version/build string.
    pub onnxruntime: &'a str,
    /// TensorRT's version; `None` where it is not known (no TensorRT on this machine).
    pub tensorrt: Option<&'a str>,
    /// The GPU's name and compute capability, e.g. `"NVIDIA H200 sm_90"`; `None` on the CPU.
    pub gpu: Option<&'a str>,
    pub fp16: bool,
    /// The INT8 calibration table's SHA-256 when INT8 is on.
    pub int8_calibration_sha256: Option<&'a str>,
    pub dla_core: Option<u32>,
    /// The model's static input shape (width, height).
    pub input: (u32, u32),
}

impl EngineKey<'_> {
    /// The folder name: `<first 12 hex of the model hash>-<first 24 hex of the hash of every field>`.
    /// Each field is written length-prefixed, so no two different keys serialise alike.
    pub fn dir_name(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        };
        let opt = |v: Option<&str>| v.map_or_else(|| "-".to_string(), |s| format!("+{s}"));
        field("model", self.model_sha256);
        field("onnxruntime", self.onnxruntime);
        field("tensorrt", &opt(self.tensorrt));
        field("gpu", &opt(self.gpu));
        field("fp16", if self.fp16 { "1" } else { "0" });
        field("int8", &opt(self.int8_calibration_sha256));
        field("dla", &opt(self.dla_core.map(|c| c.to_string()).as_deref()));
        field("input", &format!("{}x{}", self.input.0, self.input.1));
        let all = hex::encode(h.finalize());
        let model: String = self
            .model_sha256
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        format!("{model}-{}", &all[..24])
    }
}

/// Removes every engine folder under `dir` whose name is not in `keep` (files and a missing `dir` are
/// left alone). Returns the names removed.
pub fn prune(dir: &Path, keep: &[String]) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !keep.contains(&name) {
            std::fs::remove_dir_all(entry.path())?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> EngineKey<'static> {
        EngineKey {
            model_sha256: "ab12cd34ef56ab12cd34ef56",
            onnxruntime: "1.31.1",
            tensorrt: Some("10.9.0"),
            gpu: Some("NVIDIA Orin sm_87"),
            fp16: false,
            int8_calibration_sha256: None,
            dla_core: None,
            input: (320, 320),
        }
    }

    #[test]
    fn identical_inputs_give_the_same_key_and_any_change_another() {
        assert_eq!(base().dir_name(), base().dir_name());
        let variants: Vec<EngineKey> = vec![
            EngineKey {
                model_sha256: "ab12cd34ef56ab12cd34ef57",
                ..base()
            },
            EngineKey {
                onnxruntime: "1.31.2",
                ..base()
            },
            EngineKey {
                tensorrt: Some("10.9.1"),
                ..base()
            },
            EngineKey {
                tensorrt: None,
                ..base()
            },
            EngineKey {
                gpu: Some("NVIDIA Orin sm_86"),
                ..base()
            },
            EngineKey {
                gpu: None,
                ..base()
            },
            EngineKey {
                fp16: true,
                ..base()
            },
            EngineKey {
                int8_calibration_sha256: Some("00"),
                ..base()
            },
            EngineKey {
                int8_calibration_sha256: Some("01"),
                ..base()
            },
            EngineKey {
                dla_core: Some(0),
                ..base()
            },
            EngineKey {
                dla_core: Some(1),
                ..base()
            },
            EngineKey {
                input: (640, 320),
                ..base()
            },
            EngineKey {
                input: (320, 640),
                ..base()
            },
            // Moving text between fields must not collide.
            EngineKey {
                tensorrt: Some(""),
                ..base()
            },
        ];
        let mut names = vec![base().dir_name()];
        for v in &variants {
            names.push(v.dir_name());
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names[0].starts_with("ab12cd34ef56-"), "{}", names[0]);
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')));
    }

    #[test]
    fn prune_removes_every_other_engine_folder() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["keep-a", "old-b", "old-c"] {
            std::fs::create_dir_all(dir.path().join(d).join("sub")).unwrap();
            std::fs::write(dir.path().join(d).join("sub/e.engine"), b"x").unwrap();
        }
        std::fs::write(dir.path().join("note.txt"), b"x").unwrap();
        let removed = prune(dir.path(), &["keep-a".to_string()]).unwrap();
        assert_eq!(removed, vec!["old-b".to_string(), "old-c".to_string()]);
        assert!(dir.path().join("keep-a/sub/e.engine").exists());
        assert!(dir.path().join("note.txt").exists());
        assert!(prune(&dir.path().join("none"), &[]).unwrap().is_empty());
    }
}
