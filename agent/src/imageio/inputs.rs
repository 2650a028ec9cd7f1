//! The image files a scan or a replay takes: files as given, folders walked (sorted, recursively) for
//! image endings. A path that does not exist is kept, so that it is reported like any unreadable image.
//!
//! A folder is hostile input too: a symbolic link back to a folder above it would make the walk endless
//! (two such links double the work at every level), so it is refused by name; a folder reached twice
//! by links is walked once; the walk stops at [`MAX_FILES`] files and [`MAX_DEPTH`] levels.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// File name endings taken from folders (files named explicitly are always tried).
pub const EXTENSIONS: [&str; 10] = [
    "jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "pgm", "ppm", "pnm",
];

/// Most files one walk collects.
pub const MAX_FILES: usize = 1_000_000;
/// Deepest folder level walked.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InputsError {
    #[error("{link} is a symbolic link loop: it leads back to {target}, a folder it is in")]
    Loop { link: PathBuf, target: PathBuf },
    #[error("{0} holds more than {MAX_FILES} images")]
    TooMany(PathBuf),
    #[error("{0} is more than {MAX_DEPTH} folders deep")]
    TooDeep(PathBuf),
}

/// The image files under `paths` (see the module docs).
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputsError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut walk = Walk {
                root: p,
                out: &mut out,
                ancestors: Vec::new(),
                seen: HashSet::new(),
            };
            walk.dir(p)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

struct Walk<'a> {
    root: &'a Path,
    out: &'a mut Vec<PathBuf>,
    /// (device, inode) and path of each folder above the one walked.
    ancestors: Vec<((u64, u64), PathBuf)>,
    /// Every folder walked.
    seen: HashSet<(u64, u64)>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path) -> Result<(), InputsError> {
        let Ok(meta) = std::fs::metadata(dir) else {
            self.out.push(dir.to_path_buf());
            return Ok(());
        };
        let id = (meta.dev(), meta.ino());
        if let Some((_, target)) = self.ancestors.iter().find(|(a, _)| *a == id) {
            return Err(InputsError::Loop {
                link: dir.to_path_buf(),
                target: target.clone(),
            });
        }
        if !self.seen.insert(id) {
            return Ok(());
        }
        if self.ancestors.len() >= MAX_DEPTH {
            return Err(InputsError::TooDeep(self.root.to_path_buf()));
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.out.push(dir.to_path_buf());
            return Ok(());
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        self.ancestors.push((id, dir.to_path_buf()));
        for p in entries {
            if p.is_dir() {
                self.dir(&p)?;
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                if self.out.len() >= MAX_FILES {
                    return Err(InputsError::TooMany(self.root.to_path_buf()));
                }
                self.out.push(p);
            }
        }
        self.ancestors.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_sorted_for_image_endings_and_files_kept_as_given() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.JPG", "a.png", "notes.txt", "sub/c.webp"] {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        let explicit = dir.path().join("notes.txt");
        let got = collect_inputs(&[dir.path().to_path_buf(), explicit.clone()]).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.png", "b.JPG", "sub/c.webp", "notes.txt"]);
    }

    #[test]
    fn a_link_back_up_is_refused_by_name_and_a_folder_linked_twice_is_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.jpg"), b"").unwrap();
        std::os::unix::fs::symlink(dir.path().join("sub"), dir.path().join("twice")).unwrap();
        let got = collect_inputs(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/up")).unwrap();
        let err = collect_inputs(&[dir.path().to_path_buf()]).unwrap_err();
        assert_eq!(
            err,
            InputsError::Loop {
                link: dir.path().join("sub/up"),
                target: dir.path().to_path_buf()
            }
        );
        assert!(err.to_string().contains("symbolic link loop"));
    }
}
