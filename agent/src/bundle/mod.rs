//! Model bundles: a folder holding `manifest.json`, `model.onnx` and `manifest.sig` (see
//! `models/BUNDLE.md`). Opening a bundle checks, in this order, that the manifest is signed by a trusted
//! key (before anything in it is believed), that it is a valid `hallmark.model/1` manifest, and that the
//! model file's SHA-256 is the one the manifest names. Whether the ONNX graph itself agrees with the
//! manifest is checked when a session is built (`hallmark_detect::check`).
//!
//! Design: the model file is read once, hashed, and its bytes kept in the `Bundle`; sessions are built
//! from those bytes (`Bundle::model_bytes`), never by reading the file again, so a file swapped on disk
//! after the check can never be what runs.

mod manifest;
mod signature;
mod variant;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;

pub use manifest::{
    ClassSpec, InputSpec, Manifest, ManifestError, ModelSpec, OutputSpec, Role, Thresholds, SCHEMA,
};
pub use signature::{
    generate_signing_key, KeyError, SignatureError, SigningKeyFile, TrustError, TrustedKey,
    TrustedKeys,
};
pub use variant::{
    choose, variant_for, EncodingChoice, InputDtype, Precision, PrecisionChoice, VariantError,
    VariantInput, VariantSpec,
};

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
    use manifest::tests::sample_json;
    use signature::tests::{sign, trusted};

    /// A bundle folder with a fake model file, signed by key `seed`.
    fn write_bundle(
        dir: &Path,
        model: &[u8],
        seed: Option<u8>,
        tweak: impl FnOnce(&mut serde_json::Value),
    ) {
        std::fs::write(dir.join("model.onnx"), model).unwrap();
        let mut v = sample_json();
        v["model"]["sha256"] = hex::encode(Sha256::digest(model)).into();
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
