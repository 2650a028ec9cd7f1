//! The release message (`hallmark.release/1`): what a fleet operator publishes, retained, on
//! `{prefix}/fleet/models/{brand}` or one device's `{prefix}/things/{thing}/models/{brand}`, to announce
//! a model bundle; and the wire form of the signed rollback statement a release may carry (checked
//! against the device's trusted keys by the agent's updater, where the keys are).
//!
//! One type, [`Release`]: [`parse`] reads it (devices, `hallmark fleet status`) and its `Serialize`
//! writes it (`hallmark publish`); a round trip is tested. Parsing is strict on purpose: a release
//! makes a device download and run code-like data, so anything unexpected (an unknown field, a `file:`
//! URL, a size past the device's limit) is refused with a cause the operator can read in the device's
//! status topic, rather than guessed at.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only schema this agent understands.
pub const SCHEMA: &str = "hallmark.release/1";
/// A release is a few hundred bytes; anything much larger is not one.
pub const MAX_PAYLOAD: usize = 16 * 1024;

const FIELDS: [&str; 8] = [
    "schema",
    "brand",
    "revision",
    "url",
    "sha256",
    "size",
    "rollback",
    "rollback_statement",
];

/// One parsed, validated release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub brand: String,
    pub revision: u64,
    /// http:// or https:// URL of the bundle `.tar`. It may be a presigned URL whose query is a
    /// credential: log it through [`redact_url`] only.
    pub url: String,
    /// SHA-256 of the `.tar`, 64 lowercase hex digits.
    pub sha256: String,
    /// Size of the `.tar` in bytes (also the most a download may write).
    pub size: u64,
    /// The operator asks for this revision even if it is not newer than the active one. On its own it
    /// moves nothing back: that needs `statement`.
    pub rollback: bool,
    /// A rollback statement signed by a publisher (`rollback.rs`), checked against the device's trusted
    /// keys before it is acted on.
    pub statement: Option<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("release: empty payload")]
    Empty,
    #[error("release: payload of {len} bytes is above the limit of {MAX_PAYLOAD}")]
    PayloadTooLarge { len: usize },
    #[error("release: not JSON ({0})")]
    Json(String),
    #[error("release: not a JSON object")]
    NotObject,
    #[error("release: missing field \"{0}\"")]
    Missing(&'static str),
    #[error("release: field \"{field}\" must be {expected}")]
    Type {
        field: &'static str,
        expected: &'static str,
    },
    #[error("release: unknown schema \"{0}\" (this agent reads \"{SCHEMA}\")")]
    UnknownSchema(String),
    #[error("release: unknown field \"{0}\"")]
    UnknownField(String),
    #[error("release: brand \"{0}\" is not a brand name ([a-z0-9][a-z0-9_-]{{0,63}})")]
    Brand(String),
    #[error("release: revision must be 1 or more")]
    Revision,
    #[error("release: url {0}")]
    Url(String),
    #[error("release: sha256 must be 64 lowercase hex digits")]
    Sha256,
    #[error("release: size must be more than 0")]
    SizeZero,
    #[error("release: size {size} above the limit {limit}")]
    SizeLimit { size: u64, limit: u64 },
    #[error("release: topic names brand \"{topic}\" but the release is for \"{payload}\"")]
    BrandMismatch { topic: String, payload: String },
    #[error("release: rollback_statement {0}")]
    Statement(String),
}

/// Parses and validates a release payload; `max_size` is the largest bundle this device accepts.
pub fn parse(payload: &[u8], max_size: u64) -> Result<Release, ReleaseError> {
    if payload.is_empty() {
        return Err(ReleaseError::Empty);
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(ReleaseError::PayloadTooLarge { len: payload.len() });
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| ReleaseError::Json(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(ReleaseError::NotObject);
    };
    // The schema first: a newer schema is reported as such, not as a list of unknown fields.
    let schema = string(&map, "schema")?;
    if schema != SCHEMA {
        return Err(ReleaseError::UnknownSchema(truncate(schema, 64)));
    }
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ReleaseError::UnknownField(truncate(unknown, 64)));
    }
    let brand = string(&map, "brand")?;
    if !is_brand(brand) {
        return Err(ReleaseError::Brand(truncate(brand, 64)));
    }
    let revision = unsigned(&map, "revision")?;
    if revision == 0 {
        return Err(ReleaseError::Revision);
    }
    let url = string(&map, "url")?;
    check_url(url)?;
    let sha256 = string(&map, "sha256")?;
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReleaseError::Sha256);
    }
    let size = unsigned(&map, "size")?;
    if size == 0 {
        return Err(ReleaseError::SizeZero);
    }
    if size > max_size {
        return Err(ReleaseError::SizeLimit {
            size,
            limit: max_size,
        });
    }
    let rollback = match map.get("rollback") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ReleaseError::Type {
                field: "rollback",
                expected: "true or false",
            })
        }
    };
    let statement = match map.get("rollback_statement") {
        None => None,
        Some(v) => Some(statement(v, rollback)?),
    };
    Ok(Release {
        brand: brand.to_owned(),
        revision,
        url: url.to_owned(),
        sha256: sha256.to_owned(),
        size,
        rollback,
        statement,
    })
}

/// The carried statement's shape (its signature is checked by the updater, which has the keys).
fn statement(v: &Value, rollback: bool) -> Result<Statement, ReleaseError> {
    let s: Statement = serde_json::from_value(v.clone()).map_err(|e| {
        ReleaseError::Statement(format!(
            "must be {{\"document\": string, \"signature\": string}} ({e})"
        ))
    })?;
    if s.document.len() > MAX_DOCUMENT {
        return Err(ReleaseError::Statement(format!(
            "document of {} bytes is above the limit of {MAX_DOCUMENT}",
            s.document.len()
        )));
    }
    if !is_signature(&s.signature) {
        return Err(ReleaseError::Statement(
            "signature must be standard base64 of a 64-byte Ed25519 signature".into(),
        ));
    }
    if !rollback {
        return Err(ReleaseError::Statement(
            "comes only with \"rollback\": true".into(),
        ));
    }
    Ok(s)
}

fn string<'a>(map: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, ReleaseError> {
    match map.get(field) {
        None => Err(ReleaseError::Missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ReleaseError::Type {
            field,
            expected: "a string",
        }),
    }
}

fn unsigned(map: &Map<String, Value>, field: &'static str) -> Result<u64, ReleaseError> {
    match map.get(field) {
        None => Err(ReleaseError::Missing(field)),
        Some(v) => v.as_u64().ok_or(ReleaseError::Type {
            field,
            expected: "a non-negative integer",
        }),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// `[a-z0-9][a-z0-9_-]{0,63}`: safe as a topic level and as a folder name.
pub fn is_brand(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

fn check_url(url: &str) -> Result<(), ReleaseError> {
    // The error never repeats the URL: a presigned URL's query is a credential.
    let parsed =
        url::Url::parse(url).map_err(|e| ReleaseError::Url(format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ReleaseError::Url(format!(
            "scheme \"{}\" is not http or https",
            truncate(parsed.scheme(), 16)
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ReleaseError::Url(
            "must not carry credentials (user:password@)".into(),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ReleaseError::Url("has no host".into()));
    }
    Ok(())
}

/// The URL without its query and fragment, for logs and status details.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let had_query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            if had_query {
                format!("{u}?…")
            } else {
                u.to_string()
            }
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// The rollback statement's schema.
pub const STATEMENT_SCHEMA: &str = "hallmark.rollback/1";
/// A statement's document is about 250 bytes; anything much larger is not one.
pub const MAX_DOCUMENT: usize = 4096;

/// A rollback statement as a release carries it: the document's exact text and its signature
/// (standard base64 of an Ed25519 signature of the document's bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub document: String,
    pub signature: String,
}

/// What a rollback statement says (its `document`, as compact JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub schema: String,
    pub brand: String,
    /// The revision to go back to.
    pub revision: u64,
    /// SHA-256 of that revision's `manifest.json`, 64 lowercase hex digits.
    pub manifest_sha256: String,
    /// The highest revision the rollback withdraws (above `revision`).
    pub supersedes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// Whether `text` is one line of standard base64 of a 64-byte signature, as a statement carries it.
pub fn is_signature(text: &str) -> bool {
    text.len() <= 128
        && base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok_and(|b| b.len() == 64)
}

/// How a release is written: the contract's fields in the contract's order, `rollback` and
/// `rollback_statement` only when set.
#[derive(Serialize)]
struct Wire<'a> {
    schema: &'static str,
    brand: &'a str,
    revision: u64,
    url: &'a str,
    sha256: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rollback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_statement: Option<&'a Statement>,
}

impl Serialize for Release {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            schema: SCHEMA,
            brand: &self.brand,
            revision: self.revision,
            url: &self.url,
            sha256: &self.sha256,
            size: self.size,
            rollback: self.rollback,
            rollback_statement: self.statement.as_ref(),
        }
        .serialize(s)
    }
}

impl Release {
    /// A release of the `.tar` `file_name` served under `url_base` (one slash between, whatever
    /// `url_base` ends with).
    pub fn new(
        brand: &str,
        revision: u64,
        url_base: &str,
        file_name: &str,
        sha256: &str,
        size: u64,
        rollback: bool,
    ) -> Release {
        Release {
            brand: brand.to_string(),
            revision,
            url: format!("{}/{}", url_base.trim_end_matches('/'), file_name),
            sha256: sha256.to_string(),
            size,
            rollback,
            statement: None,
        }
    }

    /// The payload, as `hallmark publish` announces it.
    pub fn to_json(&self) -> String {
        // A struct of plain fields always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    /// Base64 of 64 bytes (a signature's shape).
    const SIG: &str =
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
    const LIMIT: u64 = 268_435_456;

    fn payload(extra: &str) -> String {
        format!(
            r#"{{"schema":"hallmark.release/1","brand":"northwind","revision":3,"url":"https://cdn.example.com/northwind-3.tar","sha256":"{SHA}","size":1000{extra}}}"#
        )
    }

    #[test]
    fn parses_a_good_release() {
        let r = parse(payload("").as_bytes(), LIMIT).unwrap();
        assert_eq!(
            r,
            Release {
                brand: "northwind".into(),
                revision: 3,
                url: "https://cdn.example.com/northwind-3.tar".into(),
                sha256: SHA.into(),
                size: 1000,
                rollback: false,
                statement: None,
            }
        );
        assert!(
            parse(payload(r#","rollback":true"#).as_bytes(), LIMIT)
                .unwrap()
                .rollback
        );
        assert!(
            !parse(payload(r#","rollback":false"#).as_bytes(), LIMIT)
                .unwrap()
                .rollback
        );
        let with = parse(
            payload(&format!(
                r#","rollback":true,"rollback_statement":{{"document":"{{}}","signature":"{SIG}"}}"#
            ))
            .as_bytes(),
            LIMIT,
        )
        .unwrap();
        assert_eq!(
            with.statement,
            Some(Statement {
                document: "{}".into(),
                signature: SIG.into()
            })
        );
    }

    /// Each malformed payload gives its own error, and the message is what an operator reads.
    #[test]
    fn refuses_each_malformation_with_its_cause() {
        let good = payload("");
        let big = "x".repeat(MAX_PAYLOAD + 1);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "release: empty payload"),
            (
                big,
                "release: payload of 16385 bytes is above the limit of 16384",
            ),
            ("{not json".into(), "release: not JSON"),
            ("[1,2]".into(), "release: not a JSON object"),
            (
                good.replace(r#""schema":"hallmark.release/1","#, ""),
                "release: missing field \"schema\"",
            ),
            (
                good.replace("hallmark.release/1", "x"),
                "release: unknown schema \"x\"",
            ),
            (
                good.replace("hallmark.release/1", "hallmark.release/2"),
                "release: unknown schema \"hallmark.release/2\"",
            ),
            (
                good.replace(r#""schema":"hallmark.release/1""#, r#""schema":1"#),
                "release: field \"schema\" must be a string",
            ),
            (payload(r#","extra":1"#), "release: unknown field \"extra\""),
            (
                good.replace(r#""brand":"northwind","#, ""),
                "release: missing field \"brand\"",
            ),
            (
                good.replace("\"northwind\"", "\"North\""),
                "release: brand \"North\" is not a brand name",
            ),
            (
                good.replace("\"northwind\"", "\"../etc\""),
                "release: brand \"../etc\"",
            ),
            (good.replace("\"northwind\"", "\"\""), "release: brand \"\""),
            (
                good.replace("\"northwind\"", "\"_x\""),
                "release: brand \"_x\"",
            ),
            (
                good.replace("\"northwind\"", &format!("\"{}\"", "a".repeat(65))),
                "is not a brand name",
            ),
            (
                good.replace("\"revision\":3", "\"revision\":0"),
                "release: revision must be 1 or more",
            ),
            (
                good.replace("\"revision\":3", "\"revision\":-1"),
                "release: field \"revision\" must be a non-negative integer",
            ),
            (
                good.replace("\"revision\":3", "\"revision\":3.5"),
                "release: field \"revision\" must be a non-negative integer",
            ),
            (
                good.replace("\"revision\":3", "\"revision\":\"3\""),
                "release: field \"revision\" must be a non-negative integer",
            ),
            (
                good.replace(
                    "https://cdn.example.com/northwind-3.tar",
                    "file:///etc/passwd",
                ),
                "release: url scheme \"file\" is not http or https",
            ),
            (
                good.replace("https://cdn.example.com/northwind-3.tar", "ftp://h/x.tar"),
                "release: url scheme \"ftp\" is not http or https",
            ),
            (
                good.replace("https://", "https://user:secret@"),
                "release: url must not carry credentials",
            ),
            (
                good.replace("https://", "https://user@"),
                "release: url must not carry credentials",
            ),
            (
                good.replace("https://cdn.example.com/northwind-3.tar", "northwind-3.tar"),
                "release: url is not a URL",
            ),
            (
                good.replace(SHA, &SHA.to_uppercase()),
                "release: sha256 must be 64 lowercase hex digits",
            ),
            (
                good.replace(SHA, &SHA[1..]),
                "release: sha256 must be 64 lowercase hex digits",
            ),
            (
                good.replace(SHA, &SHA.replace('0', "g")),
                "release: sha256 must be 64 lowercase hex digits",
            ),
            (
                good.replace("\"size\":1000", "\"size\":0"),
                "release: size must be more than 0",
            ),
            (
                good.replace("\"size\":1000", "\"size\":9999999999"),
                "release: size 9999999999 above the limit 268435456",
            ),
            (
                good.replace("\"size\":1000", "\"size\":null"),
                "release: field \"size\" must be a non-negative integer",
            ),
            (
                payload(r#","rollback":"yes""#),
                "release: field \"rollback\" must be true or false",
            ),
            (
                payload(r#","rollback":true,"rollback_statement":"yes""#),
                "release: rollback_statement must be {\"document\": string, \"signature\": string}",
            ),
            (
                payload(&format!(
                    r#","rollback":true,"rollback_statement":{{"document":"{{}}","signature":"{}"}}"#,
                    "A".repeat(8)
                )),
                "release: rollback_statement signature must be standard base64",
            ),
            (
                payload(&format!(
                    r#","rollback":true,"rollback_statement":{{"document":"{}","signature":"{SIG}"}}"#,
                    "x".repeat(5000)
                )),
                "release: rollback_statement document of 5000 bytes is above the limit of 4096",
            ),
            (
                payload(&format!(
                    r#","rollback_statement":{{"document":"{{}}","signature":"{SIG}"}}"#
                )),
                "release: rollback_statement comes only with \"rollback\": true",
            ),
        ];
        for (input, expected) in cases {
            let err = parse(input.as_bytes(), LIMIT).expect_err(&input);
            assert!(
                err.to_string().starts_with(expected) || err.to_string().contains(expected),
                "{input}: got {err}, want {expected}"
            );
        }
    }

    #[test]
    fn a_url_error_never_echoes_the_url() {
        let input = payload("").replace(
            "https://cdn.example.com/northwind-3.tar",
            "s3://bucket/k?X-Amz-Signature=secret",
        );
        let err = parse(input.as_bytes(), LIMIT).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            redact_url("https://h/x.tar?X-Amz-Signature=secret#f"),
            "https://h/x.tar?…"
        );
        assert_eq!(redact_url("http://h:8080/x.tar"), "http://h:8080/x.tar");
    }

    #[test]
    fn what_is_written_parses_back_to_the_same_release() {
        let mut r = Release::new(
            "northwind",
            8,
            "http://h/m/",
            "northwind-8.tar",
            SHA,
            10,
            false,
        );
        assert_eq!(
            serde_json::from_str::<Value>(&r.to_json()).unwrap(),
            serde_json::json!({"schema": "hallmark.release/1", "brand": "northwind", "revision": 8,
                "url": "http://h/m/northwind-8.tar", "sha256": SHA, "size": 10}),
            "exactly the contract's fields"
        );
        assert_eq!(parse(r.to_json().as_bytes(), LIMIT).unwrap(), r);
        r.rollback = true;
        r.statement = Some(Statement {
            document: "{}".into(),
            signature: SIG.into(),
        });
        let text = r.to_json();
        assert!(text.contains("\"rollback\":true"), "{text}");
        assert_eq!(parse(text.as_bytes(), LIMIT).unwrap(), r);
    }
}
