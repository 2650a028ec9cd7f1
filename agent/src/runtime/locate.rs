//! Finding the ONNX Runtime shared library, which is loaded at run time (`ort`'s `load-dynamic`).
//!
//! Order: an explicit path (`--ort-lib` or the config's `runtime.ort_lib`), then `ORT_DYLIB_PATH`, then
//! the project's own install — the PyPI wheel `onnxruntime` in `.venv`, as `scripts/setup.sh` makes it —
//! searched from the current directory and from the executable's folder upwards. An explicit path that
//! does not exist is an error of its own; when nothing is found, one message says what to install and
//! every place that was looked at.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where the library path came from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Explicit,
    Environment,
    LocalInstall,
}

#[derive(Debug, Error)]
pub enum LocateError {
    #[error("ONNX Runtime library {path} (from {origin}) does not exist")]
    Missing { path: PathBuf, origin: &'static str },
    #[error(
        "ONNX Runtime shared library not found. Install it with `scripts/setup.sh` (it puts the PyPI wheel \
         onnxruntime==1.31.1 into .venv), or point --ort-lib, the config key runtime.ort_lib or ORT_DYLIB_PATH \
         at libonnxruntime.so. Looked in: {}",
        .looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { looked: Vec<PathBuf> },
}

/// The relative folder holding the library inside a project root, with `python3*` as a pattern.
const VENV_LIB: &str = ".venv/lib/python3*/site-packages/onnxruntime/capi";

/// Finds the library. `explicit` is the flag or config value; `env` the value of `ORT_DYLIB_PATH`;
/// `roots` the folders whose `.venv` is searched, nearest first.
pub fn locate(
    explicit: Option<&Path>,
    env: Option<&Path>,
    roots: &[PathBuf],
) -> Result<(PathBuf, Source), LocateError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok((p.to_path_buf(), Source::Explicit))
        } else {
            Err(LocateError::Missing {
                path: p.to_path_buf(),
                origin: "--ort-lib / runtime.ort_lib",
            })
        };
    }
    if let Some(p) = env.filter(|p| !p.as_os_str().is_empty()) {
        return if p.is_file() {
            Ok((p.to_path_buf(), Source::Environment))
        } else {
            Err(LocateError::Missing {
                path: p.to_path_buf(),
                origin: "ORT_DYLIB_PATH",
            })
        };
    }
    let mut looked = Vec::new();
    for root in roots {
        if let Some(found) = find_in_venv(root) {
            return Ok((found, Source::LocalInstall));
        }
        looked.push(root.join(VENV_LIB));
    }
    Err(LocateError::NotFound { looked })
}

/// `root/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`, newest name first.
fn find_in_venv(root: &Path) -> Option<PathBuf> {
    let lib = root.join(".venv/lib");
    let mut hits = Vec::new();
    for py in std::fs::read_dir(&lib).ok()?.flatten() {
        if !py.file_name().to_string_lossy().starts_with("python3") {
            continue;
        }
        let capi = py.path().join("site-packages/onnxruntime/capi");
        let Ok(entries) = std::fs::read_dir(&capi) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("libonnxruntime.so") && e.path().is_file() {
                hits.push(e.path());
            }
        }
    }
    // The versioned file (libonnxruntime.so.1.31.1) is the real one; prefer the longest name.
    hits.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    hits.into_iter().next()
}

/// The folders searched for a local install: the current directory and its ancestors, then the
/// executable's folder and its ancestors, without repeats.
pub fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut push_ancestors = |start: Option<PathBuf>| {
        if let Some(start) = start {
            for a in start.ancestors() {
                if !roots.iter().any(|r| r == a) {
                    roots.push(a.to_path_buf());
                }
            }
        }
    };
    push_ancestors(std::env::current_dir().ok());
    push_ancestors(
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
    );
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_venv(root: &Path, py: &str) -> PathBuf {
        let capi = root
            .join(".venv/lib")
            .join(py)
            .join("site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        let lib = capi.join("libonnxruntime.so.1.31.1");
        std::fs::write(&lib, b"not really a library").unwrap();
        lib
    }

    #[test]
    fn explicit_path_wins_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let lib = fake_venv(dir.path(), "python3.11");
        let (p, s) = locate(Some(&lib), None, &[]).unwrap();
        assert_eq!((p, s), (lib.clone(), Source::Explicit));
        let err = locate(
            Some(Path::new("/nowhere/libonnxruntime.so")),
            Some(&lib),
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nowhere/libonnxruntime.so"),
            "{err}"
        );
    }

    #[test]
    fn environment_comes_before_the_local_install() {
        let dir = tempfile::tempdir().unwrap();
        let lib = fake_venv(dir.path(), "python3.11");
        let other = dir.path().join("other.so");
        std::fs::write(&other, b"x").unwrap();
        let (p, s) = locate(None, Some(&other), &[dir.path().to_path_buf()]).unwrap();
        assert_eq!((p, s), (other, Source::Environment));
        let (p, s) = locate(None, None, &[dir.path().to_path_buf()]).unwrap();
        assert_eq!((p, s), (lib, Source::LocalInstall));
    }

    #[test]
    fn any_python3_minor_version_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let lib = fake_venv(dir.path(), "python3.13");
        assert_eq!(
            locate(None, None, &[dir.path().to_path_buf()]).unwrap().0,
            lib
        );
    }

    #[test]
    fn nothing_found_lists_every_place_and_what_to_install() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let err = locate(
            None,
            None,
            &[a.path().to_path_buf(), b.path().to_path_buf()],
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("onnxruntime==1.31.1") && msg.contains("scripts/setup.sh"),
            "{msg}"
        );
        assert!(
            msg.contains(&a.path().display().to_string())
                && msg.contains(&b.path().display().to_string()),
            "{msg}"
        );
    }
}
