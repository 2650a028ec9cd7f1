//! Model bundles: a folder holding `manifest.json`, `model.onnx` and `manifest.sig` (see
//! `models/BUNDLE.md`). Opening a bundle checks, in this order, that the manifest is signed by a trusted
//! key (before anything in it is believed), that it is a valid `hallmark.model/1` manifest, that the
//! model file's (and each variant's) SHA-256 is the one the manifest names, and that the manifest's
//! `files` names every other file of the folder with its SHA-256 too (self-test images, reference
//! artwork, report): a file not named, a named one missing, or another digest refuses the whole bundle,
//! naming the files, so nothing unsigned ever rides along in a signed bundle. Whether the ONNX graph
//! itself agrees with the manifest is checked when a session is built (`hallmark_detect::check`).
//!
//! Design: the model file is read once, hashed, and its bytes kept in the `Bundle`; sessions are built
//! from those bytes (`Bundle::model_bytes`), never by reading the file again, so a file swapped on disk
//! after the check can never be what runs.

mod signature;
mod variant;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;

pub use hallmark_proto::manifest::{
    listable_path, ClassSpec, InputDtype, InputSpec, Manifest, ManifestError, ModelSpec,
    OutputSpec, Precision, Role, Thresholds, VariantInput, VariantSpec, SCHEMA, SIGNATURE_FILES,
};
pub use signature::{
    generate_signing_key, KeyError, SignatureError, SigningKeyFile, TrustError, TrustedKey,
    TrustedKeys,
};
pub use variant::{choose, variant_for, EncodingChoice, PrecisionChoice, VariantError, MAIN};

#[derive(Debug, Error)]
pub enum BundleError {
    #[error("model bundle {0} does not exist or is not a folder")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("model bundle {0} is unsigned: manifest.sig is missing")]
    Unsigned(PathBuf),
    #[error("model bundle {bundle}: {source}")]
    Signature {
        bundle: PathBuf,
        source: SignatureError,
    },
    #[error("model bundle {bundle}: {source}")]
    Manifest {
        bundle: PathBuf,
        source: ManifestError,
    },
    #[error("model bundle {bundle}: {source}")]
    Variant {
        bundle: PathBuf,
        source: VariantError,
    },
    #[error("model bundle {bundle}: model file {file} is missing")]
    ModelMissing { bundle: PathBuf, file: String },
    #[error("model bundle {bundle}: digest mismatch: {file} has SHA-256 {actual}, the manifest says {expected}")]
    Digest {
        bundle: PathBuf,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("model bundle {bundle}: the manifest has no files list, so its signature does not cover every file of the bundle (a bundle signed before lists: re-release it with `python -m hallmark_models.bundle relist`)")]
    NoFileList { bundle: PathBuf },
    #[error(
        "model bundle {bundle}: not named in the signed manifest's files, refused: {}",
        some(files)
    )]
    Unlisted { bundle: PathBuf, files: Vec<String> },
    #[error(
        "model bundle {bundle}: named in the signed manifest's files but missing: {}",
        some(files)
    )]
    FilesMissing { bundle: PathBuf, files: Vec<String> },
    #[error("model bundle {bundle}: {file} is a symbolic link or a special file; a bundle holds plain files only")]
    NotAFile { bundle: PathBuf, file: String },
}

/// Up to ten names, then how many more.
fn some(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// A bundle whose signature, manifest and model digest have been checked.
#[derive(Clone)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
    signer: PathBuf,
    /// The exact bytes whose SHA-256 matched the manifest (shared, not copied, by clones).
    model: Arc<[u8]>,
    /// The variants' verified bytes, in `manifest.variants` order (emptied by [`Bundle::select`]).
    variants: Vec<Arc<[u8]>>,
    /// The variant this bundle runs, once selected; `None`: the main model.
    variant: Option<String>,
}

impl std::fmt::Debug for Bundle {
    // The model bytes are megabytes: show their size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("dir", &self.dir)
            .field("manifest", &self.manifest)
            .field("signer", &self.signer)
            .field("model_bytes", &self.model.len())
            .field("variant", &self.variant)
            .finish()
    }
}

impl Bundle {
    /// Opens and verifies the bundle folder `dir`.
    pub fn open(dir: &Path, trust: &TrustedKeys) -> Result<Bundle, BundleError> {
        if !dir.is_dir() {
            return Err(BundleError::NotFound(dir.to_path_buf()));
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                (
                    e.kind(),
                    BundleError::Read {
                        path,
                        message: e.to_string(),
                    },
                )
            })
        };
        let manifest_bytes = read("manifest.json").map_err(|(_, e)| e)?;
        let sig = match read("manifest.sig") {
            Ok(sig) => sig,
            Err((std::io::ErrorKind::NotFound, _)) => {
                return Err(BundleError::Unsigned(dir.to_path_buf()))
            }
            Err((_, e)) => return Err(e),
        };
        let signer = trust
            .verify(&manifest_bytes, &sig)
            .map_err(|source| BundleError::Signature {
                bundle: dir.to_path_buf(),
                source,
            })?
            .source
            .clone();
        let manifest =
            Manifest::parse(&manifest_bytes).map_err(|source| BundleError::Manifest {
                bundle: dir.to_path_buf(),
                source,
            })?;

        let model = read_verified(dir, &manifest.model.file, &manifest.model.sha256)?;
        // Every encoding is checked now, so that a store never accepts a bundle with a bad variant.
        let variants = manifest
            .variants
            .iter()
            .map(|v| read_verified(dir, &v.file, &v.sha256))
            .collect::<Result<Vec<_>, _>>()?;
        check_listed_files(dir, &manifest)?;
        tracing::debug!(bundle = %dir.display(), brand = %manifest.brand, revision = manifest.revision, "bundle verified");
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
            signer,
            model,
            variants,
            variant: None,
        })
    }

    /// The encoding this device runs ([`choose`]): a variant becomes the bundle's model, with its
    /// input, thresholds and metrics, so everything downstream (detector, verdict rule, self-test)
    /// runs it unchanged. The bytes of the encodings not chosen are dropped, so a bundle is selected
    /// once, right after [`Bundle::open`].
    pub fn select(mut self, choice: &EncodingChoice, gpu: bool) -> Result<Bundle, BundleError> {
        let picked =
            choose(&self.manifest, choice, gpu).map_err(|source| BundleError::Variant {
                bundle: self.dir.clone(),
                source,
            })?;
        let mut bytes = std::mem::take(&mut self.variants);
        if let Some(i) = picked {
            let v = self.manifest.variants[i].clone();
            let m = &mut self.manifest;
            m.model.file = v.file;
            m.model.sha256 = v.sha256;
            m.model.input.name = v.input.name;
            m.model.input.dtype = v.input.dtype;
            m.model.input.width = v.input.width;
            m.model.input.height = v.input.height;
            m.thresholds = v.thresholds;
            m.metrics = v.metrics;
            self.model = bytes.swap_remove(i);
            self.variant = Some(v.name);
        }
        Ok(self)
    }

    /// The variant this bundle runs (`None`: the main model).
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the model was read from (for messages; the bytes that run are [`Bundle::model_bytes`]).
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.model.file)
    }

    /// The model's bytes, exactly those whose digest was checked.
    pub fn model_bytes(&self) -> &Arc<[u8]> {
        &self.model
    }

    /// The trusted key file that signed this bundle.
    pub fn signer(&self) -> &Path {
        &self.signer
    }
}

/// Holds the folder to the manifest's `files`: exactly the files named (but the manifest and its
/// signature), each with its digest. The model and the variants were checked already (and the manifest
/// parser made sure the list gives them the same digests); the names are compared before any other file
/// is read, so an unsigned file of any size costs one directory listing.
fn check_listed_files(dir: &Path, manifest: &Manifest) -> Result<(), BundleError> {
    let Some(listed) = &manifest.files else {
        return Err(BundleError::NoFileList {
            bundle: dir.to_path_buf(),
        });
    };
    let present = bundle_files(dir)?;
    let unlisted: Vec<String> = present
        .iter()
        .filter(|p| !listed.contains_key(*p))
        .cloned()
        .collect();
    if !unlisted.is_empty() {
        return Err(BundleError::Unlisted {
            bundle: dir.to_path_buf(),
            files: unlisted,
        });
    }
    let missing: Vec<String> = listed
        .keys()
        .filter(|name| !present.contains(*name))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(BundleError::FilesMissing {
            bundle: dir.to_path_buf(),
            files: missing,
        });
    }
    let checked: Vec<&str> = std::iter::once(manifest.model.file.as_str())
        .chain(manifest.variants.iter().map(|v| v.file.as_str()))
        .collect();
    for (name, expected) in listed {
        if checked.contains(&name.as_str()) {
            continue;
        }
        let path = dir.join(name);
        let actual = sha256_file(&path).map_err(|e| BundleError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(BundleError::Digest {
                bundle: dir.to_path_buf(),
                file: name.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// The files of a bundle folder but `manifest.json` and `manifest.sig`, by their path in the bundle
/// (`selftest/a.jpg`), sorted: what the manifest's `files` must name. A folder two levels down is
/// listed as `a/b/` (no list can name it) rather than walked; a link or a special file is refused.
pub fn bundle_files(dir: &Path) -> Result<std::collections::BTreeSet<String>, BundleError> {
    let mut out = std::collections::BTreeSet::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| BundleError::Read {
            path: folder.clone(),
            message: e.to_string(),
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| BundleError::Read {
                path: folder.clone(),
                message: e.to_string(),
            })?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if prefix.is_empty() && SIGNATURE_FILES.contains(&name.as_str()) {
                continue;
            }
            let kind = entry.file_type().map_err(|e| BundleError::Read {
                path: entry.path(),
                message: e.to_string(),
            })?;
            if kind.is_dir() {
                if prefix.is_empty() {
                    pending.push((entry.path(), format!("{name}/")));
                } else {
                    out.insert(format!("{name}/"));
                }
            } else if kind.is_file() {
                out.insert(name);
            } else {
                return Err(BundleError::NotAFile {
                    bundle: dir.to_path_buf(),
                    file: name,
                });
            }
        }
    }
    Ok(out)
}

/// The `files` list of what the bundle folder `dir` holds now: every file but the manifest and its
/// signature, with its SHA-256 (for tools and tests that assemble a bundle to sign).
pub fn list_files(dir: &Path) -> Result<std::collections::BTreeMap<String, String>, BundleError> {
    bundle_files(dir)?
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            sha256_file(&path)
                .map(|digest| (name, digest))
                .map_err(|e| BundleError::Read {
                    path,
                    message: e.to_string(),
                })
        })
        .collect()
}

/// The SHA-256 of a file, read in blocks.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Reads `file` from the bundle folder and checks its SHA-256 against the manifest's.
fn read_verified(dir: &Path, file: &str, expected: &str) -> Result<Arc<[u8]>, BundleError> {
    let path = dir.join(file);
    if !path.is_file() {
        return Err(BundleError::ModelMissing {
            bundle: dir.to_path_buf(),
            file: file.to_string(),
        });
    }
    let bytes: Arc<[u8]> = std::fs::read(&path)
        .map_err(|e| BundleError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?
        .into();
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(BundleError::Digest {
            bundle: dir.to_path_buf(),
            file: file.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_proto::manifest::fixtures::sample_json;
    use signature::tests::{sign, trusted};

    /// The `files` list of what `dir` holds now.
    fn list(dir: &Path) -> serde_json::Value {
        serde_json::to_value(list_files(dir).unwrap()).unwrap()
    }

    /// A bundle folder with a fake model file (and whatever `dir` holds already, listed), signed by key
    /// `seed`.
    fn write_bundle(
        dir: &Path,
        model: &[u8],
        seed: Option<u8>,
        tweak: impl FnOnce(&mut serde_json::Value),
    ) {
        std::fs::write(dir.join("model.onnx"), model).unwrap();
        let mut v = sample_json();
        v["model"]["sha256"] = hex::encode(Sha256::digest(model)).into();
        v["files"] = list(dir);
        tweak(&mut v);
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        std::fs::write(dir.join("manifest.json"), &bytes).unwrap();
        if let Some(seed) = seed {
            std::fs::write(dir.join("manifest.sig"), sign(seed, &bytes)).unwrap();
        }
    }

    #[test]
    fn a_signed_consistent_bundle_opens() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), b"model", Some(1), |_| {});
        let b = Bundle::open(dir.path(), &trusted(1)).unwrap();
        assert_eq!(b.manifest().brand, "northwind");
        assert_eq!(b.model_path(), dir.path().join("model.onnx"));
        assert_eq!(&b.model_bytes()[..], b"model");
    }

    #[test]
    fn the_kept_bytes_are_the_verified_ones_even_if_the_file_changes_later() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), b"model", Some(1), |_| {});
        let b = Bundle::open(dir.path(), &trusted(1)).unwrap();
        std::fs::write(dir.path().join("model.onnx"), b"swapped").unwrap();
        assert_eq!(&b.model_bytes()[..], b"model");
    }

    /// A bundle with a 224 variant in `fast.onnx` holding `bytes` (its digest is of `signed`).
    fn write_with_variant(dir: &Path, signed: &[u8], bytes: &[u8]) {
        std::fs::write(dir.join("fast.onnx"), bytes).unwrap();
        write_bundle(dir, b"model", Some(1), |v| {
            v["files"]["fast.onnx"] = hex::encode(Sha256::digest(signed)).into();
            v["variants"] = serde_json::json!([{
                "name": "fast-224", "file": "fast.onnx", "sha256": hex::encode(Sha256::digest(signed)),
                "precision": "fp32", "input": {"name": "x", "width": 224, "height": 224},
                "thresholds": {"confidence": 0.3, "iou": 0.5, "genuine": 0.7, "counterfeit": 0.9},
                "metrics": {"variant": true}
            }]);
        });
    }

    #[test]
    fn a_selected_variant_becomes_the_model_with_its_own_input_and_thresholds() {
        let dir = tempfile::tempdir().unwrap();
        write_with_variant(dir.path(), b"fast", b"fast");
        let open = || Bundle::open(dir.path(), &trusted(1)).unwrap();
        let main = open().select(&EncodingChoice::default(), false).unwrap();
        assert_eq!(
            (&main.model_bytes()[..], main.variant()),
            (&b"model"[..], None)
        );
        assert_eq!(main.manifest().model.input.width, 320);
        let choice = EncodingChoice {
            variant: Some("fast-224".into()),
            ..Default::default()
        };
        let fast = open().select(&choice, false).unwrap();
        assert_eq!(&fast.model_bytes()[..], b"fast");
        assert_eq!(fast.variant(), Some("fast-224"));
        let m = fast.manifest();
        assert_eq!(
            (m.model.input.name.as_str(), m.model.input.width),
            ("x", 224)
        );
        assert_eq!(
            (m.thresholds.counterfeit, m.model.file.as_str()),
            (0.9, "fast.onnx")
        );
        assert_eq!(m.metrics["variant"], true);
        let unknown = EncodingChoice {
            variant: Some("tiny".into()),
            ..Default::default()
        };
        let err = open().select(&unknown, false).unwrap_err().to_string();
        assert!(
            err.contains("no variant \"tiny\"") && err.contains("fast-224"),
            "{err}"
        );
    }

    #[test]
    fn a_tampered_or_missing_variant_file_refuses_the_whole_bundle() {
        let dir = tempfile::tempdir().unwrap();
        write_with_variant(dir.path(), b"fast", b"slow");
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(
            matches!(&err, BundleError::Digest { file, .. } if file == "fast.onnx"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("fast.onnx")).unwrap();
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(
            matches!(&err, BundleError::ModelMissing { file, .. } if file == "fast.onnx"),
            "{err}"
        );
    }

    /// A bundle with a self-test and reference artwork, all listed.
    fn write_full(dir: &Path) {
        std::fs::create_dir(dir.join("selftest")).unwrap();
        std::fs::write(dir.join("selftest/a.jpg"), b"image").unwrap();
        std::fs::write(dir.join("selftest/expected.json"), b"{}").unwrap();
        std::fs::create_dir(dir.join("reference")).unwrap();
        std::fs::write(dir.join("reference/earl-grey.png"), b"png").unwrap();
        write_bundle(dir, b"model", Some(1), |_| {});
    }

    #[test]
    fn every_file_of_a_bundle_is_named_with_its_digest_or_the_bundle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_full(dir.path());
        let b = Bundle::open(dir.path(), &trusted(1)).unwrap();
        assert_eq!(b.manifest().files.as_ref().map(|f| f.len()), Some(4));

        // Files nobody signed: refused, each named, whatever they hold.
        std::fs::write(dir.path().join("run.sh"), b"#!/bin/sh").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        std::fs::create_dir_all(dir.path().join("selftest/deeper")).unwrap();
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(
            matches!(&err, BundleError::Unlisted { files, .. }
                if files == &[".hidden", "run.sh", "selftest/deeper/"]),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("not named in the signed manifest's files, refused: .hidden, run.sh"),
            "{err}"
        );
        for extra in [".hidden", "run.sh"] {
            std::fs::remove_file(dir.path().join(extra)).unwrap();
        }
        std::fs::remove_dir(dir.path().join("selftest/deeper")).unwrap();

        // A listed file changed: a digest mismatch naming it.
        std::fs::write(dir.path().join("reference/earl-grey.png"), b"other").unwrap();
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(
            matches!(&err, BundleError::Digest { file, .. } if file == "reference/earl-grey.png"),
            "{err}"
        );
        std::fs::write(dir.path().join("reference/earl-grey.png"), b"png").unwrap();

        // The self-test stripped.
        std::fs::remove_dir_all(dir.path().join("selftest")).unwrap();
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(
            matches!(&err, BundleError::FilesMissing { files, .. }
                if files == &["selftest/a.jpg", "selftest/expected.json"]),
            "{err}"
        );
    }

    #[test]
    fn a_link_in_a_bundle_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        write_full(dir.path());
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("reference/x.png")).unwrap();
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(
            matches!(&err, BundleError::NotAFile { file, .. } if file == "reference/x.png"),
            "{err}"
        );
    }

    #[test]
    fn a_manifest_signed_before_file_lists_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), b"model", Some(1), |v| {
            v.as_object_mut().unwrap().remove("files");
        });
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(matches!(err, BundleError::NoFileList { .. }), "{err}");
        assert!(err.to_string().contains("relist"), "{err}");
    }

    #[test]
    fn a_missing_signature_is_reported_as_unsigned() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), b"model", None, |_| {});
        assert!(matches!(
            Bundle::open(dir.path(), &trusted(1)),
            Err(BundleError::Unsigned(_))
        ));
    }

    #[test]
    fn a_signature_by_an_untrusted_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), b"model", Some(2), |_| {});
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::Signature {
                    source: SignatureError::Untrusted { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_swapped_model_is_a_digest_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), b"model", Some(1), |_| {});
        std::fs::write(dir.path().join("model.onnx"), b"another model").unwrap();
        let err = Bundle::open(dir.path(), &trusted(1)).unwrap_err();
        assert!(matches!(err, BundleError::Digest { .. }));
        assert!(err.to_string().contains("digest mismatch"), "{err}");
    }

    #[test]
    fn a_signed_but_invalid_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), b"model", Some(1), |v| {
            v["schema"] = "other/1".into()
        });
        assert!(matches!(
            Bundle::open(dir.path(), &trusted(1)),
            Err(BundleError::Manifest { .. })
        ));
    }

    #[test]
    fn a_missing_folder_is_not_found() {
        assert!(matches!(
            Bundle::open(Path::new("/no/such/bundle"), &trusted(1)),
            Err(BundleError::NotFound(_))
        ));
    }
}
