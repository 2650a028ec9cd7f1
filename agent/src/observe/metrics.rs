//! The Prometheus registry and its metric families, named `hallmark_*` in the style of Frigate's
//! `frigate_camera_fps` / `frigate_detector_inference_speed_seconds`. Every handle is an atomic (or a
//! family behind a read-mostly lock), so updating one per frame costs next to nothing.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of [`prometheus_client::encoding::text::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the source (camera or replay) can be doing, as `hallmark_source_state{state}`.
pub const CAMERA_STATES: [&str; 5] = ["opening", "streaming", "stalled", "reopening", "ended"];
/// The controller link's states, as `hallmark_link_state{state}`.
pub const LINK_STATES: [&str; 3] = ["none", "connected", "disconnected"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrandLabel {
    pub brand: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub brand: String,
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

fn stage_histogram() -> Histogram {
    // 1 ms to ~2 s in doublings: 1, 2, 4, ... 2048 ms.
    Histogram::new(exponential_buckets(0.001, 2.0, 12))
}

/// The registry and a handle on each family.
pub struct Metrics {
    pub registry: Registry,
    pub model_revision: Family<BrandLabel, Gauge>,
    pub provider: Family<ProviderLabel, Gauge>,
    pub frames: Counter,
    pub frames_dropped: Counter,
    pub frame_errors: Counter,
    pub fps: Gauge<f64, AtomicU64>,
    pub stage_seconds: Family<StageLabel, Histogram, fn() -> Histogram>,
    pub verdicts: Family<VerdictLabel, Counter>,
    pub spool_depth: Gauge,
    pub spool_bytes: Gauge,
    pub spool_dropped: Counter,
    pub mqtt_connected: Gauge,
    pub mqtt_reconnects: Counter,
    pub published: Counter,
    pub commands: Family<OutcomeLabel, Counter>,
    pub source_state: Family<StateLabel, Gauge>,
    pub link_state: Family<StateLabel, Gauge>,
    pub model_loads: Counter,
    pub model_evictions: Counter,
    pub models_loaded: Gauge,
    pub model_load_seconds: Histogram,
    pub frames_routed: Family<RouteLabel, Counter>,
    pub spool_write_errors: Counter,
    pub spool_damaged: Counter,
    pub unspooled: Gauge,
    pub unspooled_lost: Counter,
    pub evidence_skipped: Family<ReasonLabel, Counter>,
    pub mqtt_refused: Family<ReasonLabel, Counter>,
    pub mqtt_inbound_paused: Gauge,
    pub http_refused: Counter,
    pub gate_margin_mm: Histogram,
    pub gate_late: Counter,
    pub gate_reports: Family<OutcomeLabel, Counter>,
}

impl Metrics {
    pub fn new(thing: &str) -> Metrics {
        let mut registry = Registry::default();
        // Counters are registered without `_total`: the encoder appends it.
        registry.register(
            "hallmark",
            "The agent's version and thing name",
            Info::new(vec![
                ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                ("thing".to_string(), thing.to_string()),
            ]),
        );
        let mut m = Metrics {
            registry,
            model_revision: Family::default(),
            provider: Family::default(),
            frames: Counter::default(),
            frames_dropped: Counter::default(),
            frame_errors: Counter::default(),
            fps: Gauge::default(),
            stage_seconds: Family::new_with_constructor(stage_histogram),
            verdicts: Family::default(),
            spool_depth: Gauge::default(),
            spool_bytes: Gauge::default(),
            spool_dropped: Counter::default(),
            mqtt_connected: Gauge::default(),
            mqtt_reconnects: Counter::default(),
            published: Counter::default(),
            commands: Family::default(),
            source_state: Family::default(),
            link_state: Family::default(),
            model_loads: Counter::default(),
            model_evictions: Counter::default(),
            models_loaded: Gauge::default(),
            // 10 ms to ~20 s in doublings.
            model_load_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            frames_routed: Family::default(),
            spool_write_errors: Counter::default(),
            spool_damaged: Counter::default(),
            unspooled: Gauge::default(),
            unspooled_lost: Counter::default(),
            evidence_skipped: Family::default(),
            mqtt_refused: Family::default(),
            mqtt_inbound_paused: Gauge::default(),
            http_refused: Counter::default(),
            // Late decisions fall in the buckets at or below 0.
            gate_margin_mm: Histogram::new([
                -400.0, -100.0, 0.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0,
            ]),
            gate_late: Counter::default(),
            gate_reports: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "hallmark_model_revision",
            "Revision of the model bundle served, per brand",
            m.model_revision.clone(),
        );
        r.register(
            "hallmark_provider",
            "Execution provider each brand's model really runs on (1), after any allowed fall back",
            m.provider.clone(),
        );
        r.register("hallmark_frames", "Frames inferred", m.frames.clone());
        r.register(
            "hallmark_frames_dropped",
            "Frames the source delivered that were dropped because inference was busy",
            m.frames_dropped.clone(),
        );
        r.register(
            "hallmark_frame_errors",
            "Frames that could not be processed",
            m.frame_errors.clone(),
        );
        r.register(
            "hallmark_fps",
            "Frames inferred per second over the last few seconds",
            m.fps.clone(),
        );
        r.register(
            "hallmark_stage_seconds",
            "Time spent per stage (preprocess, inference, judge; verdict: decision to event; publish: verdict to broker acknowledgement)",
            m.stage_seconds.clone(),
        );
        r.register(
            "hallmark_verdicts",
            "Verdicts decided, by kind",
            m.verdicts.clone(),
        );
        r.register(
            "hallmark_spool_depth",
            "Verdicts waiting in the spool for the broker",
            m.spool_depth.clone(),
        );
        r.register(
            "hallmark_spool_bytes",
            "Payload bytes waiting in the spool",
            m.spool_bytes.clone(),
        );
        r.register(
            "hallmark_spool_dropped",
            "Verdicts dropped from a full spool (oldest first)",
            m.spool_dropped.clone(),
        );
        r.register(
            "hallmark_mqtt_connected",
            "1 while connected to the MQTT broker",
            m.mqtt_connected.clone(),
        );
        r.register(
            "hallmark_mqtt_reconnects",
            "Reconnections to the MQTT broker",
            m.mqtt_reconnects.clone(),
        );
        r.register(
            "hallmark_verdicts_published",
            "Verdicts acknowledged by the broker (PUBACK)",
            m.published.clone(),
        );
        r.register(
            "hallmark_commands",
            "Commands received, by outcome",
            m.commands.clone(),
        );
        r.register(
            "hallmark_source_state",
            "1 for the source's current state, 0 for the others",
            m.source_state.clone(),
        );
        r.register(
            "hallmark_link_state",
            "1 for the controller link's current state, 0 for the others",
            m.link_state.clone(),
        );
        r.register(
            "hallmark_model_loads",
            "Detectors built (at start, on demand for a routed brand, or for an update)",
            m.model_loads.clone(),
        );
        r.register(
            "hallmark_model_evictions",
            "Detectors unloaded to stay within model.memory_budget_mib (least recently used first)",
            m.model_evictions.clone(),
        );
        r.register(
            "hallmark_models_loaded",
            "Brands whose detector is in memory now",
            m.models_loaded.clone(),
        );
        r.register(
            "hallmark_model_load_seconds",
            "Time to build a brand's detector on demand (the frame that needed it waited this long)",
            m.model_load_seconds.clone(),
        );
        r.register(
            "hallmark_frames_routed",
            "Frames routed to a brand (several brands served), by what decided: a barcode's GS1 prefix (code) or every brand's detector (sight)",
            m.frames_routed.clone(),
        );
        r.register(
            "hallmark_spool_write_errors",
            "Appends the verdict spool could not write (a full disk, an I/O error); the verdicts wait in memory",
            m.spool_write_errors.clone(),
        );
        r.register(
            "hallmark_spool_damaged",
            "Damaged spool files set aside at start (their verdicts are lost)",
            m.spool_damaged.clone(),
        );
        r.register(
            "hallmark_verdicts_unspooled",
            "Verdicts decided and acted on that wait in memory for the spool to write again",
            m.unspooled.clone(),
        );
        r.register(
            "hallmark_verdicts_unspooled_lost",
            "Verdicts lost because the spool could not write and the memory queue was full",
            m.unspooled_lost.clone(),
        );
        r.register(
            "hallmark_evidence_skipped",
            "Evidence pictures not written, by reason (low_disk: the room is kept for the spool; error)",
            m.evidence_skipped.clone(),
        );
        r.register(
            "hallmark_mqtt_refused",
            "Messages from the broker refused, by reason (too_large: read and refused for its topic; oversized_packet: over mqtt.max_incoming_mib, which ended the connection)",
            m.mqtt_refused.clone(),
        );
        r.register(
            "hallmark_mqtt_inbound_paused",
            "1 while the agent connects without subscriptions because the broker kept sending a packet over mqtt.max_incoming_mib",
            m.mqtt_inbound_paused.clone(),
        );
        r.register(
            "hallmark_gate_margin_mm",
            "Conveyor: how far before the reject gate each pack's decision came, belt millimetres (negative: late)",
            m.gate_margin_mm.clone(),
        );
        r.register(
            "hallmark_gate_late",
            "Conveyor: decisions that came when their pack was at the reject gate or past it (handled by on_late)",
            m.gate_late.clone(),
        );
        r.register(
            "hallmark_gate_reports",
            "Conveyor: what the reject gate did with each pack, as the controller reports it",
            m.gate_reports.clone(),
        );
        r.register(
            "hallmark_http_refused",
            "Connections to /metrics and /healthz closed at once because http.max_connections were open",
            m.http_refused.clone(),
        );
        m
    }
}
