//! The fleet side of model updates: the release announcement a publisher sends (`hallmark publish`),
//! the MQTT one-shot publisher and reader it uses ([`publish`]), and the operator's view of the fleet
//! (`hallmark fleet status`, [`status`]). Topics and payloads are `hallmark_proto`'s, the same types
//! the agent reads and writes.

pub mod publish;
pub mod status;

pub use hallmark_proto::release::{Release, SCHEMA as RELEASE_SCHEMA};
pub use hallmark_proto::topics::{device_release as thing_topic, fleet_release as fleet_topic};

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
