//! What the agent tells its operator about itself: Prometheus metrics (`/metrics`), a health check
//! (`/healthz`) and the MQTT telemetry payload, all fed from one [`Observer`].
//!
//! The daemon shares one `Arc<Observer>` between its threads. Every method takes `&self` and is cheap
//! (an atomic, or a mutex held for a push), because the pipeline calls it per frame at ~100 fps.
//! - [`metrics`]: the registry and its `hallmark_*` families;
//! - [`window`]: recent latencies (percentiles) and the frame rate, for telemetry;
//! - [`health`]: the `/healthz` decision;
//! - [`http`]: the HTTP server for both.

pub mod health;
pub mod http;
pub mod metrics;
pub mod serving;
pub mod window;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

pub use health::Health;
pub use http::{serve, HttpError, HttpServer};
use metrics::{
    BrandLabel, Metrics, OutcomeLabel, ProviderLabel, StageLabel, StateLabel, VerdictLabel,
};
use window::{LatencyWindow, Percentiles, RateWindow};

/// Durations kept per stage for the telemetry percentiles (~10 s at 100 fps).
const LATENCY_SAMPLES: usize = 1024;
/// The frame rate is measured over this span.
const FPS_SPAN: Duration = Duration::from_secs(5);
/// Frame times kept for it (enough for 800 fps over the span).
const FPS_SAMPLES: usize = 4096;

/// A timed step of a frame's or a verdict's way through the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Preprocess,
    Inference,
    Judge,
    /// From the decision to the verdict event (the event's `latency_ms`).
    Verdict,
    /// From the verdict's decision to the broker's PUBACK.
    Publish,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Preprocess,
        Stage::Inference,
        Stage::Judge,
        Stage::Verdict,
        Stage::Publish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Preprocess => "preprocess",
            Stage::Inference => "inference",
            Stage::Judge => "judge",
            Stage::Verdict => "verdict",
            Stage::Publish => "publish",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The MQTT telemetry payload (`hallmark_proto::telemetry`); the publisher adds `ts`.
pub use hallmark_proto::telemetry::{
    Mqtt as MqttSnapshot, Spool as SpoolSnapshot, Telemetry as Snapshot,
};

/// A state gauge family where exactly the current state is 1.
struct StateSet {
    current: Option<String>,
    known: Vec<String>,
}

impl StateSet {
    fn new(family: &Family<StateLabel, Gauge>, known: &[&str]) -> StateSet {
        // Every known state is exposed (as 0) from the start, so a dashboard sees the whole set.
        for s in known {
            family
                .get_or_create(&StateLabel {
                    state: s.to_string(),
                })
                .set(0);
        }
        StateSet {
            current: None,
            known: known.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn set(&mut self, family: &Family<StateLabel, Gauge>, state: &str) {
        if self.current.as_deref() == Some(state) {
            return;
        }
        if !self.known.iter().any(|k| k == state) {
            self.known.push(state.to_string());
        }
        for k in &self.known {
            family
                .get_or_create(&StateLabel { state: k.clone() })
                .set(i64::from(k == state));
        }
        self.current = Some(state.to_string());
    }
}

/// Counts and states of the agent, shared by its threads (see the module docs).
pub struct Observer {
    thing: String,
    started: Instant,
    metrics: Metrics,
    models: Mutex<BTreeMap<String, u64>>,
    /// The provider each brand's model runs on.
    providers: Mutex<BTreeMap<String, String>>,
    /// Where `providers` is also written for other processes (`hallmark models list`), and the
    /// providers asked for.
    serving_file: Mutex<Option<(std::path::PathBuf, Vec<String>)>>,
    /// Nanoseconds after `started` of the last frame, plus one; 0 = none yet.
    last_frame: AtomicU64,
    /// The highest totals reported, to turn a total into a counter increment.
    dropped_total: AtomicU64,
    spool_dropped_total: AtomicU64,
    fps: Mutex<RateWindow>,
    latency: [Mutex<LatencyWindow>; 5],
    verdicts: Mutex<BTreeMap<String, u64>>,
    commands: Mutex<BTreeMap<String, u64>>,
    camera: Mutex<StateSet>,
    link: Mutex<StateSet>,
    /// Why the verdict spool cannot write, while it cannot (a failing health check).
    spool_failing: Mutex<Option<String>>,
    /// Conveyor gate: recent decision margins (mm), decisions, late ones, and the gate's reports.
    gate: Mutex<GateWindow>,
}

/// The reject gate's figures for telemetry.
#[derive(Debug, Default)]
struct GateWindow {
    margins: std::collections::VecDeque<f64>,
    decided: u64,
    late: u64,
    outcomes: BTreeMap<String, u64>,
}

/// Margins kept for telemetry's min and median.
const GATE_MARGINS: usize = 256;

/// A poisoned lock here only means another thread panicked mid-update of a count: keep counting.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Advances `counter` to `total` (a monotonic total reported from elsewhere); a smaller total (a
/// restart of whatever counts) adds nothing.
fn advance(seen: &AtomicU64, counter: &prometheus_client::metrics::counter::Counter, total: u64) {
    let before = seen.fetch_max(total, Ordering::Relaxed);
    if total > before {
        counter.inc_by(total - before);
    }
}

impl Observer {
    pub fn new(thing: &str) -> Observer {
        let metrics = Metrics::new(thing);
        let camera = StateSet::new(&metrics.source_state, &metrics::CAMERA_STATES);
        let link = StateSet::new(&metrics.link_state, &metrics::LINK_STATES);
        Observer {
            thing: thing.to_string(),
            started: Instant::now(),
            models: Mutex::new(BTreeMap::new()),
            providers: Mutex::new(BTreeMap::new()),
            serving_file: Mutex::new(None),
            last_frame: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            spool_dropped_total: AtomicU64::new(0),
            fps: Mutex::new(RateWindow::new(FPS_SPAN, FPS_SAMPLES)),
            latency: std::array::from_fn(|_| Mutex::new(LatencyWindow::new(LATENCY_SAMPLES))),
            verdicts: Mutex::new(BTreeMap::new()),
            commands: Mutex::new(BTreeMap::new()),
            camera: Mutex::new(camera),
            link: Mutex::new(link),
            spool_failing: Mutex::new(None),
            gate: Mutex::new(GateWindow::default()),
            metrics,
        }
    }

    /// A bundle now serves `brand` at `revision` (gauge `hallmark_model_revision{brand}`).
    pub fn model_loaded(&self, brand: &str, revision: u64) {
        self.metrics
            .model_revision
            .get_or_create(&BrandLabel {
                brand: brand.to_string(),
            })
            .set(to_i64(revision));
        lock(&self.models).insert(brand.to_string(), revision);
    }

    /// From now on, writes the providers in use to `path` (see [`serving`]) whenever they change;
    /// `requested` is `runtime.providers`.
    pub fn record_serving_in(&self, path: std::path::PathBuf, requested: Vec<String>) {
        *lock(&self.serving_file) = Some((path, requested));
    }

    /// `brand`'s model runs on `provider` (gauge `hallmark_provider{brand,provider}` = 1; the brand's
    /// other providers are removed), and the serving file says so.
    pub fn model_provider(&self, brand: &str, provider: &str) {
        let mut providers = lock(&self.providers);
        if let Some(old) = providers.insert(brand.to_string(), provider.to_string()) {
            self.metrics.provider.remove(&ProviderLabel {
                brand: brand.to_string(),
                provider: old,
            });
        }
        if let Some((path, requested)) = &*lock(&self.serving_file) {
            let record = serving::Serving {
                pid: std::process::id(),
                updated_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                requested: requested.clone(),
                providers: providers.clone(),
            };
            // Design: for people only; a state folder that cannot take it costs a warning, not a frame.
            if let Err(e) = record.write(path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot record the providers in use");
            }
        }
        self.metrics
            .provider
            .get_or_create(&ProviderLabel {
                brand: brand.to_string(),
                provider: provider.to_string(),
            })
            .set(1);
    }

    /// Brand → the provider its model runs on (for the `online` status).
    pub fn providers(&self) -> BTreeMap<String, String> {
        lock(&self.providers).clone()
    }

    pub fn model_unloaded(&self, brand: &str) {
        self.metrics.model_revision.remove(&BrandLabel {
            brand: brand.to_string(),
        });
        lock(&self.models).remove(brand);
        if let Some(old) = lock(&self.providers).remove(brand) {
            self.metrics.provider.remove(&ProviderLabel {
                brand: brand.to_string(),
                provider: old,
            });
        }
    }

    /// One frame inferred.
    /// A brand's detector was built in `took` (`hallmark_model_loads_total`, `hallmark_model_load_seconds`).
    pub fn model_built(&self, took: Duration) {
        self.metrics.model_loads.inc();
        self.metrics.model_load_seconds.observe(took.as_secs_f64());
    }

    /// A brand's detector was unloaded to stay within the memory budget.
    pub fn model_evicted(&self) {
        self.metrics.model_evictions.inc();
    }

    /// A frame routed to a brand by `by`: `code` or `sight` (`hallmark_frames_routed_total{by}`).
    pub fn routed(&self, by: &'static str) {
        self.metrics
            .frames_routed
            .get_or_create(&metrics::RouteLabel { by })
            .inc();
    }

    /// How many brands' detectors are in memory now (`hallmark_models_loaded`).
    pub fn models_in_memory(&self, n: usize) {
        self.metrics.models_loaded.set(n as i64);
    }

    pub fn frame(&self) {
        let now = Instant::now();
        self.metrics.frames.inc();
        let since = u64::try_from(now.duration_since(self.started).as_nanos()).unwrap_or(u64::MAX);
        self.last_frame
            .store(since.saturating_add(1), Ordering::Relaxed);
        lock(&self.fps).push(now);
    }

    /// Frames the capture dropped so far (a monotonic total).
    pub fn set_dropped(&self, total: u64) {
        advance(&self.dropped_total, &self.metrics.frames_dropped, total);
    }

    /// A frame that could not be processed.
    pub fn frame_error(&self) {
        self.metrics.frame_errors.inc();
    }

    pub fn stage(&self, stage: Stage, d: Duration) {
        self.metrics
            .stage_seconds
            .get_or_create(&StageLabel {
                stage: stage.as_str(),
            })
            .observe(d.as_secs_f64());
        lock(&self.latency[stage.index()]).push(d);
    }

    /// A verdict decided: `genuine`, `counterfeit`, `inconclusive` or `no_product`.
    pub fn verdict(&self, kind: &str) {
        self.metrics
            .verdicts
            .get_or_create(&VerdictLabel {
                verdict: kind.to_string(),
            })
            .inc();
        *lock(&self.verdicts).entry(kind.to_string()).or_default() += 1;
    }

    /// A conveyor pack decided `margin_mm` before the reject gate (negative: after); `late` when it
    /// reached the gate first.
    pub fn gate_decided(&self, margin_mm: f64, late: bool) {
        self.metrics.gate_margin_mm.observe(margin_mm);
        let mut g = lock(&self.gate);
        g.decided += 1;
        if late {
            self.metrics.gate_late.inc();
            g.late += 1;
        }
        if g.margins.len() >= GATE_MARGINS {
            g.margins.pop_front();
        }
        g.margins.push_back(margin_mm);
    }

    /// The controller's report of what the gate did: `rejected`, `passed`, `late_rejected`,
    /// `late_passed`, `refused` or `unknown`.
    pub fn gate_report(&self, outcome: &str) {
        self.metrics
            .gate_reports
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        *lock(&self.gate)
            .outcomes
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    pub fn spool(&self, depth: u64, bytes: u64) {
        self.metrics.spool_depth.set(to_i64(depth));
        self.metrics.spool_bytes.set(to_i64(bytes));
    }

    /// The spool cannot write (`Some(why)`), or writes again (`None`).
    pub fn spool_failing(&self, why: Option<String>) {
        *lock(&self.spool_failing) = why;
    }

    /// An append the spool could not write.
    pub fn spool_write_error(&self) {
        self.metrics.spool_write_errors.inc();
    }

    /// A damaged spool file was set aside at start.
    pub fn spool_damaged(&self) {
        self.metrics.spool_damaged.inc();
    }

    /// Verdicts waiting in memory for the spool, and how many were lost since the last report.
    pub fn unspooled(&self, waiting: usize, lost: u64) {
        self.metrics.unspooled.set(to_i64(waiting as u64));
        if lost > 0 {
            self.metrics.unspooled_lost.inc_by(lost);
        }
    }

    /// A message from the broker refused: `too_large` or `oversized_packet`.
    pub fn mqtt_refused(&self, reason: &'static str) {
        self.metrics
            .mqtt_refused
            .get_or_create(&metrics::ReasonLabel { reason })
            .inc();
    }

    /// A connection to the HTTP endpoint closed at once: too many open.
    pub fn http_refused(&self) {
        self.metrics.http_refused.inc();
    }

    /// Inbound (subscriptions) paused or resumed.
    pub fn mqtt_inbound_paused(&self, paused: bool) {
        self.metrics.mqtt_inbound_paused.set(i64::from(paused));
    }

    /// An evidence picture not written: `low_disk` or `error`.
    pub fn evidence_skipped(&self, reason: &'static str) {
        self.metrics
            .evidence_skipped
            .get_or_create(&metrics::ReasonLabel { reason })
            .inc();
    }

    /// Verdicts dropped from the spool so far (a monotonic total; it may come from disk at start).
    pub fn set_spool_dropped(&self, total: u64) {
        advance(
            &self.spool_dropped_total,
            &self.metrics.spool_dropped,
            total,
        );
    }

    pub fn mqtt_connected(&self, up: bool) {
        self.metrics.mqtt_connected.set(i64::from(up));
    }

    pub fn mqtt_reconnect(&self) {
        self.metrics.mqtt_reconnects.inc();
    }

    /// A verdict acknowledged by the broker.
    pub fn published(&self) {
        self.metrics.published.inc();
    }

    /// A command received: `accepted`, `malformed`, `unknown` or `too_large`.
    pub fn command(&self, outcome: &str) {
        self.metrics
            .commands
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        *lock(&self.commands).entry(outcome.to_string()).or_default() += 1;
    }

    /// The source's state: `opening`, `streaming`, `stalled`, `reopening` or `ended`.
    pub fn camera_state(&self, state: &str) {
        lock(&self.camera).set(&self.metrics.source_state, state);
    }

    /// The controller link's state: `none`, `connected` or `disconnected`.
    pub fn link_state(&self, state: &str) {
        lock(&self.link).set(&self.metrics.link_state, state);
    }

    /// Time since the last frame, `None` before the first.
    pub fn last_frame_age(&self) -> Option<Duration> {
        match self.last_frame.load(Ordering::Relaxed) {
            0 => None,
            at => Some(
                self.started
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(at - 1)),
            ),
        }
    }

    /// Healthy only while a model is loaded, a frame arrived within `max_frame_age` and the verdict
    /// spool can write.
    pub fn health(&self, max_frame_age: Duration) -> Health {
        let models = lock(&self.models).len();
        let spool = lock(&self.spool_failing).clone();
        health::decide(
            models,
            self.last_frame_age(),
            max_frame_age,
            spool.as_deref(),
        )
    }

    /// Frames per second over the last few seconds.
    pub fn fps(&self) -> f64 {
        lock(&self.fps).rate(Instant::now())
    }

    /// The telemetry payload.
    pub fn snapshot(&self) -> Snapshot {
        let m = &self.metrics;
        let latency_ms = Stage::ALL
            .iter()
            .filter_map(|&s| {
                let p = lock(&self.latency[s.index()]).percentiles()?;
                Some((
                    s.as_str().to_string(),
                    Percentiles {
                        p50: round(p.p50, 3),
                        p90: round(p.p90, 3),
                        p99: round(p.p99, 3),
                    },
                ))
            })
            .collect();
        Snapshot {
            schema: hallmark_proto::telemetry::SCHEMA.to_string(),
            thing: self.thing.clone(),
            ts: None,
            uptime_s: self.started.elapsed().as_secs(),
            frames: m.frames.get(),
            fps: round(self.fps(), 2),
            dropped_frames: m.frames_dropped.get(),
            frame_errors: m.frame_errors.get(),
            latency_ms,
            verdicts: lock(&self.verdicts).clone(),
            spool: SpoolSnapshot {
                depth: u64::try_from(m.spool_depth.get()).unwrap_or(0),
                bytes: u64::try_from(m.spool_bytes.get()).unwrap_or(0),
                dropped: m.spool_dropped.get(),
            },
            mqtt: MqttSnapshot {
                connected: m.mqtt_connected.get() != 0,
                reconnects: m.mqtt_reconnects.get(),
            },
            commands: lock(&self.commands).clone(),
            camera: lock(&self.camera).current.clone(),
            link: lock(&self.link).current.clone(),
            models: lock(&self.models).clone(),
            gate: self.gate_snapshot(),
        }
    }

    /// The gate's telemetry, once it has decided or reported anything.
    fn gate_snapshot(&self) -> Option<hallmark_proto::telemetry::Gate> {
        let g = lock(&self.gate);
        if g.decided == 0 && g.outcomes.is_empty() {
            return None;
        }
        let mut m: Vec<f64> = g.margins.iter().copied().collect();
        m.sort_by(f64::total_cmp);
        Some(hallmark_proto::telemetry::Gate {
            decided: g.decided,
            late: g.late,
            margin_mm_min: m.first().map(|v| round(*v, 1)),
            margin_mm_p50: m.get(m.len() / 2).map(|v| round(*v, 1)),
            outcomes: g.outcomes.clone(),
        })
    }

    /// The Prometheus text exposition (OpenMetrics; see [`metrics::CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        // The rate is computed when asked for, not per frame.
        self.metrics.fps.set(round(self.fps(), 2));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.metrics.registry)
        {
            // Writing to a String cannot fail; if the encoder ever does, say so and serve what it wrote.
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_become_counter_increments_and_never_go_back() {
        let o = Observer::new("t");
        o.set_dropped(5);
        o.set_dropped(3);
        o.set_dropped(8);
        o.set_spool_dropped(40);
        let s = o.snapshot();
        assert_eq!((s.dropped_frames, s.spool.dropped), (8, 40));
        assert!(o.encode().contains("hallmark_frames_dropped_total 8\n"));
    }

    #[test]
    fn states_have_exactly_one_current_value() {
        let o = Observer::new("t");
        let text = o.encode();
        assert!(text.contains("hallmark_source_state{state=\"streaming\"} 0\n"));
        o.camera_state("streaming");
        o.camera_state("stalled");
        o.link_state("connected");
        o.camera_state("warming"); // a state this list does not know is still shown
        let text = o.encode();
        assert!(text.contains("hallmark_source_state{state=\"stalled\"} 0\n"));
        assert!(text.contains("hallmark_source_state{state=\"streaming\"} 0\n"));
        assert!(text.contains("hallmark_source_state{state=\"warming\"} 1\n"));
        assert!(text.contains("hallmark_link_state{state=\"connected\"} 1\n"));
        assert!(text.contains("hallmark_link_state{state=\"none\"} 0\n"));
        let s = o.snapshot();
        assert_eq!(
            (s.camera.as_deref(), s.link.as_deref()),
            (Some("warming"), Some("connected"))
        );
    }

    #[test]
    fn model_loads_and_evictions_are_counted() {
        let o = Observer::new("t");
        o.model_built(Duration::from_millis(80));
        o.model_built(Duration::from_millis(90));
        o.model_evicted();
        o.models_in_memory(1);
        let text = o.encode();
        assert!(text.contains("hallmark_model_loads_total 2\n"), "{text}");
        assert!(
            text.contains("hallmark_model_evictions_total 1\n"),
            "{text}"
        );
        assert!(text.contains("hallmark_models_loaded 1\n"), "{text}");
        assert!(
            text.contains("hallmark_model_load_seconds_count 2\n"),
            "{text}"
        );
    }

    #[test]
    fn the_snapshot_is_the_telemetry_schema() {
        let o = Observer::new("kiosk-1");
        o.model_loaded("northwind", 7);
        o.model_loaded("aurora", 3);
        o.model_unloaded("aurora");
        for _ in 0..3 {
            o.frame();
        }
        o.stage(Stage::Inference, Duration::from_millis(20));
        o.stage(Stage::Inference, Duration::from_millis(40));
        o.verdict("genuine");
        o.verdict("genuine");
        o.command("malformed");
        o.spool(2, 900);
        o.mqtt_connected(true);
        o.mqtt_reconnect();
        o.frame_error();
        let v = serde_json::to_value(o.snapshot()).unwrap();
        assert_eq!(v["schema"], "hallmark.telemetry/1");
        assert_eq!(v["thing"], "kiosk-1");
        assert_eq!(v["frames"], 3);
        assert_eq!(v["frame_errors"], 1);
        assert_eq!(v["latency_ms"]["inference"]["p50"], 20.0);
        assert_eq!(v["latency_ms"]["inference"]["p99"], 40.0);
        assert!(
            v["latency_ms"].get("preprocess").is_none(),
            "only stages with samples: {v}"
        );
        assert_eq!(v["verdicts"]["genuine"], 2);
        assert_eq!(v["commands"]["malformed"], 1);
        assert_eq!(
            v["spool"],
            serde_json::json!({"depth": 2, "bytes": 900, "dropped": 0})
        );
        assert_eq!(
            v["mqtt"],
            serde_json::json!({"connected": true, "reconnects": 1})
        );
        assert_eq!(v["models"], serde_json::json!({"northwind": 7}));
        assert!(v["camera"].is_null() && v["link"].is_null());
        assert!(v["uptime_s"].is_u64() && v["fps"].is_f64());
        let text = o.encode();
        assert!(text.contains("hallmark_model_revision{brand=\"northwind\"} 7\n"));
        assert!(!text.contains("aurora"), "{text}");
    }

    #[test]
    fn health_needs_a_model_and_a_recent_frame() {
        let o = Observer::new("t");
        let age = Duration::from_secs(10);
        assert_eq!(o.health(age).reason, "no model loaded; no frame yet");
        o.model_loaded("northwind", 7);
        o.frame();
        assert!(o.health(age).ok);
        assert!(o.last_frame_age().unwrap() < age);
        o.model_unloaded("northwind");
        assert_eq!(o.health(age).reason, "no model loaded");
    }

    #[test]
    fn the_provider_in_use_is_one_gauge_per_brand() {
        let o = Observer::new("kiosk-1");
        o.model_loaded("northwind", 7);
        o.model_provider("northwind", "cuda");
        o.model_provider("aurora", "cpu");
        o.model_provider("northwind", "cpu");
        let text = o.encode();
        assert!(
            text.contains("hallmark_provider{brand=\"northwind\",provider=\"cpu\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hallmark_provider{brand=\"aurora\",provider=\"cpu\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("provider=\"cuda\""), "{text}");
        o.model_unloaded("aurora");
        assert!(!o.encode().contains("brand=\"aurora\",provider"));
        assert_eq!(
            o.providers(),
            BTreeMap::from([("northwind".to_string(), "cpu".to_string())])
        );
    }
}
