//! `hallmark fleet status`: the fleet as its retained topics tell it. A pure function turns the
//! collected messages into a [`FleetView`] (one row per device and brand), which prints as a table or
//! as JSON.
//!
//! A device's target for a brand is its own canary release if it has one (it wins over the fleet
//! topic, as on the device), else the fleet release; a device is BEHIND when the revision it reports
//! active is lower than that target.

use std::collections::BTreeMap;

use hallmark_proto::topics::Topic;
use hallmark_proto::{ModelStatus, Online};
use serde::Serialize;

use super::publish::Received;

/// The topic filters the view needs.
pub use hallmark_proto::topics::fleet_filters as filters;

/// The largest payload read as a status, online or release message (each is a few hundred bytes; a
/// release at most 16 KiB): anything larger is skipped and reported, not parsed.
pub const MAX_PAYLOAD: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetView {
    /// The fleet release per brand.
    pub releases: BTreeMap<String, u64>,
    pub devices: Vec<DeviceView>,
    /// Topics whose payload could not be read (skipped); the same as `skipped`, topics only.
    pub ignored: Vec<String>,
    /// Each message skipped, with the device it came from and why, sorted by device.
    pub skipped: Vec<Skipped>,
}

/// A retained message the view could not use: one device's bad message costs that message only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// The device whose topic it was (`None`: a fleet release).
    pub thing: Option<String>,
    pub topic: String,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.thing {
            Some(thing) => write!(
                f,
                "device {thing}: skipped its retained message on {}: {}",
                self.topic, self.reason
            ),
            None => write!(
                f,
                "skipped the retained message on {}: {}",
                self.topic, self.reason
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    pub thing: String,
    /// `None`: the device never published its online status.
    pub online: Option<bool>,
    pub version: Option<String>,
    pub brands: Vec<BrandView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrandView {
    pub brand: String,
    /// The revision the device reports active.
    pub active: Option<u64>,
    /// The revision it should run: its canary release, else the fleet release.
    pub target: Option<u64>,
    /// Whether `target` comes from a per-device (canary) release.
    pub canary: bool,
    /// The last update status: its revision, state, detail and progress.
    pub revision: Option<u64>,
    pub state: Option<String>,
    pub detail: Option<String>,
    pub progress: Option<f64>,
    pub behind: bool,
}

#[derive(Default)]
struct Device {
    online: Option<Online>,
    status: BTreeMap<String, ModelStatus>,
    canary: BTreeMap<String, u64>,
}

/// Builds the view from messages in arrival order (a later message on a topic replaces an earlier).
pub fn build(prefix: &str, messages: &[Received]) -> FleetView {
    let mut releases = BTreeMap::new();
    let mut devices: BTreeMap<String, Device> = BTreeMap::new();
    let mut skipped = Vec::new();
    for m in messages {
        let Some(topic) = Topic::parse(prefix, &m.topic) else {
            continue;
        };
        let what = match topic {
            Topic::FleetRelease { .. } | Topic::DeviceRelease { .. } => "a release",
            Topic::Online { .. } => "a device's online message",
            Topic::ModelStatus { .. } => "an update status",
            _ => continue,
        };
        let thing = topic.thing();
        if let Some(thing) = thing {
            // The device is listed whatever its messages hold: a bad one is reported, not hidden.
            devices.entry(thing.to_string()).or_default();
        }
        let result = match m.oversize {
            Some(size) => Err(format!(
                "{size} bytes, over the limit of {MAX_PAYLOAD} for {what}"
            )),
            None if m.payload.len() > MAX_PAYLOAD => Err(format!(
                "{} bytes, over the limit of {MAX_PAYLOAD} for {what}",
                m.payload.len()
            )),
            None => read(topic, &m.payload, &mut releases, &mut devices)
                .map_err(|e| format!("not readable as {what}: {e}")),
        };
        if let Err(reason) = result {
            skipped.push(Skipped {
                thing: thing.map(str::to_string),
                topic: m.topic.clone(),
                reason,
            });
        }
    }
    skipped.sort_by(|a, b| (&a.thing, &a.topic).cmp(&(&b.thing, &b.topic)));
    let ignored = skipped.iter().map(|s| s.topic.clone()).collect();
    let devices = devices
        .into_iter()
        .map(|(thing, d)| {
            let models = d
                .online
                .as_ref()
                .map(|o| o.models.clone())
                .unwrap_or_default();
            let mut brands: Vec<String> = models
                .keys()
                .chain(d.status.keys())
                .chain(d.canary.keys())
                .cloned()
                .collect();
            brands.sort();
            brands.dedup();
            let brands = brands
                .into_iter()
                .map(|brand| {
                    let active = models.get(&brand).copied();
                    let canary = d.canary.get(&brand).copied();
                    let target = canary.or_else(|| releases.get(&brand).copied());
                    let status = d.status.get(&brand);
                    BrandView {
                        behind: matches!((active, target), (Some(a), Some(t)) if a < t),
                        active,
                        target,
                        canary: canary.is_some(),
                        // No release has revision 0: a status without one reads as 0.
                        revision: status.map(|s| s.revision).filter(|&r| r > 0),
                        state: status.map(|s| s.state.as_str().to_string()),
                        detail: status.map(|s| s.detail.clone()),
                        progress: status.and_then(|s| s.progress),
                        brand,
                    }
                })
                .collect();
            DeviceView {
                online: d.online.as_ref().map(|o| o.online),
                version: d.online.and_then(|o| o.version),
                thing,
                brands,
            }
        })
        .collect();
    FleetView {
        releases,
        devices,
        ignored,
        skipped,
    }
}

/// Reads one message of a known topic into the view. A release is read as devices read it (with no
/// size limit: the operator does not know each device's), so one every device would refuse is skipped
/// with the devices' cause rather than shown as a target.
fn read(
    topic: Topic<'_>,
    payload: &[u8],
    releases: &mut BTreeMap<String, u64>,
    devices: &mut BTreeMap<String, Device>,
) -> Result<(), String> {
    let release = |payload: &[u8]| {
        hallmark_proto::release::parse(payload, u64::MAX).map_err(|e| e.to_string())
    };
    match topic {
        Topic::FleetRelease { brand } => {
            let r = release(payload)?;
            releases.insert(brand.to_string(), r.revision);
        }
        Topic::Online { thing } => {
            let o = Online::parse(payload).map_err(|e| e.to_string())?;
            devices.entry(thing.to_string()).or_default().online = Some(o);
        }
        Topic::DeviceRelease { thing, brand } => {
            let r = release(payload)?;
            devices
                .entry(thing.to_string())
                .or_default()
                .canary
                .insert(brand.to_string(), r.revision);
        }
        Topic::ModelStatus { thing, brand } => {
            let s = ModelStatus::parse(payload).map_err(|e| e.to_string())?;
            devices
                .entry(thing.to_string())
                .or_default()
                .status
                .insert(brand.to_string(), s);
        }
        _ => {}
    }
    Ok(())
}

/// The view as an aligned text table, one line per device and brand, then the fleet releases.
pub fn table(view: &FleetView) -> String {
    let dash = || "-".to_string();
    let opt = |v: Option<u64>| v.map_or_else(dash, |v| v.to_string());
    let mut rows = vec![[
        "DEVICE", "ONLINE", "VERSION", "BRAND", "ACTIVE", "TARGET", "STATE", "DETAIL", "BEHIND",
    ]
    .map(String::from)];
    for d in &view.devices {
        let online = match d.online {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let version = d.version.clone().unwrap_or_else(dash);
        let mut push = |b: Option<&BrandView>| {
            let (brand, active, target, state, detail, behind) = match b {
                Some(b) => (
                    b.brand.clone(),
                    opt(b.active),
                    format!(
                        "{}{}",
                        opt(b.target),
                        if b.canary { " (canary)" } else { "" }
                    ),
                    b.state.as_ref().map_or_else(dash, |s| {
                        let rev = b.revision.map(|r| format!(" r{r}")).unwrap_or_default();
                        let pct = b
                            .progress
                            .filter(|_| s == "downloading")
                            .map(|p| format!(" {:.0}%", p * 100.0))
                            .unwrap_or_default();
                        format!("{s}{rev}{pct}")
                    }),
                    b.detail
                        .clone()
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(dash),
                    if b.behind { "BEHIND" } else { "" }.to_string(),
                ),
                None => (dash(), dash(), dash(), dash(), dash(), String::new()),
            };
            rows.push([
                d.thing.clone(),
                online.to_string(),
                version.clone(),
                brand,
                active,
                target,
                state,
                detail,
                behind,
            ]);
        };
        if d.brands.is_empty() {
            push(None);
        }
        for b in &d.brands {
            push(Some(b));
        }
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if view.releases.is_empty() {
        out.push_str("fleet releases: none\n");
    } else {
        let list: Vec<String> = view
            .releases
            .iter()
            .map(|(b, r)| format!("{b} {r}"))
            .collect();
        out.push_str(&format!("fleet releases: {}\n", list.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: serde_json::Value) -> Received {
        Received {
            topic: topic.into(),
            payload: serde_json::to_vec(&payload).unwrap(),
            retain: true,
            oversize: None,
        }
    }

    fn release(brand: &str, rev: u64) -> serde_json::Value {
        serde_json::to_value(hallmark_proto::Release::new(
            brand,
            rev,
            "http://h",
            "x.tar",
            &"0".repeat(64),
            1,
            false,
        ))
        .unwrap()
    }

    fn sample() -> Vec<Received> {
        use serde_json::json;
        vec![
            msg("hm/fleet/models/acme", release("acme", 8)),
            msg(
                "hm/things/k1/online",
                json!({"online": true, "version": "0.1.0", "models": {"acme": 8}}),
            ),
            msg(
                "hm/things/k2/online",
                json!({"online": false, "version": "0.1.0", "models": {"acme": 7, "zeta": 2}}),
            ),
            msg(
                "hm/things/k2/models/acme/status",
                json!({"revision": 8, "state": "failed", "detail": "HTTP 404", "progress": 0.0}),
            ),
            msg("hm/things/k3/models/acme", release("acme", 9)),
            msg(
                "hm/things/k3/online",
                json!({"online": true, "models": {"acme": 8}}),
            ),
            msg(
                "hm/things/k4/models/acme/status",
                json!({"state": "downloading", "progress": 0.5}),
            ),
            Received {
                topic: "hm/things/k5/online".into(),
                payload: b"not json".to_vec(),
                retain: true,
                oversize: None,
            },
            msg("other/things/k9/online", json!({"online": true})),
        ]
    }

    #[test]
    fn behind_is_active_below_the_target_and_a_canary_wins() {
        let v = build("hm", &sample());
        assert_eq!(v.releases, BTreeMap::from([("acme".to_string(), 8)]));
        assert_eq!(v.ignored, vec!["hm/things/k5/online".to_string()]);
        assert_eq!(v.skipped[0].thing.as_deref(), Some("k5"));
        assert!(
            v.skipped[0]
                .reason
                .starts_with("not readable as a device's online message"),
            "{:?}",
            v.skipped
        );
        // A device whose only message was unreadable is still listed (with nothing known).
        let things: Vec<&str> = v.devices.iter().map(|d| d.thing.as_str()).collect();
        assert_eq!(things, ["k1", "k2", "k3", "k4", "k5"]);
        let k1 = &v.devices[0];
        assert_eq!(
            (k1.online, k1.brands[0].active, k1.brands[0].behind),
            (Some(true), Some(8), false)
        );
        let k2 = &v.devices[1];
        assert_eq!(k2.online, Some(false));
        let acme = &k2.brands[0];
        assert_eq!(
            (acme.active, acme.target, acme.behind),
            (Some(7), Some(8), true)
        );
        assert_eq!(
            (acme.state.as_deref(), acme.detail.as_deref()),
            (Some("failed"), Some("HTTP 404"))
        );
        // No release for zeta: not behind anything.
        assert_eq!(
            (k2.brands[1].brand.as_str(), k2.brands[1].behind),
            ("zeta", false)
        );
        let k3 = &v.devices[2].brands[0];
        assert_eq!((k3.target, k3.canary, k3.behind), (Some(9), true, true));
        // Status only, never online: unknown online state, no active revision, not behind.
        let k4 = &v.devices[3];
        assert_eq!(
            (k4.online, k4.brands[0].active, k4.brands[0].behind),
            (None, None, false)
        );
    }

    #[test]
    fn an_oversized_message_is_skipped_and_reported_by_device() {
        let mut m = sample();
        m.push(Received {
            topic: "hm/things/k1/models/acme/status".into(),
            payload: Vec::new(),
            retain: true,
            oversize: Some(3_000_000),
        });
        m.push(Received {
            topic: "hm/fleet/models/zeta".into(),
            payload: vec![b' '; MAX_PAYLOAD + 1],
            retain: true,
            oversize: None,
        });
        let v = build("hm", &m);
        let reports: Vec<String> = v.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            reports,
            [
                "skipped the retained message on hm/fleet/models/zeta: 65537 bytes, over the limit of 65536 for a release".to_string(),
                "device k1: skipped its retained message on hm/things/k1/models/acme/status: 3000000 bytes, over the limit of 65536 for an update status".into(),
                "device k5: skipped its retained message on hm/things/k5/online: not readable as a device's online message: expected ident at line 1 column 2".into(),
            ]
        );
        // k1 keeps what its other messages said.
        assert_eq!(v.devices[0].brands[0].active, Some(8));
        assert_eq!(v.releases.len(), 1);
    }

    #[test]
    fn a_later_message_on_a_topic_replaces_the_earlier() {
        let mut m = sample();
        m.push(msg(
            "hm/things/k2/online",
            serde_json::json!({"online": true, "models": {"acme": 8}}),
        ));
        let v = build("hm", &m);
        assert_eq!(
            (v.devices[1].online, v.devices[1].brands[0].behind),
            (Some(true), false)
        );
    }

    #[test]
    fn the_table_has_one_line_per_device_and_brand_and_marks_the_behind() {
        let t = table(&build("hm", &sample()));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("DEVICE  ONLINE"), "{t}");
        assert_eq!(lines.len(), 1 + 6 + 1, "{t}");
        let k2 = lines
            .iter()
            .find(|l| l.starts_with("k2") && l.contains("acme"))
            .unwrap();
        assert!(
            k2.contains("failed r8") && k2.contains("HTTP 404") && k2.ends_with("BEHIND"),
            "{k2}"
        );
        let k1 = lines.iter().find(|l| l.starts_with("k1")).unwrap();
        assert!(!k1.contains("BEHIND"), "{k1}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("k3") && l.contains("9 (canary)")),
            "{t}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("k4") && l.contains("downloading 50%")),
            "{t}"
        );
        assert_eq!(*lines.last().unwrap(), "fleet releases: acme 8");
    }
}
