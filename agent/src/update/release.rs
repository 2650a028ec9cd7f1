//! The release message (`hallmark.release/1`): what a fleet operator publishes, retained, to announce a
//! model bundle, and which of the two topics wins for a brand.
//!
//! Parsing is strict on purpose: a release makes a device download and run code-like data, so anything
//! unexpected (an unknown field, a `file:` URL, a size past the device's limit) is refused with a cause
//! the operator can read in the device's status topic, rather than guessed at.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::rollback::{is_signature, Statement, MAX_DOCUMENT};

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
        reqwest::Url::parse(url).map_err(|e| ReleaseError::Url(format!("is not a URL ({e})")))?;
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
    match reqwest::Url::parse(url) {
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

/// Which topic a release came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `{prefix}/fleet/models/{brand}`: every device.
    Fleet,
    /// `{prefix}/things/{thing}/models/{brand}`: this device only (a canary); wins over the fleet.
    Device,
}

/// Recognises the two release topics of this device and returns their brand; anything else
/// (the status topic, another device's topic, a bad brand) is `None`.
pub fn topic_brand(topic: &str, prefix: &str, thing: &str) -> Option<(Scope, String)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (scope, brand) = if let Some(brand) = rest.strip_prefix("fleet/models/") {
        (Scope::Fleet, brand)
    } else {
        let rest = rest.strip_prefix("things/")?.strip_prefix(thing)?;
        (Scope::Device, rest.strip_prefix("/models/")?)
    };
    is_brand(brand).then(|| (scope, brand.to_owned()))
}

/// What changed for a brand after a message on a release topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub scope: Scope,
    pub brand: String,
    /// `false` when the message cleared that scope's release (an empty retained payload).
    pub set: bool,
}

/// The latest fleet and device release per brand, as the retained topics say.
#[derive(Debug, Clone, Default)]
pub struct Releases {
    fleet: BTreeMap<String, Release>,
    device: BTreeMap<String, Release>,
}

impl Releases {
    pub fn new() -> Releases {
        Releases::default()
    }

    /// Sets (or with `None` clears) the release of one scope for one brand.
    pub fn set(&mut self, scope: Scope, brand: &str, release: Option<Release>) {
        let map = match scope {
            Scope::Fleet => &mut self.fleet,
            Scope::Device => &mut self.device,
        };
        match release {
            Some(r) => {
                map.insert(brand.to_owned(), r);
            }
            None => {
                map.remove(brand);
            }
        }
    }

    /// The release that applies to `brand`: the device's when there is one, else the fleet's.
    pub fn effective(&self, brand: &str) -> Option<&Release> {
        self.device.get(brand).or_else(|| self.fleet.get(brand))
    }

    /// The release of one scope, whether or not it is the effective one.
    pub fn get(&self, scope: Scope, brand: &str) -> Option<&Release> {
        match scope {
            Scope::Fleet => self.fleet.get(brand),
            Scope::Device => self.device.get(brand),
        }
    }

    /// Every brand with a release in either scope, sorted.
    pub fn brands(&self) -> Vec<&str> {
        let mut brands: Vec<&str> = self
            .fleet
            .keys()
            .chain(self.device.keys())
            .map(String::as_str)
            .collect();
        brands.sort_unstable();
        brands.dedup();
        brands
    }

    /// Applies one MQTT message: `None` when the topic is not a release topic of this device;
    /// otherwise what changed, or why the payload was refused (the previous release of that scope
    /// then stays, so a bad publish does not undo a good one).
    pub fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        prefix: &str,
        thing: &str,
        max_size: u64,
    ) -> Option<Result<Change, ReleaseError>> {
        let (scope, brand) = topic_brand(topic, prefix, thing)?;
        if payload.is_empty() {
            // An empty retained message is how MQTT deletes a retained release.
            self.set(scope, &brand, None);
            return Some(Ok(Change {
                scope,
                brand,
                set: false,
            }));
        }
        let release = match parse(payload, max_size) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        if release.brand != brand {
            return Some(Err(ReleaseError::BrandMismatch {
                topic: brand,
                payload: release.brand,
            }));
        }
        self.set(scope, &brand, Some(release));
        Some(Ok(Change {
            scope,
            brand,
            set: true,
        }))
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
    fn topics() {
        let cases = [
            (
                "hallmark/fleet/models/northwind",
                Some((Scope::Fleet, "northwind")),
            ),
            (
                "hallmark/things/kiosk-1/models/northwind",
                Some((Scope::Device, "northwind")),
            ),
            ("hallmark/things/kiosk-1/models/northwind/status", None),
            ("hallmark/things/kiosk-2/models/northwind", None),
            ("hallmark/things/kiosk-1x/models/northwind", None),
            ("hallmark/fleet/models/northwind/extra", None),
            ("hallmark/fleet/models/", None),
            ("hallmark/fleet/models/North", None),
            ("hallmarkx/fleet/models/northwind", None),
            ("other/fleet/models/northwind", None),
            ("hallmark/things/kiosk-1/verdicts", None),
            ("hallmark/things/kiosk-1/online", None),
        ];
        for (topic, want) in cases {
            let got = topic_brand(topic, "hallmark", "kiosk-1");
            assert_eq!(got, want.map(|(s, b)| (s, b.to_owned())), "{topic}");
        }
        // A prefix with levels of its own.
        assert_eq!(
            topic_brand("acme/hm/fleet/models/b1", "acme/hm", "t"),
            Some((Scope::Fleet, "b1".into()))
        );
    }

    fn release(brand: &str, revision: u64) -> Release {
        Release {
            brand: brand.into(),
            revision,
            url: "http://h/x.tar".into(),
            sha256: SHA.into(),
            size: 10,
            rollback: false,
            statement: None,
        }
    }

    #[test]
    fn the_device_release_wins_and_an_empty_payload_clears() {
        let mut r = Releases::new();
        assert_eq!(r.effective("a"), None);
        r.set(Scope::Fleet, "a", Some(release("a", 2)));
        assert_eq!(r.effective("a").map(|r| r.revision), Some(2));
        r.set(Scope::Device, "a", Some(release("a", 3)));
        assert_eq!(r.effective("a").map(|r| r.revision), Some(3));
        // A newer fleet release does not override the canary: the device topic wins while it is set.
        r.set(Scope::Fleet, "a", Some(release("a", 4)));
        assert_eq!(r.effective("a").map(|r| r.revision), Some(3));
        r.set(Scope::Device, "a", None);
        assert_eq!(r.effective("a").map(|r| r.revision), Some(4));
        r.set(Scope::Fleet, "b", Some(release("b", 1)));
        assert_eq!(r.brands(), vec!["a", "b"]);
        assert_eq!(r.effective("b").map(|r| r.revision), Some(1));
    }

    #[test]
    fn on_message() {
        let mut r = Releases::new();
        let body = payload("");
        assert_eq!(
            r.on_message("hallmark/things/k/online", b"{}", "hallmark", "k", LIMIT),
            None
        );
        let change = r.on_message(
            "hallmark/fleet/models/northwind",
            body.as_bytes(),
            "hallmark",
            "k",
            LIMIT,
        );
        assert_eq!(
            change,
            Some(Ok(Change {
                scope: Scope::Fleet,
                brand: "northwind".into(),
                set: true
            }))
        );
        // A release whose brand differs from its topic's is refused; the previous one stays.
        let other = body.replace("\"northwind\"", "\"acme\"");
        let err = r.on_message(
            "hallmark/fleet/models/northwind",
            other.as_bytes(),
            "hallmark",
            "k",
            LIMIT,
        );
        assert!(
            matches!(err, Some(Err(ReleaseError::BrandMismatch { .. }))),
            "{err:?}"
        );
        let err = r.on_message(
            "hallmark/fleet/models/northwind",
            b"{",
            "hallmark",
            "k",
            LIMIT,
        );
        assert!(matches!(err, Some(Err(ReleaseError::Json(_)))));
        assert_eq!(r.effective("northwind").map(|r| r.revision), Some(3));
        let change = r.on_message(
            "hallmark/things/k/models/northwind",
            b"",
            "hallmark",
            "k",
            LIMIT,
        );
        assert_eq!(
            change,
            Some(Ok(Change {
                scope: Scope::Device,
                brand: "northwind".into(),
                set: false
            }))
        );
        let change = r.on_message(
            "hallmark/fleet/models/northwind",
            b"",
            "hallmark",
            "k",
            LIMIT,
        );
        assert_eq!(
            change,
            Some(Ok(Change {
                scope: Scope::Fleet,
                brand: "northwind".into(),
                set: false
            }))
        );
        assert_eq!(r.effective("northwind"), None);
    }
}
