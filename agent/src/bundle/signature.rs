//! Trust: the Ed25519 public keys an agent accepts, and the check of `manifest.sig` against them.
//!
//! Keys are SPKI PEM files (`-----BEGIN PUBLIC KEY-----`, as `openssl genpkey -algorithm ed25519`
//! writes them); a signature is one line of standard base64 over the exact bytes of `manifest.json`.
//! Verification is strict (no malleable signatures, no weak keys).

use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::{pkcs8::DecodePublicKey, Signature, VerifyingKey};
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::{pkcs8::EncodePublicKey, Signer, SigningKey};

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
}
