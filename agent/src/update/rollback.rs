//! Signed rollback statements: what lets a release take a device to a lower revision.
//!
//! A release message is not signed: anyone who can publish on the release topic can send one. So
//! `"rollback": true` alone moves nothing back. Going below the active revision, below the highest
//! revision the device has run, or to a revision a signed rollback withdrew, needs a statement signed
//! by a trusted publisher key (the same `trust.public_keys` that sign bundles), carried in the release:
//!
//! ```json
//! "rollback": true,
//! "rollback_statement": {
//!   "document": "{\"schema\":\"hallmark.rollback/1\",\"brand\":\"northwind\",\"revision\":27,\"manifest_sha256\":\"…\",\"supersedes\":29,\"created\":\"…\"}",
//!   "signature": "<base64 Ed25519 signature of the document's exact bytes>"
//! }
//! ```
//! The document names the brand, the revision to go back to, the SHA-256 of that revision's
//! `manifest.json` (so it vouches for those exact bytes), and `supersedes`: the highest revision it
//! withdraws. A device takes it only while it has run nothing above `supersedes`, so a statement cannot
//! be replayed once the publisher has moved on; after it, a release alone cannot bring back any revision
//! up to `supersedes` ([`crate::store::Guard`]). `hallmark publish --rollback --supersedes N` makes it.
//!
//! Design: a statement beside the release rather than a list in a newer manifest: going back must work
//! with the older bundle as it was signed (its manifest cannot name what came after it), and a
//! statement is a few hundred bytes an operator can make in the moment, with the key that signs
//! bundles and without a new build.

use std::path::PathBuf;

pub use hallmark_proto::release::{
    is_signature, Document, Statement, MAX_DOCUMENT, STATEMENT_SCHEMA as SCHEMA,
};

use crate::bundle::{SignatureError, SigningKeyFile, TrustedKeys};

/// A statement that verified, for a release of its brand and revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub revision: u64,
    pub manifest_sha256: String,
    pub supersedes: u64,
    /// The trusted key file that signed it.
    pub signer: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RollbackError {
    #[error("rollback statement: {source}")]
    Signature {
        #[source]
        source: SignatureError,
    },
    #[error("rollback statement: the document is not a {SCHEMA} statement: {0}")]
    Document(String),
    #[error("rollback statement names {field} {statement}, the release {release}")]
    Mismatch {
        field: &'static str,
        statement: String,
        release: String,
    },
    #[error("rollback statement: revision {revision} is not below the revision it supersedes, {supersedes}")]
    Order { revision: u64, supersedes: u64 },
    #[error("rollback statement supersedes revisions up to {supersedes} only, and this device has already run or withdrawn revision {seen}: a statement for an older state is not replayed")]
    Stale { supersedes: u64, seen: u64 },
    #[error("rollback statement names the manifest with SHA-256 {expected}, revision {revision}'s has {actual}")]
    Manifest {
        revision: u64,
        expected: String,
        actual: String,
    },
}

/// Signs `document` (as compact JSON) with `key`.
pub fn sign(key: &SigningKeyFile, document: &Document) -> Statement {
    // A struct of plain fields always serialises.
    let text = serde_json::to_string(document).unwrap_or_default();
    Statement {
        signature: key.sign_manifest(text.as_bytes()).trim_end().to_string(),
        document: text,
    }
}

/// Checks the signature of `statement` against `trust`, then that the document is well formed and
/// names the release's brand and revision.
pub fn verify(
    statement: &Statement,
    trust: &TrustedKeys,
    brand: &str,
    revision: u64,
) -> Result<Grant, RollbackError> {
    let signer = trust
        .verify(
            statement.document.as_bytes(),
            statement.signature.as_bytes(),
        )
        .map_err(|source| RollbackError::Signature { source })?
        .source
        .clone();
    let doc: Document = serde_json::from_str(&statement.document)
        .map_err(|e| RollbackError::Document(e.to_string()))?;
    if doc.schema != SCHEMA {
        return Err(RollbackError::Document(format!("schema {:?}", doc.schema)));
    }
    if !is_sha256(&doc.manifest_sha256) {
        return Err(RollbackError::Document(
            "manifest_sha256 must be 64 lowercase hex digits".into(),
        ));
    }
    if doc.brand != brand {
        return Err(RollbackError::Mismatch {
            field: "brand",
            statement: doc.brand,
            release: brand.to_string(),
        });
    }
    if doc.revision != revision {
        return Err(RollbackError::Mismatch {
            field: "revision",
            statement: doc.revision.to_string(),
            release: revision.to_string(),
        });
    }
    if doc.revision >= doc.supersedes {
        return Err(RollbackError::Order {
            revision: doc.revision,
            supersedes: doc.supersedes,
        });
    }
    Ok(Grant {
        revision: doc.revision,
        manifest_sha256: doc.manifest_sha256,
        supersedes: doc.supersedes,
        signer,
    })
}

impl Grant {
    /// Whether the statement still applies to a device whose active revision is `active` and that has
    /// run up to `highest` and applied a signed rollback up to `withdrawn`: it must supersede all of
    /// them (equal is the same statement again).
    pub fn check_device(
        &self,
        active: Option<u64>,
        highest: Option<u64>,
        withdrawn: Option<u64>,
    ) -> Result<(), RollbackError> {
        match [active, highest, withdrawn].into_iter().flatten().max() {
            Some(seen) if seen > self.supersedes => Err(RollbackError::Stale {
                supersedes: self.supersedes,
                seen,
            }),
            _ => Ok(()),
        }
    }

    /// Whether the bundle that arrived is the one the statement vouches for (`manifest`: the exact
    /// bytes of its `manifest.json`).
    pub fn check_manifest(&self, manifest: &[u8]) -> Result<(), RollbackError> {
        use sha2::{Digest, Sha256};
        let actual = hex::encode(Sha256::digest(manifest));
        if actual == self.manifest_sha256 {
            Ok(())
        } else {
            Err(RollbackError::Manifest {
                revision: self.revision,
                expected: self.manifest_sha256.clone(),
                actual,
            })
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::generate_signing_key;

    fn doc(revision: u64, supersedes: u64) -> Document {
        Document {
            schema: SCHEMA.into(),
            brand: "northwind".into(),
            revision,
            manifest_sha256: "ab".repeat(32),
            supersedes,
            created: Some("2026-12-07T20:00:00Z".into()),
        }
    }

    #[test]
    fn a_signed_statement_grants_its_revision_and_nothing_else() {
        let key = generate_signing_key();
        let trust = key.trusted();
        let s = sign(&key, &doc(27, 29));
        let g = verify(&s, &trust, "northwind", 27).unwrap();
        assert_eq!((g.revision, g.supersedes), (27, 29));
        assert!(is_signature(&s.signature));
        assert_eq!(
            verify(&s, &trust, "northwind", 28),
            Err(RollbackError::Mismatch {
                field: "revision",
                statement: "27".into(),
                release: "28".into()
            })
        );
        assert!(matches!(
            verify(&s, &trust, "aurora", 27),
            Err(RollbackError::Mismatch { field: "brand", .. })
        ));
        // Another key, or an edited document: the signature fails.
        let other = generate_signing_key().trusted();
        assert!(matches!(
            verify(&s, &other, "northwind", 27),
            Err(RollbackError::Signature { .. })
        ));
        let edited = Statement {
            document: s.document.replace("29", "99"),
            ..s.clone()
        };
        assert!(matches!(
            verify(&edited, &trust, "northwind", 27),
            Err(RollbackError::Signature { .. })
        ));
        // Signed, but not a sensible statement.
        let up = sign(&key, &doc(29, 27));
        assert!(matches!(
            verify(&up, &trust, "northwind", 29),
            Err(RollbackError::Order { .. })
        ));
        let mut odd = doc(27, 29);
        odd.schema = "hallmark.model/1".into();
        assert!(matches!(
            verify(&sign(&key, &odd), &trust, "northwind", 27),
            Err(RollbackError::Document(_))
        ));
        // A signed manifest is not a statement (another schema, other fields).
        let manifest = br#"{"schema":"hallmark.model/1","brand":"northwind","revision":27}"#;
        let as_statement = Statement {
            document: String::from_utf8(manifest.to_vec()).unwrap(),
            signature: key.sign_manifest(manifest).trim_end().into(),
        };
        assert!(matches!(
            verify(&as_statement, &trust, "northwind", 27),
            Err(RollbackError::Document(_))
        ));
    }

    #[test]
    fn a_statement_is_not_taken_once_the_device_went_past_what_it_supersedes() {
        let g = Grant {
            revision: 27,
            manifest_sha256: "ab".repeat(32),
            supersedes: 29,
            signer: "k".into(),
        };
        assert_eq!(g.check_device(Some(29), Some(29), None), Ok(()));
        assert_eq!(g.check_device(Some(27), Some(29), Some(29)), Ok(()));
        assert_eq!(
            g.check_device(Some(28), Some(30), None),
            Err(RollbackError::Stale {
                supersedes: 29,
                seen: 30
            })
        );
        assert!(g.check_device(Some(27), Some(29), Some(31)).is_err());
        assert!(g.check_manifest(b"other").is_err());
    }
}
