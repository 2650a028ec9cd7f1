//! Trust: the Ed25519 public keys an agent accepts, and the check of `manifest.sig` against them.
//!
//! Keys are SPKI PEM files (`-----BEGIN PUBLIC KEY-----`, as `openssl genpkey -algorithm ed25519`
//! writes them); a signature is one line of standard base64 over the exact bytes of `manifest.json`.
//! Verification is strict (no malleable signatures, no weak keys).
//!
//! Signing lives here too ([`SigningKeyFile`]), so `hallmark publish` writes `manifest.sig` exactly as
//! the model pipeline does (`models/pipeline/hallmark_models/bundle.py`: standard base64 of the 64-byte
//! signature, padding kept, one trailing newline). Ed25519 is deterministic, so both produce the same
//! bytes for the same key and manifest.

use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrustError {
    #[error("cannot read public key {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is not an Ed25519 public key in SPKI PEM form: {message}")]
    Key { path: PathBuf, message: String },
    #[error("no trusted public keys are configured")]
    NoKeys,
}

#[derive(Debug, Error, PartialEq)]
pub enum SignatureError {
    #[error("manifest.sig is not one line of base64 holding a 64-byte Ed25519 signature: {0}")]
    Malformed(String),
    #[error("manifest.sig does not verify against any of the {keys} trusted public key(s): the manifest was altered or signed by an untrusted key")]
    Untrusted { keys: usize },
}

/// One trusted key, with where it came from.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub source: PathBuf,
    key: VerifyingKey,
}

/// The public keys whose signatures are accepted.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// Reads each PEM file; every one must be a valid Ed25519 public key.
    pub fn from_pem_files(paths: &[PathBuf]) -> Result<TrustedKeys, TrustError> {
        if paths.is_empty() {
            return Err(TrustError::NoKeys);
        }
        let mut keys = Vec::with_capacity(paths.len());
        for path in paths {
            let pem = std::fs::read_to_string(path).map_err(|e| TrustError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            keys.push(Self::parse(path, &pem)?);
        }
        Ok(TrustedKeys { keys })
    }

    /// One key from PEM text.
    pub fn parse(source: &Path, pem: &str) -> Result<TrustedKey, TrustError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| TrustError::Key {
            path: source.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(TrustedKey {
            source: source.to_path_buf(),
            key,
        })
    }

    pub fn from_keys(keys: Vec<TrustedKey>) -> TrustedKeys {
        TrustedKeys { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that signed `message`, given the contents of a `.sig` file.
    pub fn verify(&self, message: &[u8], sig_file: &[u8]) -> Result<&TrustedKey, SignatureError> {
        let text = std::str::from_utf8(sig_file)
            .map_err(|_| SignatureError::Malformed("not text".into()))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| SignatureError::Malformed(e.to_string()))?;
        let sig = Signature::from_slice(&raw)
            .map_err(|_| SignatureError::Malformed(format!("{} bytes, expected 64", raw.len())))?;
        self.keys
            .iter()
            .find(|k| k.key.verify_strict(message, &sig).is_ok())
            .ok_or(SignatureError::Untrusted {
                keys: self.keys.len(),
            })
    }
}

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read private key {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is not an Ed25519 private key in PKCS#8 PEM form: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot encode the key as PEM: {0}")]
    Encode(String),
}

/// A publisher's private key, with where it came from.
pub struct SigningKeyFile {
    pub source: PathBuf,
    key: SigningKey,
}

impl std::fmt::Debug for SigningKeyFile {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyFile")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A fresh random key (from the operating system's generator, through `rand`).
pub fn generate_signing_key() -> SigningKeyFile {
    SigningKeyFile {
        source: PathBuf::from("(generated)"),
        key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
    }
}

impl SigningKeyFile {
    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm
    /// ed25519` and `hallmark keygen` write it).
    pub fn from_pem_file(path: &Path) -> Result<SigningKeyFile, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Key {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(SigningKeyFile {
            source: path.to_path_buf(),
            key,
        })
    }

    /// The private key as PKCS#8 v1 PEM (RFC 8410: the 32-byte seed, no public key), byte for byte the
    /// form `openssl genpkey -algorithm ed25519` writes.
    ///
    /// Design: `ed25519-dalek`'s own encoding is PKCS#8 v2 with the public key attached, whose `[1]`
    /// field OpenSSL 3 and Python `cryptography` refuse ("extra data"); an operator must be able to keep
    /// the key in their own tooling (OpenSSL, an HSM or KMS importing PKCS#8). Keys in that older form
    /// are still read ([`SigningKeyFile::from_pem_file`]).
    pub fn private_pem(&self) -> Result<String, KeyError> {
        let bytes = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// The public key as SPKI PEM (what agents list in `trust.public_keys`).
    pub fn public_pem(&self) -> Result<String, KeyError> {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// The public half as a trusted key (to check what was just signed).
    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::from_keys(vec![TrustedKey {
            source: self.source.clone(),
            key: self.key.verifying_key(),
        }])
    }

    /// The contents of `manifest.sig` for `manifest` (the exact bytes of `manifest.json`).
    pub fn sign_manifest(&self, manifest: &[u8]) -> String {
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(self.key.sign(manifest).to_bytes())
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    pub(crate) fn trusted(seed: u8) -> TrustedKeys {
        let pem = signing_key(seed)
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        TrustedKeys::from_keys(vec![
            TrustedKeys::parse(Path::new("test.pem"), &pem).unwrap()
        ])
    }

    pub(crate) fn sign(seed: u8, message: &[u8]) -> String {
        let sig = signing_key(seed).sign(message);
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
        )
    }

    #[test]
    fn a_signature_by_a_trusted_key_verifies() {
        let keys = trusted(7);
        assert!(keys
            .verify(b"manifest bytes", sign(7, b"manifest bytes").as_bytes())
            .is_ok());
    }

    #[test]
    fn an_altered_message_or_another_key_is_untrusted() {
        let keys = trusted(7);
        let sig = sign(7, b"manifest bytes");
        assert_eq!(
            keys.verify(b"manifest bytez", sig.as_bytes()).unwrap_err(),
            SignatureError::Untrusted { keys: 1 }
        );
        assert!(matches!(
            keys.verify(b"m", sign(8, b"m").as_bytes()),
            Err(SignatureError::Untrusted { .. })
        ));
    }

    #[test]
    fn garbage_signature_files_are_malformed() {
        let keys = trusted(7);
        assert!(matches!(
            keys.verify(b"m", b"not base64!"),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            keys.verify(b"m", b"AAAA\n"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn a_private_key_or_junk_is_not_accepted_as_a_public_key() {
        assert!(TrustedKeys::parse(
            Path::new("x.pem"),
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        )
        .is_err());
        assert!(matches!(
            TrustedKeys::from_pem_files(&[]),
            Err(TrustError::NoKeys)
        ));
    }

    #[test]
    fn a_generated_key_round_trips_through_pem_and_signs_what_verify_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_signing_key();
        let (private, public) = (dir.path().join("k.pem"), dir.path().join("p.pem"));
        std::fs::write(&private, key.private_pem().unwrap()).unwrap();
        std::fs::write(&public, key.public_pem().unwrap()).unwrap();
        let again = SigningKeyFile::from_pem_file(&private).unwrap();
        let sig = again.sign_manifest(b"manifest");
        assert_eq!(sig, key.sign_manifest(b"manifest"));
        assert!(sig.ends_with('\n') && sig.len() == 89, "{sig:?}");
        let trust = TrustedKeys::from_pem_files(&[public]).unwrap();
        assert!(trust.verify(b"manifest", sig.as_bytes()).is_ok());
        assert!(key.trusted().verify(b"manifest", sig.as_bytes()).is_ok());
    }

    #[test]
    fn the_private_key_is_pkcs8_v1_and_a_v2_key_of_an_older_keygen_still_reads() {
        use base64::Engine;
        let key = SigningKeyFile {
            source: PathBuf::from("seed"),
            key: signing_key(5),
        };
        let pem = key.private_pem().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }.
        let mut want = hex::decode("302e020100300506032b657004220420").unwrap();
        want.extend_from_slice(&[5; 32]);
        assert_eq!(der, want);
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("v2.pem");
        let dalek_v2 = signing_key(5).to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(
            dalek_v2.len() > pem.len(),
            "the v2 form carries the public key"
        );
        std::fs::write(&v2, dalek_v2.as_bytes()).unwrap();
        assert_eq!(
            SigningKeyFile::from_pem_file(&v2)
                .unwrap()
                .sign_manifest(b"m"),
            key.sign_manifest(b"m")
        );
    }

    #[test]
    fn the_same_format_as_the_test_helper_and_the_pipeline() {
        let key = SigningKeyFile {
            source: PathBuf::from("seed"),
            key: signing_key(3),
        };
        assert_eq!(key.sign_manifest(b"m"), sign(3, b"m"));
    }

    #[test]
    fn a_public_key_is_not_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.pem");
        std::fs::write(&p, generate_signing_key().public_pem().unwrap()).unwrap();
        assert!(matches!(
            SigningKeyFile::from_pem_file(&p),
            Err(KeyError::Key { .. })
        ));
    }
}
