//! Pointer files (`active`, `previous`): one revision number, replaced atomically.
//!
//! A write goes to `<name>.tmp`, is fsynced, renamed over `<name>`, and the folder is fsynced: after a
//! crash at any point the pointer holds either the old or the new number, never a mix or nothing.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::archive::sync_dir;

#[derive(Debug, Error)]
pub enum PointerError {
    #[error("pointer {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("pointer {path} does not hold a revision number: {content:?}")]
    Corrupt { path: PathBuf, content: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PointerError + '_ {
    move |e| PointerError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The revision `path` names; `None` when there is no such file.
pub fn read(path: &Path) -> Result<Option<u64>, PointerError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    parse(&bytes)
        .map(Some)
        .ok_or_else(|| PointerError::Corrupt {
            path: path.to_path_buf(),
            content: String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned(),
        })
}

/// A pointer's content: decimal digits and one optional trailing newline.
pub fn parse(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The temporary file a write of `path` goes through.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Points `path` at `revision`, atomically and durably.
pub fn write(path: &Path, revision: u64) -> Result<(), PointerError> {
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(format!("{revision}\n").as_bytes())
        .map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_parent(path)
}

/// Removes the pointer `path` (no error if it is already gone), durably.
pub fn remove(path: &Path) -> Result<(), PointerError> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

fn sync_parent(path: &Path) -> Result<(), PointerError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    sync_dir(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_a_number_and_one_newline() {
        assert_eq!(parse(b"7\n"), Some(7));
        assert_eq!(parse(b"12"), Some(12));
        for bad in [
            &b""[..],
            b"\n",
            b"7\n\n",
            b" 7",
            b"-1",
            b"7x",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("active");
        assert_eq!(read(&p).unwrap(), None);
        write(&p, 3).unwrap();
        write(&p, 4).unwrap();
        assert_eq!(read(&p).unwrap(), Some(4));
        assert!(!tmp_path(&p).exists());
        std::fs::write(&p, b"garbage").unwrap();
        assert!(matches!(read(&p), Err(PointerError::Corrupt { .. })));
        remove(&p).unwrap();
        remove(&p).unwrap();
        assert_eq!(read(&p).unwrap(), None);
    }
}
