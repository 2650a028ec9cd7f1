//! The fleet side of model updates: the release announcement a publisher sends (`hallmark publish`),
//! the MQTT one-shot publisher and reader it uses ([`publish`]), and the operator's view of the fleet
//! (`hallmark fleet status`, [`status`]). Topics and payloads are the contracts of
//! `shared/design/conventions.md`; the agent side parses releases with its own strict parser.

pub mod publish;
pub mod status;

use serde::{Deserialize, Serialize};

/// The release schema this module writes.
pub const RELEASE_SCHEMA: &str = "hallmark.release/1";

/// A release announcement, retained on the fleet or a device's models topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub schema: String,
    pub brand: String,
    pub revision: u64,
    /// Where the `.tar` bundle is served.
    pub url: String,
    /// SHA-256 of the `.tar`, lowercase hex.
    pub sha256: String,
    /// Size of the `.tar` in bytes.
    pub size: u64,
    /// Present (and true) only to ask devices to go back to a lower revision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// With `rollback`: the signed statement that lets devices go back (`update::rollback`); without
    /// it a device refuses the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_statement: Option<crate::update::Statement>,
}

impl Release {
    /// `url_base` + `/` + the archive's file name (one slash between, whatever `url_base` ends with).
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
            schema: RELEASE_SCHEMA.to_string(),
            brand: brand.to_string(),
            revision,
            url: format!("{}/{}", url_base.trim_end_matches('/'), file_name),
            sha256: sha256.to_string(),
            size,
            rollback,
            rollback_statement: None,
        }
    }
}

/// `{prefix}/fleet/models/{brand}`: the release for every device.
pub fn fleet_topic(prefix: &str, brand: &str) -> String {
    format!("{prefix}/fleet/models/{brand}")
}

/// `{prefix}/things/{thing}/models/{brand}`: the release for one device (a canary); it wins over the
/// fleet topic for that device.
pub fn thing_topic(prefix: &str, thing: &str, brand: &str) -> String {
    format!("{prefix}/things/{thing}/models/{brand}")
}

/// `HOST:PORT` (or `HOST`, port 1883; `[v6]:PORT` for IPv6 literals) as host and port.
pub fn parse_broker(s: &str) -> Result<(String, u16), String> {
    let bad = || format!("broker {s:?} is not HOST:PORT");
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.starts_with('[')) => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        None if !s.is_empty() => (s, 1883),
        _ => return Err(bad()),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_serialises_with_exactly_the_contract_fields() {
        let r = Release::new(
            "northwind",
            8,
            "http://h/m/",
            "northwind-8.tar",
            "ab",
            10,
            false,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"schema": "hallmark.release/1", "brand": "northwind", "revision": 8,
                "url": "http://h/m/northwind-8.tar", "sha256": "ab", "size": 10})
        );
        let r = Release {
            rollback: true,
            ..r
        };
        assert_eq!(serde_json::to_value(&r).unwrap()["rollback"], true);
    }

    #[test]
    fn topics_and_brokers() {
        assert_eq!(
            fleet_topic("hallmark", "acme"),
            "hallmark/fleet/models/acme"
        );
        assert_eq!(
            thing_topic("p", "kiosk-1", "acme"),
            "p/things/kiosk-1/models/acme"
        );
        assert_eq!(
            parse_broker("127.0.0.1:1884").unwrap(),
            ("127.0.0.1".into(), 1884)
        );
        assert_eq!(parse_broker("broker").unwrap(), ("broker".into(), 1883));
        assert_eq!(parse_broker("[::1]:9").unwrap(), ("::1".into(), 9));
        for bad in ["", ":1883", "h:x", "h:99999"] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }
}
