//! Telemetry (`{prefix}/things/{thing}/telemetry`, QoS 0, every `mqtt.telemetry_interval_s`): the
//! agent's figures, `schema: "hallmark.telemetry/1"`. The observer fills it, the MQTT connection adds
//! `ts` as it publishes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "hallmark.telemetry/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    pub schema: String,
    pub thing: String,
    /// RFC 3339, UTC, milliseconds: when it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    pub uptime_s: u64,
    pub frames: u64,
    pub fps: f64,
    pub dropped_frames: u64,
    pub frame_errors: u64,
    /// Per stage with samples (`preprocess`, `inference`, `judge`, `verdict`, `publish`).
    pub latency_ms: BTreeMap<String, Percentiles>,
    /// Verdicts decided, by kind.
    pub verdicts: BTreeMap<String, u64>,
    pub spool: Spool,
    pub mqtt: Mqtt,
    /// Commands received, by outcome.
    pub commands: BTreeMap<String, u64>,
    /// `None` until the first report.
    pub camera: Option<String>,
    pub link: Option<String>,
    pub models: BTreeMap<String, u64>,
    /// Conveyor with a reject gate, once a pack was decided or the gate reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
}

/// The reject gate's figures: decisions and their margins (over the last 256), and the gate's reports
/// by outcome (`rejected`, `passed`, `late_rejected`, `late_passed`, `refused`, `unknown`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub decided: u64,
    pub late: u64,
    pub margin_mm_min: Option<f64>,
    pub margin_mm_p50: Option<f64>,
    pub outcomes: BTreeMap<String, u64>,
}

/// Latency percentiles of one stage, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spool {
    pub depth: u64,
    pub bytes: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mqtt {
    pub connected: bool,
    pub reconnects: u64,
}

impl Telemetry {
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of plain fields always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_reads_back_as_written() {
        let t = Telemetry {
            schema: SCHEMA.into(),
            thing: "kiosk-1".into(),
            ts: Some("2026-11-27T01:02:03.045Z".into()),
            uptime_s: 61,
            frames: 594,
            fps: 9.9,
            dropped_frames: 0,
            frame_errors: 1,
            latency_ms: BTreeMap::from([(
                "inference".to_string(),
                Percentiles {
                    p50: 7.1,
                    p90: 7.9,
                    p99: 9.8,
                },
            )]),
            verdicts: BTreeMap::from([("genuine".to_string(), 40)]),
            spool: Spool {
                depth: 0,
                bytes: 0,
                dropped: 0,
            },
            mqtt: Mqtt {
                connected: true,
                reconnects: 0,
            },
            commands: BTreeMap::new(),
            camera: Some("streaming".into()),
            link: None,
            models: BTreeMap::from([("northwind".to_string(), 7)]),
            gate: None,
        };
        let back: Telemetry = serde_json::from_slice(&t.to_json()).unwrap();
        assert_eq!(back, t);
        let v: serde_json::Value = serde_json::from_slice(&t.to_json()).unwrap();
        assert_eq!(v["latency_ms"]["inference"]["p90"], 7.9);
        assert_eq!(v["spool"]["depth"], 0);
    }
}
