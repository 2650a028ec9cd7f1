//! The MQTT topic layout, under a configurable prefix (`hallmark` by default; `{thing}` is the
//! device's name, one topic level):
//!
//! | topic | what |
//! |---|---|
//! | `{prefix}/things/{thing}/verdicts` | verdict events ([`crate::event`]) |
//! | `{prefix}/things/{thing}/online` | the retained status, also the last will ([`crate::online`]) |
//! | `{prefix}/things/{thing}/telemetry` | periodic figures ([`crate::telemetry`]) |
//! | `{prefix}/things/{thing}/commands` | commands to this device ([`crate::command`]) |
//! | `{prefix}/fleet/models/{brand}` | the release for every device ([`crate::release`]) |
//! | `{prefix}/things/{thing}/models/{brand}` | the release for one device (a canary; it wins) |
//! | `{prefix}/things/{thing}/models/{brand}/status` | the device's update status ([`crate::status`]) |
//!
//! Written by [`Topics`], [`fleet_release`] and [`device_release`]; read back by [`release_brand`]
//! (a device's own release topics) and [`Topic::parse`] (a reader of the whole fleet).

use crate::release::is_brand;

/// The topic prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "hallmark";

/// The topics of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub verdicts: String,
    pub online: String,
    pub telemetry: String,
    pub commands: String,
    /// Model releases for every device (`{prefix}/fleet/models/+`, retained).
    pub fleet_releases: String,
    /// Model releases for this device only (`{prefix}/things/{thing}/models/+`, retained).
    pub device_releases: String,
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, thing: &str) -> Topics {
        let base = format!("{prefix}/things/{thing}");
        Topics {
            verdicts: format!("{base}/verdicts"),
            online: format!("{base}/online"),
            telemetry: format!("{base}/telemetry"),
            commands: format!("{base}/commands"),
            fleet_releases: format!("{prefix}/fleet/models/+"),
            device_releases: format!("{base}/models/+"),
            base,
        }
    }

    /// Where this device reports a brand's model update (`…/models/{brand}/status`, retained).
    pub fn model_status(&self, brand: &str) -> String {
        format!("{}/models/{brand}/status", self.base)
    }
}

/// `{prefix}/fleet/models/{brand}`: the release for every device.
pub fn fleet_release(prefix: &str, brand: &str) -> String {
    format!("{prefix}/fleet/models/{brand}")
}

/// `{prefix}/things/{thing}/models/{brand}`: the release for one device (a canary); it wins over the
/// fleet topic for that device.
pub fn device_release(prefix: &str, thing: &str, brand: &str) -> String {
    format!("{prefix}/things/{thing}/models/{brand}")
}

/// The filters a reader of the whole fleet subscribes to (`hallmark fleet status`): every device's
/// online and update status, every release.
pub fn fleet_filters(prefix: &str) -> Vec<String> {
    vec![
        format!("{prefix}/things/+/online"),
        format!("{prefix}/things/+/models/+/status"),
        format!("{prefix}/things/+/models/+"),
        format!("{prefix}/fleet/models/+"),
    ]
}

/// Which topic a release came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `{prefix}/fleet/models/{brand}`: every device.
    Fleet,
    /// `{prefix}/things/{thing}/models/{brand}`: this device only (a canary); wins over the fleet.
    Device,
}

/// Recognises the two release topics of device `thing` and returns their brand; anything else
/// (the status topic, another device's topic, a bad brand) is `None`.
pub fn release_brand(topic: &str, prefix: &str, thing: &str) -> Option<(Scope, String)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (scope, brand) = if let Some(brand) = rest.strip_prefix("fleet/models/") {
        (Scope::Fleet, brand)
    } else {
        let rest = rest.strip_prefix("things/")?.strip_prefix(thing)?;
        (Scope::Device, rest.strip_prefix("/models/")?)
    };
    is_brand(brand).then(|| (scope, brand.to_owned()))
}

/// A topic of the layout, as a reader of the whole fleet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    FleetRelease { brand: &'a str },
    DeviceRelease { thing: &'a str, brand: &'a str },
    Online { thing: &'a str },
    ModelStatus { thing: &'a str, brand: &'a str },
    Verdicts { thing: &'a str },
    Telemetry { thing: &'a str },
    Commands { thing: &'a str },
}

impl<'a> Topic<'a> {
    /// The topic `topic` is under `prefix`, or `None` for one outside the layout.
    pub fn parse(prefix: &str, topic: &'a str) -> Option<Topic<'a>> {
        let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
        let parts: Vec<&'a str> = rest.split('/').collect();
        Some(match parts.as_slice() {
            ["fleet", "models", brand] => Topic::FleetRelease { brand },
            ["things", thing, "online"] => Topic::Online { thing },
            ["things", thing, "verdicts"] => Topic::Verdicts { thing },
            ["things", thing, "telemetry"] => Topic::Telemetry { thing },
            ["things", thing, "commands"] => Topic::Commands { thing },
            ["things", thing, "models", brand] => Topic::DeviceRelease { thing, brand },
            ["things", thing, "models", brand, "status"] => Topic::ModelStatus { thing, brand },
            _ => return None,
        })
    }

    /// The device the topic belongs to (`None`: a fleet release).
    pub fn thing(&self) -> Option<&'a str> {
        match *self {
            Topic::FleetRelease { .. } => None,
            Topic::DeviceRelease { thing, .. }
            | Topic::Online { thing }
            | Topic::ModelStatus { thing, .. }
            | Topic::Verdicts { thing }
            | Topic::Telemetry { thing }
            | Topic::Commands { thing } => Some(thing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_written_reads_back_as_itself() {
        let t = Topics::new("acme/hm", "kiosk-1");
        let cases = [
            (t.verdicts.clone(), Topic::Verdicts { thing: "kiosk-1" }),
            (t.online.clone(), Topic::Online { thing: "kiosk-1" }),
            (t.telemetry.clone(), Topic::Telemetry { thing: "kiosk-1" }),
            (t.commands.clone(), Topic::Commands { thing: "kiosk-1" }),
            (
                t.model_status("acme"),
                Topic::ModelStatus {
                    thing: "kiosk-1",
                    brand: "acme",
                },
            ),
            (
                fleet_release("acme/hm", "acme"),
                Topic::FleetRelease { brand: "acme" },
            ),
            (
                device_release("acme/hm", "kiosk-1", "acme"),
                Topic::DeviceRelease {
                    thing: "kiosk-1",
                    brand: "acme",
                },
            ),
        ];
        for (topic, want) in cases {
            assert_eq!(Topic::parse("acme/hm", &topic), Some(want), "{topic}");
        }
        assert_eq!(t.verdicts, "acme/hm/things/kiosk-1/verdicts");
        assert_eq!(t.fleet_releases, "acme/hm/fleet/models/+");
        assert_eq!(t.device_releases, "acme/hm/things/kiosk-1/models/+");
        assert_eq!(Topic::parse("acme/hm", "other/things/k/online"), None);
        assert_eq!(
            release_brand(
                &device_release("acme/hm", "kiosk-1", "acme"),
                "acme/hm",
                "kiosk-1"
            ),
            Some((Scope::Device, "acme".into()))
        );
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
            let got = release_brand(topic, "hallmark", "kiosk-1");
            assert_eq!(got, want.map(|(s, b)| (s, b.to_owned())), "{topic}");
        }
        // A prefix with levels of its own.
        assert_eq!(
            release_brand("acme/hm/fleet/models/b1", "acme/hm", "t"),
            Some((Scope::Fleet, "b1".into()))
        );
    }
}
