//! The local model store (`agent.state_dir/models`): verified bundles by brand and revision, and per
//! brand an `active` and a `previous` pointer.
//!
//! ```text
//! <root>/<brand>/<revision>/   manifest.json, manifest.sig, model.onnx, optional selftest/
//! <root>/<brand>/active        "7\n"
//! <root>/<brand>/previous      "6\n"
//! <root>/<brand>/anti-rollback.json  the highest revision run, the last signed rollback, revisions
//!                              refused or rolled back from ([`guard`])
//! <root>/.staging-<uuid>/      an install in progress (removed by recovery)
//! <root>/<brand>/.trash-<uuid>/ a revision being pruned (removed by recovery)
//! ```
//!
//! Only verified bundles ever get a revision folder: an install unpacks into a staging folder, checks
//! it with [`Bundle::open`] (signature, manifest, model digest), and renames it into place. Pointers
//! change atomically ([`pointer`]). The order of every multi-step change is chosen so that a crash
//! between any two steps leaves exactly one consistent active revision (see `activate`, `rollback`).
//! Design: one process changes a store at a time (the daemon, or an operator's `hallmark models`
//! command); renames keep a concurrent reader safe, but two writers are not arbitrated.

pub mod archive;
pub mod guard;
pub mod pointer;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use archive::ArchiveError;
pub use guard::{Guard, Rollback};
pub use pointer::PointerError;

use crate::bundle::{Bundle, BundleError, Manifest, TrustedKeys};

const STAGING: &str = ".staging-";
const TRASH: &str = ".trash-";
const ACTIVE: &str = "active";
const PREVIOUS: &str = "previous";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("model store: {op} {path}: {message}")]
    Io {
        op: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("model store: {0} is neither a bundle folder nor a .tar file")]
    NoSource(PathBuf),
    #[error("model store: {source_path}: {source}")]
    Archive {
        source_path: PathBuf,
        source: ArchiveError,
    },
    #[error("model store: {source_path} is not a valid bundle: {source}")]
    Bundle {
        source_path: PathBuf,
        source: BundleError,
    },
    #[error(transparent)]
    Pointer(#[from] PointerError),
    #[error("model store: {brand} revision {revision} is already installed in {dir} with a different manifest; a changed bundle needs a new revision")]
    Conflict {
        brand: String,
        revision: u64,
        dir: PathBuf,
    },
    #[error("model store: {brand} revision {revision} is not installed ({dir} is missing)")]
    NotInstalled {
        brand: String,
        revision: u64,
        dir: PathBuf,
    },
    #[error("model store: {0:?} is not a brand name (lowercase letters, digits and '-')")]
    BadBrand(String),
    #[error("model store: brand {brand} has no active revision")]
    NoActive { brand: String },
    #[error("model store: brand {brand} has no previous revision to roll back to")]
    NoPrevious { brand: String },
    #[error("model store: {dir} holds {found}, not {brand} revision {revision}")]
    Misplaced {
        dir: PathBuf,
        brand: String,
        revision: u64,
        found: String,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |e| StoreError::Io {
        op,
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A verified revision in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub brand: String,
    pub revision: u64,
    pub dir: PathBuf,
}

/// One brand's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub brand: String,
    /// Installed revisions, ascending.
    pub revisions: Vec<u64>,
    pub active: Option<u64>,
    pub previous: Option<u64>,
}

/// The store under one root folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What recovery did when it opened the store (also logged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Staging, trash and `.tmp` leftovers removed.
    pub removed: Vec<PathBuf>,
    /// `(brand, from, to)`: an active pointer that named a missing or unsound revision, moved to
    /// `previous` (`to` = `None`: nothing sound was left to activate, the pointer was removed).
    pub fell_back: Vec<(String, Option<u64>, Option<u64>)>,
}

impl Store {
    /// Opens (creating) the store at `root` and recovers what a crash may have left.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        Store::open_recovering(root).map(|(s, _)| s)
    }

    /// [`Store::open`], also saying what recovery did.
    pub fn open_recovering(root: &Path) -> Result<(Store, Recovery), StoreError> {
        std::fs::create_dir_all(root).map_err(io("create", root))?;
        let store = Store {
            root: root.to_path_buf(),
        };
        let recovery = store.recover()?;
        Ok((store, recovery))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `brand`'s `revision` lives (whether or not it is installed).
    pub fn dir(&self, brand: &str, revision: u64) -> PathBuf {
        self.root.join(brand).join(revision.to_string())
    }

    fn pointer(&self, brand: &str, name: &str) -> PathBuf {
        self.root.join(brand).join(name)
    }

    /// `brand`'s anti-rollback state ([`guard`]). A store without one (older than it) or with an
    /// unreadable one starts from its pointers: the highest revision is the larger of active and
    /// previous.
    pub fn guard(&self, brand: &str) -> Result<Guard, StoreError> {
        check_brand(brand)?;
        let path = self.pointer(brand, guard::FILE);
        match guard::read(&path) {
            Ok(Some(g)) => return Ok(g),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(%brand, path = %path.display(), error = %e, "model store: the anti-rollback state is unreadable; starting again from the pointers");
            }
        }
        let read = |name| pointer::read(&self.pointer(brand, name)).ok().flatten();
        Ok(Guard {
            highest: read(ACTIVE).max(read(PREVIOUS)),
            ..Guard::default()
        })
    }

    fn save_guard(&self, brand: &str, g: &Guard) -> Result<(), StoreError> {
        let dir = self.root.join(brand);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(guard::write(&self.pointer(brand, guard::FILE), g)?)
    }

    /// `brand` serves `revision` (a configured bundle the store does not hold, say): it counts as run,
    /// so a release alone cannot take the device below it.
    pub fn observe(&self, brand: &str, revision: u64) -> Result<(), StoreError> {
        let mut g = self.guard(brand)?;
        if g.highest.is_some_and(|h| h >= revision) {
            return Ok(());
        }
        g.highest = Some(revision);
        self.save_guard(brand, &g)
    }

    /// Remembers that the device refused `revision` (it failed after its install: self-test, load): it
    /// is never a fallback.
    pub fn refuse(&self, brand: &str, revision: u64) -> Result<(), StoreError> {
        let mut g = self.guard(brand)?;
        g.refuse(revision);
        self.save_guard(brand, &g)
    }

    /// Removes leftovers of interrupted installs, prunes and pointer writes, and moves an `active`
    /// pointer that names a missing or unsound revision back to `previous`.
    fn recover(&self) -> Result<Recovery, StoreError> {
        let mut rec = Recovery::default();
        let remove_leftovers = |dir: &Path, rec: &mut Recovery| -> Result<(), StoreError> {
            for name in names(dir)? {
                let path = dir.join(&name);
                if name.starts_with(STAGING) || name.starts_with(TRASH) {
                    std::fs::remove_dir_all(&path).map_err(io("remove", &path))?;
                } else if name.ends_with(".tmp") {
                    // A pointer write that did not reach its rename: the pointer itself is intact.
                    std::fs::remove_file(&path).map_err(io("remove", &path))?;
                } else {
                    continue;
                }
                tracing::warn!(path = %path.display(), "model store: removed what an interrupted operation left");
                rec.removed.push(path);
            }
            Ok(())
        };
        remove_leftovers(&self.root, &mut rec)?;
        for brand in self.brands()? {
            remove_leftovers(&self.root.join(&brand), &mut rec)?;
            let active = pointer::read(&self.pointer(&brand, ACTIVE));
            let previous = pointer::read(&self.pointer(&brand, PREVIOUS)).unwrap_or(None);
            let sound_active = match active {
                Ok(None) => continue,
                Ok(Some(rev)) => self.sound(&brand, rev).then_some(rev),
                Err(_) => None,
            };
            if let Some(rev) = sound_active {
                if previous == Some(rev) {
                    // A rollback stopped between its two steps: finish it.
                    pointer::remove(&self.pointer(&brand, PREVIOUS))?;
                }
                continue;
            }
            let from = active.ok().flatten();
            // Design: never back to a revision the device refused or rolled back from, nor one a
            // signed rollback withdrew: `previous` is only a candidate, the guard has the last word.
            let guard = self.guard(&brand)?;
            let to = previous.filter(|&p| self.sound(&brand, p) && guard.may_fall_back_to(p));
            match to {
                Some(p) => {
                    pointer::write(&self.pointer(&brand, ACTIVE), p)?;
                    pointer::remove(&self.pointer(&brand, PREVIOUS))?;
                    tracing::error!(%brand, from = ?from, to = p, "model store: the active revision is missing or damaged; fell back to the previous one");
                }
                None => {
                    pointer::remove(&self.pointer(&brand, ACTIVE))?;
                    tracing::error!(%brand, from = ?from, "model store: the active revision is missing or damaged and no sound previous revision exists; brand has no active model");
                }
            }
            rec.fell_back.push((brand, from, to));
        }
        Ok(rec)
    }

    /// A cheap structural check (no keys needed): the revision folder holds a manifest of this brand
    /// and revision, a signature and the model file of the manifest's size-independent name. The full
    /// check is [`Store::verify`].
    fn sound(&self, brand: &str, revision: u64) -> bool {
        let dir = self.dir(brand, revision);
        let Ok(bytes) = std::fs::read(dir.join("manifest.json")) else {
            return false;
        };
        let Ok(m) = Manifest::parse(&bytes) else {
            return false;
        };
        m.brand == brand
            && m.revision == revision
            && dir.join("manifest.sig").is_file()
            && dir.join(&m.model.file).is_file()
    }

    /// Brand folders (names a manifest accepts as a brand).
    fn brands(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = names(&self.root)?
            .into_iter()
            .filter(|n| is_brand(n) && self.root.join(n).is_dir())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Installs the bundle folder or `.tar` at `source` after verifying it; `max_bytes` bounds what
    /// is unpacked. Installing a revision that is already there with the same manifest is a no-op.
    pub fn install(
        &self,
        source: &Path,
        trust: &TrustedKeys,
        max_bytes: u64,
    ) -> Result<Installed, StoreError> {
        // Design: staging sits at the store's root, not under `<brand>/`: the brand is only known
        // (and only believed) once the unpacked manifest's signature verifies.
        let staging = self
            .root
            .join(format!("{STAGING}{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir(&staging).map_err(io("create", &staging))?;
        let result = self.install_staged(source, &staging, trust, max_bytes);
        if staging.exists() {
            if let Err(e) = std::fs::remove_dir_all(&staging) {
                tracing::warn!(path = %staging.display(), error = %e, "model store: cannot remove a staging folder (recovery will)");
            }
        }
        result
    }

    fn install_staged(
        &self,
        source: &Path,
        staging: &Path,
        trust: &TrustedKeys,
        max_bytes: u64,
    ) -> Result<Installed, StoreError> {
        let archive_err = |source_err| StoreError::Archive {
            source_path: source.to_path_buf(),
            source: source_err,
        };
        if source.is_dir() {
            archive::copy_dir(source, staging, max_bytes).map_err(archive_err)?;
        } else if source.is_file() {
            archive::unpack(source, staging, max_bytes).map_err(archive_err)?;
        } else {
            return Err(StoreError::NoSource(source.to_path_buf()));
        }
        let bundle = Bundle::open(staging, trust).map_err(|e| StoreError::Bundle {
            source_path: source.to_path_buf(),
            source: e,
        })?;
        let (brand, revision) = (bundle.manifest().brand.clone(), bundle.manifest().revision);
        let brand_dir = self.root.join(&brand);
        if !brand_dir.is_dir() {
            std::fs::create_dir_all(&brand_dir).map_err(io("create", &brand_dir))?;
            archive::sync_dir(&self.root).map_err(io("fsync", &self.root))?;
        }
        let dir = self.dir(&brand, revision);
        let installed = Installed {
            brand: brand.clone(),
            revision,
            dir: dir.clone(),
        };
        if dir.exists() {
            return self.same_or_conflict(staging, installed);
        }
        match std::fs::rename(staging, &dir) {
            Ok(()) => {}
            // Another install of the same revision won the race: compare with it.
            Err(_) if dir.exists() => return self.same_or_conflict(staging, installed),
            Err(e) => return Err(io("rename", &dir)(e)),
        }
        archive::sync_dir(&brand_dir).map_err(io("fsync", &brand_dir))?;
        archive::sync_dir(&self.root).map_err(io("fsync", &self.root))?;
        tracing::info!(%brand, revision, dir = %dir.display(), "model store: installed");
        Ok(installed)
    }

    fn same_or_conflict(
        &self,
        staging: &Path,
        installed: Installed,
    ) -> Result<Installed, StoreError> {
        let new = staging.join("manifest.json");
        let old = installed.dir.join("manifest.json");
        let new = std::fs::read(&new).map_err(io("read", &new))?;
        let same = std::fs::read(&old).is_ok_and(|old| old == new);
        if same {
            tracing::info!(brand = %installed.brand, revision = installed.revision, "model store: already installed");
            Ok(installed)
        } else {
            Err(StoreError::Conflict {
                brand: installed.brand,
                revision: installed.revision,
                dir: installed.dir,
            })
        }
    }

    fn require_installed(&self, brand: &str, revision: u64) -> Result<(), StoreError> {
        check_brand(brand)?;
        let dir = self.dir(brand, revision);
        if dir.join("manifest.json").is_file() {
            Ok(())
        } else {
            Err(StoreError::NotInstalled {
                brand: brand.to_string(),
                revision,
                dir,
            })
        }
    }

    /// Makes `revision` (installed) the active one; the old active becomes `previous`. Activating a
    /// revision below the active one is a rollback: the revision left is remembered as rolled back from
    /// and is not kept as `previous` (a broken pointer must never fall back to it). The highest
    /// revision run ([`Store::guard`]) moves up first.
    pub fn activate(&self, brand: &str, revision: u64) -> Result<(), StoreError> {
        self.require_installed(brand, revision)?;
        let old = self.active(brand)?;
        if old == Some(revision) {
            return Ok(());
        }
        let back_from = old.filter(|&o| revision < o);
        let mut g = self.guard(brand)?;
        g.activated(revision);
        if let Some(from) = back_from {
            g.refuse(from);
        }
        self.save_guard(brand, &g)?;
        if back_from.is_some() {
            // Design: `previous` removed first, then `active`: a crash between leaves the old active
            // alone, which is consistent.
            pointer::remove(&self.pointer(brand, PREVIOUS))?;
            pointer::write(&self.pointer(brand, ACTIVE), revision)?;
            tracing::warn!(%brand, revision, from = ?old, "model store: activated a lower revision (a rollback)");
            return Ok(());
        }
        // Design: `previous` first, then `active`. A crash between the two leaves active = old and
        // previous = old: still one consistent active revision (recovery tidies the duplicate).
        if let Some(old) = old {
            pointer::write(&self.pointer(brand, PREVIOUS), old)?;
        }
        pointer::write(&self.pointer(brand, ACTIVE), revision)?;
        tracing::info!(%brand, revision, previous = ?old, "model store: activated");
        Ok(())
    }

    /// Activates `revision` under a signed rollback that withdraws every revision up to `supersedes`
    /// (`update::rollback`): recorded first, so a release alone can no longer bring those back, nor
    /// can a fallback.
    pub fn activate_rollback(
        &self,
        brand: &str,
        revision: u64,
        supersedes: u64,
    ) -> Result<(), StoreError> {
        self.require_installed(brand, revision)?;
        let mut g = self.guard(brand)?;
        let supersedes = g
            .rollback
            .map_or(supersedes, |r| r.supersedes.max(supersedes));
        g.rollback = Some(Rollback {
            to: revision,
            supersedes,
        });
        self.save_guard(brand, &g)?;
        self.activate(brand, revision)
    }

    pub fn active(&self, brand: &str) -> Result<Option<u64>, StoreError> {
        check_brand(brand)?;
        Ok(pointer::read(&self.pointer(brand, ACTIVE))?)
    }

    pub fn previous(&self, brand: &str) -> Result<Option<u64>, StoreError> {
        check_brand(brand)?;
        let active = self.active(brand)?;
        // A previous equal to active is a half-done change, not a rollback target.
        Ok(pointer::read(&self.pointer(brand, PREVIOUS))?.filter(|&p| Some(p) != active))
    }

    /// Activates the previous revision and returns it.
    ///
    /// Design: after a rollback there is no `previous`: the revision rolled back from was found bad,
    /// so a second rollback must not return to it (it stays on disk, unprotected, until pruned).
    /// Order: `active` first, then `previous` removed; a crash between leaves active = previous =
    /// the good revision, which reads as no previous and which recovery tidies.
    pub fn rollback(&self, brand: &str) -> Result<u64, StoreError> {
        let Some(target) = self.previous(brand)? else {
            return Err(StoreError::NoPrevious {
                brand: brand.to_string(),
            });
        };
        self.require_installed(brand, target)?;
        let from = self.active(brand)?;
        if let Some(from) = from {
            self.refuse(brand, from)?;
        }
        pointer::write(&self.pointer(brand, ACTIVE), target)?;
        pointer::remove(&self.pointer(brand, PREVIOUS))?;
        tracing::warn!(%brand, from = ?from, to = target, "model store: rolled back");
        Ok(target)
    }

    /// Every brand with its revisions and pointers.
    pub fn list(&self) -> Result<Vec<Entry>, StoreError> {
        self.brands()?
            .into_iter()
            .map(|brand| {
                Ok(Entry {
                    revisions: self.revisions(&brand)?,
                    active: self.active(&brand)?,
                    previous: self.previous(&brand)?,
                    brand,
                })
            })
            .collect()
    }

    /// Installed revisions of `brand`, ascending.
    pub fn revisions(&self, brand: &str) -> Result<Vec<u64>, StoreError> {
        check_brand(brand)?;
        let dir = self.root.join(brand);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut revs: Vec<u64> = names(&dir)?
            .iter()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|n| n.parse().ok())
            .filter(|r: &u64| dir.join(r.to_string()).is_dir())
            .collect();
        revs.sort_unstable();
        Ok(revs)
    }

    /// Removes old revisions of `brand`, keeping the active and previous ones and the `keep` newest;
    /// returns the revisions removed.
    pub fn prune(&self, brand: &str, keep: usize) -> Result<Vec<u64>, StoreError> {
        let revs = self.revisions(brand)?;
        let (active, previous) = (self.active(brand)?, self.previous(brand)?);
        let newest: Vec<u64> = revs.iter().rev().take(keep).copied().collect();
        let mut removed = Vec::new();
        for rev in revs {
            if Some(rev) == active || Some(rev) == previous || newest.contains(&rev) {
                continue;
            }
            // Renamed away first, so a crash mid-delete never leaves a half revision folder.
            let dir = self.dir(brand, rev);
            let trash = self
                .root
                .join(brand)
                .join(format!("{TRASH}{}", uuid::Uuid::now_v7().simple()));
            std::fs::rename(&dir, &trash).map_err(io("rename", &dir))?;
            std::fs::remove_dir_all(&trash).map_err(io("remove", &trash))?;
            removed.push(rev);
        }
        if !removed.is_empty() {
            let brand_dir = self.root.join(brand);
            archive::sync_dir(&brand_dir).map_err(io("fsync", &brand_dir))?;
            tracing::info!(%brand, ?removed, "model store: pruned");
        }
        Ok(removed)
    }

    /// The active revision of `brand`, fully verified (signature, manifest, model digest), as a bundle
    /// ready to load: the daemon serves exactly these bytes.
    pub fn active_bundle(&self, brand: &str, trust: &TrustedKeys) -> Result<Bundle, StoreError> {
        let Some(revision) = self.active(brand)? else {
            return Err(StoreError::NoActive {
                brand: brand.to_string(),
            });
        };
        let dir = self.dir(brand, revision);
        if !dir.is_dir() {
            return Err(StoreError::NotInstalled {
                brand: brand.to_string(),
                revision,
                dir,
            });
        }
        let bundle = Bundle::open(&dir, trust).map_err(|e| StoreError::Bundle {
            source_path: dir.clone(),
            source: e,
        })?;
        let m = bundle.manifest();
        if m.brand != brand || m.revision != revision {
            return Err(StoreError::Misplaced {
                dir,
                brand: brand.to_string(),
                revision,
                found: format!("{} revision {}", m.brand, m.revision),
            });
        }
        Ok(bundle)
    }

    /// Checks that `brand`'s active revision verifies.
    pub fn verify(&self, brand: &str, trust: &TrustedKeys) -> Result<Installed, StoreError> {
        let b = self.active_bundle(brand, trust)?;
        Ok(Installed {
            brand: brand.to_string(),
            revision: b.manifest().revision,
            dir: b.dir().to_path_buf(),
        })
    }
}

fn is_brand(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A brand is a path component here: only what a manifest accepts as a brand.
fn check_brand(brand: &str) -> Result<(), StoreError> {
    if is_brand(brand) {
        Ok(())
    } else {
        Err(StoreError::BadBrand(brand.to_string()))
    }
}

/// The UTF-8 names in `dir` (others are not ours and are left alone).
fn names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let e = e.map_err(io("list", dir))?;
        if let Ok(name) = e.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A revision folder that passes the structural check (no valid signature: pointer logic only).
    fn fake_revision(store: &Store, brand: &str, rev: u64) {
        let dir = store.dir(brand, rev);
        std::fs::create_dir_all(&dir).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../models/northwind/manifest.json")).unwrap();
        v["brand"] = brand.into();
        v["revision"] = rev.into();
        std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&v).unwrap()).unwrap();
        std::fs::write(dir.join("manifest.sig"), b"x").unwrap();
        std::fs::write(dir.join("model.onnx"), b"m").unwrap();
    }

    #[test]
    fn activate_keeps_the_old_one_as_previous_and_rollback_clears_it() {
        let root = tempfile::tempdir().unwrap();
        let s = Store::open(root.path()).unwrap();
        for r in [1, 2, 3] {
            fake_revision(&s, "acme", r);
        }
        s.activate("acme", 1).unwrap();
        assert_eq!(
            (s.active("acme").unwrap(), s.previous("acme").unwrap()),
            (Some(1), None)
        );
        s.activate("acme", 2).unwrap();
        s.activate("acme", 2).unwrap();
        assert_eq!(
            (s.active("acme").unwrap(), s.previous("acme").unwrap()),
            (Some(2), Some(1))
        );
        assert_eq!(s.rollback("acme").unwrap(), 1);
        assert_eq!(
            (s.active("acme").unwrap(), s.previous("acme").unwrap()),
            (Some(1), None)
        );
        assert!(matches!(
            s.rollback("acme"),
            Err(StoreError::NoPrevious { .. })
        ));
        assert!(matches!(
            s.activate("acme", 9),
            Err(StoreError::NotInstalled { .. })
        ));
        assert!(matches!(s.active("../x"), Err(StoreError::BadBrand(_))));
    }

    #[test]
    fn prune_never_removes_active_or_previous() {
        let root = tempfile::tempdir().unwrap();
        let s = Store::open(root.path()).unwrap();
        for r in 1..=6 {
            fake_revision(&s, "acme", r);
        }
        s.activate("acme", 2).unwrap();
        s.activate("acme", 3).unwrap();
        assert_eq!(s.prune("acme", 1).unwrap(), vec![1, 4, 5]);
        assert_eq!(s.revisions("acme").unwrap(), vec![2, 3, 6]);
        assert_eq!(s.prune("acme", 0).unwrap(), vec![6]);
    }

    #[test]
    fn recovery_cleans_leftovers_and_falls_back_from_a_missing_active() {
        let root = tempfile::tempdir().unwrap();
        let s = Store::open(root.path()).unwrap();
        fake_revision(&s, "acme", 1);
        fake_revision(&s, "acme", 2);
        s.activate("acme", 1).unwrap();
        s.activate("acme", 2).unwrap();
        std::fs::create_dir(root.path().join(".staging-x")).unwrap();
        std::fs::create_dir(root.path().join("acme/.trash-y")).unwrap();
        std::fs::write(root.path().join("acme/active.tmp"), b"9").unwrap();
        std::fs::remove_dir_all(s.dir("acme", 2)).unwrap();
        let (s, rec) = Store::open_recovering(root.path()).unwrap();
        assert_eq!(rec.removed.len(), 3, "{rec:?}");
        assert_eq!(rec.fell_back, vec![("acme".to_string(), Some(2), Some(1))]);
        assert_eq!(
            (s.active("acme").unwrap(), s.previous("acme").unwrap()),
            (Some(1), None)
        );

        // Nothing sound to fall back to: no active revision rather than a broken one.
        std::fs::write(root.path().join("acme/active"), b"garbage").unwrap();
        std::fs::remove_file(s.dir("acme", 1).join("model.onnx")).unwrap();
        let (s, rec) = Store::open_recovering(root.path()).unwrap();
        assert_eq!(rec.fell_back, vec![("acme".to_string(), None, None)]);
        assert_eq!(s.active("acme").unwrap(), None);
    }

    #[test]
    fn a_broken_active_pointer_never_falls_back_to_a_revision_rolled_back_from() {
        let root = tempfile::tempdir().unwrap();
        let s = Store::open(root.path()).unwrap();
        for r in [1, 2, 3] {
            fake_revision(&s, "acme", r);
        }
        // Activated 1, 2, 3, then taken back to 2 (a release, or an operator): 3 is rolled back from.
        for r in [1, 2, 3, 2] {
            s.activate("acme", r).unwrap();
        }
        assert_eq!(
            (s.active("acme").unwrap(), s.previous("acme").unwrap()),
            (Some(2), None)
        );
        let g = s.guard("acme").unwrap();
        assert_eq!((g.highest, g.refused.as_slice()), (Some(3), &[3][..]));
        // A previous pointer naming 3 anyway (written by an older agent): still not a fallback.
        pointer::write(&root.path().join("acme/previous"), 3).unwrap();
        std::fs::write(root.path().join("acme/active"), b"garbage").unwrap();
        let (s, rec) = Store::open_recovering(root.path()).unwrap();
        assert_eq!(rec.fell_back, vec![("acme".to_string(), None, None)]);
        assert_eq!(s.active("acme").unwrap(), None);

        // A signed rollback withdraws a range; a runtime rollback refuses what it left.
        s.activate("acme", 1).unwrap();
        s.activate("acme", 3).unwrap();
        s.activate_rollback("acme", 1, 3).unwrap();
        let g = s.guard("acme").unwrap();
        assert_eq!(
            g.rollback,
            Some(Rollback {
                to: 1,
                supersedes: 3
            })
        );
        assert!(!g.may_fall_back_to(2) && !g.may_fall_back_to(3) && g.may_fall_back_to(1));
        s.activate("acme", 2).unwrap();
        assert_eq!(s.rollback("acme").unwrap(), 1);
        assert!(s.guard("acme").unwrap().refused.contains(&2));
    }

    #[test]
    fn a_store_without_an_anti_rollback_file_starts_from_its_pointers() {
        let root = tempfile::tempdir().unwrap();
        let s = Store::open(root.path()).unwrap();
        fake_revision(&s, "acme", 4);
        fake_revision(&s, "acme", 6);
        pointer::write(&root.path().join("acme/active"), 4).unwrap();
        pointer::write(&root.path().join("acme/previous"), 6).unwrap();
        assert_eq!(s.guard("acme").unwrap().highest, Some(6));
        s.observe("acme", 9).unwrap();
        s.observe("acme", 5).unwrap();
        assert_eq!(s.guard("acme").unwrap().highest, Some(9));
        std::fs::write(root.path().join("acme").join(guard::FILE), b"{").unwrap();
        assert_eq!(s.guard("acme").unwrap().highest, Some(6));
    }

    #[test]
    fn a_half_done_activation_or_rollback_reads_as_one_active_revision() {
        let root = tempfile::tempdir().unwrap();
        let s = Store::open(root.path()).unwrap();
        fake_revision(&s, "acme", 1);
        fake_revision(&s, "acme", 2);
        s.activate("acme", 1).unwrap();
        // activate(2) stopped after writing previous: active = previous = 1.
        pointer::write(&root.path().join("acme/previous"), 1).unwrap();
        assert_eq!(
            (s.active("acme").unwrap(), s.previous("acme").unwrap()),
            (Some(1), None)
        );
        let s = Store::open(root.path()).unwrap();
        assert!(!root.path().join("acme/previous").exists());
        assert_eq!(s.active("acme").unwrap(), Some(1));
    }
}
