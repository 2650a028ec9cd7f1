//! Bundle archives: safe unpacking of a `.tar` (or copying of a folder) into a fresh staging folder,
//! and deterministic packing for `hallmark publish`.
//!
//! A bundle is flat: its files at the root and at most one folder level below (`selftest/*`,
//! `reference/*`). Anything else in an archive is refused with an error naming the entry: absolute
//! paths, `..`, links of either kind, devices and other special files, deeper paths, an entry or a
//! total past the size limit, too many entries, or the same file twice. Nothing is ever written
//! outside the target folder, and no link is ever created, so later writes cannot be redirected.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// More entries than a bundle ever needs (a manifest, a model, a few dozen self-test images).
pub const MAX_ENTRIES: usize = hallmark_proto::manifest::MAX_FILES;
/// Root files plus one folder level.
const MAX_DEPTH: usize = 2;

#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{archive} is not a readable tar archive: {message}")]
    Corrupt { archive: PathBuf, message: String },
    #[error("archive entry {entry:?}: absolute paths are refused")]
    Absolute { entry: String },
    #[error("archive entry {entry:?}: '..' components are refused (path traversal)")]
    Traversal { entry: String },
    #[error("archive entry {entry:?}: a bundle has files at its root and one folder level below, nothing deeper")]
    TooDeep { entry: String },
    #[error("archive entry {entry:?}: symbolic links are refused")]
    Symlink { entry: String },
    #[error("archive entry {entry:?}: hard links are refused")]
    HardLink { entry: String },
    #[error(
        "archive entry {entry:?}: {kind} entries are refused (only regular files and folders)"
    )]
    Special { entry: String, kind: String },
    #[error("archive entry {entry:?}: the name is not valid UTF-8 or is empty")]
    BadName { entry: String },
    #[error("archive entry {entry:?}: {size} bytes is over the limit of {max} bytes")]
    EntryTooLarge { entry: String, size: u64, max: u64 },
    #[error("archive entry {entry:?}: the bundle would reach {total} bytes, over the limit of {max} bytes")]
    TotalTooLarge { entry: String, total: u64, max: u64 },
    #[error("the archive has more than {max} entries")]
    TooManyEntries { max: usize },
    #[error("archive entry {entry:?}: the file appears twice")]
    Duplicate { entry: String },
    #[error("archive entry {entry:?}: declared {declared} bytes but holds {actual}")]
    Truncated {
        entry: String,
        declared: u64,
        actual: u64,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ArchiveError + '_ {
    move |e| ArchiveError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// What an entry is, once links and special files are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// The running checks over one archive or folder: entry count and total size.
struct Rules {
    max_bytes: u64,
    entries: usize,
    total: u64,
}

impl Rules {
    fn new(max_bytes: u64) -> Rules {
        Rules {
            max_bytes,
            entries: 0,
            total: 0,
        }
    }

    /// Checks one entry and returns its path relative to the bundle root (`None`: the root itself,
    /// as `./` in archives made with `tar -C dir .`).
    fn admit(
        &mut self,
        raw: &Path,
        kind: Kind,
        size: u64,
    ) -> Result<Option<PathBuf>, ArchiveError> {
        let entry = raw.to_string_lossy().into_owned();
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries { max: MAX_ENTRIES });
        }
        let rel = relative(raw)?;
        if rel.components().count() > MAX_DEPTH {
            return Err(ArchiveError::TooDeep { entry });
        }
        if kind == Kind::File {
            if size > self.max_bytes {
                return Err(ArchiveError::EntryTooLarge {
                    entry,
                    size,
                    max: self.max_bytes,
                });
            }
            self.total = self.total.saturating_add(size);
            if self.total > self.max_bytes {
                return Err(ArchiveError::TotalTooLarge {
                    entry,
                    total: self.total,
                    max: self.max_bytes,
                });
            }
        }
        Ok((rel.components().count() > 0).then_some(rel))
    }
}

/// `raw` as a plain relative path: `.` components dropped, anything absolute or upward refused.
fn relative(raw: &Path) -> Result<PathBuf, ArchiveError> {
    let entry = || raw.to_string_lossy().into_owned();
    if raw.to_str().is_none() {
        return Err(ArchiveError::BadName { entry: entry() });
    }
    let mut rel = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(ArchiveError::Traversal { entry: entry() }),
            Component::RootDir | Component::Prefix(_) => {
                return Err(ArchiveError::Absolute { entry: entry() })
            }
        }
    }
    Ok(rel)
}

/// Creates `path` (never an existing file: a second entry of the same name is refused) and fills it
/// from `from`, reading at most `size` bytes; fsyncs it.
fn write_file(
    path: &Path,
    entry: &str,
    from: &mut dyn Read,
    size: u64,
) -> Result<(), ArchiveError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => ArchiveError::Duplicate {
                entry: entry.to_string(),
            },
            _ => io(path)(e),
        })?;
    let copied = std::io::copy(&mut from.take(size), &mut file).map_err(io(path))?;
    if copied != size {
        return Err(ArchiveError::Truncated {
            entry: entry.to_string(),
            declared: size,
            actual: copied,
        });
    }
    file.sync_all().map_err(io(path))
}

fn make_dir(path: &Path) -> Result<(), ArchiveError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// Unpacks the bundle archive `tar` into the folder `into` (which must exist and be empty; the
/// caller owns it and removes it on error). Every file is fsynced, and so are the folders.
pub fn unpack(tar: &Path, into: &Path, max_bytes: u64) -> Result<(), ArchiveError> {
    let file = File::open(tar).map_err(io(tar))?;
    let corrupt = |e: std::io::Error| ArchiveError::Corrupt {
        archive: tar.to_path_buf(),
        message: e.to_string(),
    };
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut rules = Rules::new(max_bytes);
    let mut dirs = vec![into.to_path_buf()];
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path().map_err(corrupt)?.into_owned();
        let name = raw.to_string_lossy().into_owned();
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => return Err(ArchiveError::Symlink { entry: name }),
            tar::EntryType::Link => return Err(ArchiveError::HardLink { entry: name }),
            // Design: a global pax header carries only metadata for what follows; it names no file.
            tar::EntryType::XGlobalHeader => continue,
            other => {
                let kind = match other {
                    tar::EntryType::Char => "character device".to_string(),
                    tar::EntryType::Block => "block device".to_string(),
                    tar::EntryType::Fifo => "fifo".to_string(),
                    other => format!("{other:?}"),
                };
                return Err(ArchiveError::Special { entry: name, kind });
            }
        };
        let size = entry.header().entry_size().map_err(corrupt)?;
        let Some(rel) = rules.admit(&raw, kind, size)? else {
            continue;
        };
        let target = into.join(&rel);
        match kind {
            Kind::Dir => {
                make_dir(&target)?;
                dirs.push(target);
            }
            Kind::File => {
                if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                    let parent = into.join(parent);
                    make_dir(&parent)?;
                    dirs.push(parent);
                }
                write_file(&target, &name, &mut entry, size)?;
            }
        }
    }
    sync_dirs(dirs)
}

/// Copies the bundle folder `from` into the folder `into` under the same rules as [`unpack`]: a
/// folder holding a symlink, a special file or something too deep or too large is refused.
pub fn copy_dir(from: &Path, into: &Path, max_bytes: u64) -> Result<(), ArchiveError> {
    let mut rules = Rules::new(max_bytes);
    let mut dirs = vec![into.to_path_buf()];
    for (rel, kind, size) in walk(from)? {
        let Some(rel) = rules.admit(&rel, kind, size)? else {
            continue;
        };
        let target = into.join(&rel);
        match kind {
            Kind::Dir => {
                make_dir(&target)?;
                dirs.push(target);
            }
            Kind::File => {
                let src = from.join(&rel);
                let mut file = File::open(&src).map_err(io(&src))?;
                write_file(&target, &rel.to_string_lossy(), &mut file, size)?;
            }
        }
    }
    sync_dirs(dirs)
}

/// Packs the bundle folder `from` into the archive `to` (bundle files at the archive root), with
/// `replace` naming files whose contents are given instead of read (the new `manifest.sig`).
/// Design: entries are sorted and carry mtime 0, uid/gid 0 and fixed modes, so the same bundle and
/// key always give the same archive bytes (and the same release `sha256`).
pub fn pack(
    from: &Path,
    to: &Path,
    replace: &[(&str, &[u8])],
    max_bytes: u64,
) -> Result<(), ArchiveError> {
    let mut rules = Rules::new(max_bytes);
    let mut entries = walk(from)?;
    for (name, bytes) in replace {
        match entries
            .iter_mut()
            .find(|(rel, _, _)| rel == Path::new(name))
        {
            Some(e) => e.2 = bytes.len() as u64,
            None => entries.push((PathBuf::from(name), Kind::File, bytes.len() as u64)),
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let file = File::create(to).map_err(io(to))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    for (rel, kind, size) in entries {
        let Some(rel) = rules.admit(&rel, kind, size)? else {
            continue;
        };
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, &rel, std::io::empty())
                    .map_err(io(to))?;
            }
            Kind::File => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(size);
                let replaced = replace
                    .iter()
                    .find(|(name, _)| rel == Path::new(name))
                    .map(|(_, bytes)| *bytes);
                match replaced {
                    Some(bytes) => builder.append_data(&mut header, &rel, bytes),
                    None => {
                        let src = from.join(&rel);
                        let f = File::open(&src).map_err(io(&src))?;
                        builder.append_data(&mut header, &rel, f.take(size))
                    }
                }
                .map_err(io(to))?;
            }
        }
    }
    let mut out = builder.into_inner().map_err(io(to))?;
    out.flush().map_err(io(to))?;
    let file = out.into_inner().map_err(|e| io(to)(e.into_error()))?;
    file.sync_all().map_err(io(to))
}

/// The entries of a bundle folder, relative to it, two levels deep; links and special files refused.
fn walk(root: &Path) -> Result<Vec<(PathBuf, Kind, u64)>, ArchiveError> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io(&dir))?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let path = root.join(&rel);
            let entry = rel.to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                return Err(ArchiveError::Symlink { entry });
            } else if ft.is_dir() {
                if rel.components().count() >= MAX_DEPTH {
                    return Err(ArchiveError::TooDeep { entry });
                }
                out.push((rel.clone(), Kind::Dir, 0));
                pending.push(rel);
            } else if ft.is_file() {
                out.push((rel, Kind::File, meta.len()));
            } else {
                return Err(ArchiveError::Special {
                    entry,
                    kind: "special file".into(),
                });
            }
        }
    }
    Ok(out)
}

fn sync_dirs(mut dirs: Vec<PathBuf>) -> Result<(), ArchiveError> {
    dirs.sort();
    dirs.dedup();
    // Deepest first, so each folder's entry in its parent is durable after its own contents.
    for dir in dirs.iter().rev() {
        sync_dir(dir).map_err(io(dir))?;
    }
    Ok(())
}

/// fsync of a folder, so that the names created or renamed in it survive a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw header for `path` (set byte by byte, so the `tar` crate's own path checks cannot
    /// refuse what an attacker's tool would write).
    fn raw_header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_old();
        {
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        h
    }

    /// A tar of `(path, type, contents)` entries; links point at `/etc/passwd`.
    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = raw_header(path, *kind, data.len() as u64);
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                h.set_link_name("/etc/passwd").unwrap();
                h.set_cksum();
            }
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn unpack_bytes(bytes: &[u8], max: u64) -> (tempfile::TempDir, Result<(), ArchiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("b.tar");
        std::fs::write(&tar, bytes).unwrap();
        let into = dir.path().join("out");
        std::fs::create_dir(&into).unwrap();
        let r = unpack(&tar, &into, max);
        (dir, r)
    }

    use tar::EntryType as T;

    #[test]
    fn a_flat_bundle_with_one_folder_unpacks() {
        let bytes = tar_of(&[
            ("./", T::Directory, b""),
            ("./manifest.json", T::Regular, b"{}"),
            ("selftest/", T::Directory, b""),
            ("selftest/a.jpg", T::Regular, b"jpg"),
            ("reference/b.png", T::Regular, b"png"),
        ]);
        let (dir, r) = unpack_bytes(&bytes, 1000);
        r.unwrap();
        let out = dir.path().join("out");
        assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), b"{}");
        assert_eq!(std::fs::read(out.join("selftest/a.jpg")).unwrap(), b"jpg");
        assert_eq!(std::fs::read(out.join("reference/b.png")).unwrap(), b"png");
    }

    #[test]
    fn each_unsafe_entry_is_refused_with_its_name() {
        type Case = (Vec<u8>, &'static str, fn(&ArchiveError) -> bool);
        let cases: Vec<Case> = vec![
            (
                tar_of(&[("/etc/evil", T::Regular, b"x")]),
                "/etc/evil",
                |e| matches!(e, ArchiveError::Absolute { .. }),
            ),
            (tar_of(&[("../evil", T::Regular, b"x")]), "../evil", |e| {
                matches!(e, ArchiveError::Traversal { .. })
            }),
            (
                tar_of(&[("selftest/../../evil", T::Regular, b"x")]),
                "selftest/../../evil",
                |e| matches!(e, ArchiveError::Traversal { .. }),
            ),
            (tar_of(&[("a/b/c", T::Regular, b"x")]), "a/b/c", |e| {
                matches!(e, ArchiveError::TooDeep { .. })
            }),
            (
                tar_of(&[("model.onnx", T::Symlink, b"")]),
                "model.onnx",
                |e| matches!(e, ArchiveError::Symlink { .. }),
            ),
            (tar_of(&[("model.onnx", T::Link, b"")]), "model.onnx", |e| {
                matches!(e, ArchiveError::HardLink { .. })
            }),
            (tar_of(&[("dev", T::Char, b"")]), "dev", |e| {
                matches!(e, ArchiveError::Special { .. })
            }),
            (tar_of(&[("fifo", T::Fifo, b"")]), "fifo", |e| {
                matches!(e, ArchiveError::Special { .. })
            }),
            (tar_of(&[("big", T::Regular, &[0u8; 200])]), "big", |e| {
                matches!(e, ArchiveError::EntryTooLarge { size: 200, .. })
            }),
            (
                tar_of(&[("a", T::Regular, &[0u8; 60]), ("b", T::Regular, &[0u8; 60])]),
                "\"b\"",
                |e| matches!(e, ArchiveError::TotalTooLarge { total: 120, .. }),
            ),
            (
                tar_of(&[("a", T::Regular, b"1"), ("./a", T::Regular, b"2")]),
                "./a",
                |e| matches!(e, ArchiveError::Duplicate { .. }),
            ),
        ];
        for (bytes, name, is) in cases {
            let (_dir, r) = unpack_bytes(&bytes, 100);
            let err = r.expect_err(name);
            assert!(is(&err), "{name}: {err:?}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn a_symlink_cannot_redirect_a_later_file() {
        // The classic: a link to outside, then a file written "through" it.
        let bytes = tar_of(&[("sub", T::Symlink, b""), ("sub/x", T::Regular, b"x")]);
        let (_dir, r) = unpack_bytes(&bytes, 100);
        assert!(matches!(r, Err(ArchiveError::Symlink { .. })));
    }

    #[test]
    fn too_many_entries_are_refused() {
        let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("d/{i}")).collect();
        let entries: Vec<(&str, T, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), T::Regular, &b""[..]))
            .collect();
        let (_dir, r) = unpack_bytes(&tar_of(&entries), 100);
        assert!(
            matches!(r, Err(ArchiveError::TooManyEntries { .. })),
            "{r:?}"
        );
    }

    #[test]
    fn a_declared_size_past_the_end_is_not_a_file() {
        let mut bytes = tar_of(&[("model.onnx", T::Regular, &[7u8; 600])]);
        bytes.truncate(512 + 100);
        let (_dir, r) = unpack_bytes(&bytes, 10_000);
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn pack_then_unpack_gives_the_folder_back_with_replacements_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("b");
        std::fs::create_dir_all(src.join("selftest")).unwrap();
        std::fs::write(src.join("manifest.json"), b"{}").unwrap();
        std::fs::write(src.join("manifest.sig"), b"old").unwrap();
        std::fs::write(src.join("selftest/a.jpg"), b"jpg").unwrap();
        let (t1, t2) = (dir.path().join("1.tar"), dir.path().join("2.tar"));
        pack(&src, &t1, &[("manifest.sig", b"new\n")], 1000).unwrap();
        pack(&src, &t2, &[("manifest.sig", b"new\n")], 1000).unwrap();
        assert_eq!(std::fs::read(&t1).unwrap(), std::fs::read(&t2).unwrap());
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(&t1, &out, 1000).unwrap();
        assert_eq!(std::fs::read(out.join("manifest.sig")).unwrap(), b"new\n");
        assert_eq!(std::fs::read(out.join("selftest/a.jpg")).unwrap(), b"jpg");
    }

    #[test]
    fn copying_a_folder_refuses_links_and_depth() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("b");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        assert!(matches!(
            copy_dir(&src, &out, 100),
            Err(ArchiveError::TooDeep { .. })
        ));
        std::fs::remove_dir(src.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("model.onnx")).unwrap();
        assert!(matches!(
            copy_dir(&src, &out, 100),
            Err(ArchiveError::Symlink { .. })
        ));
    }
}
