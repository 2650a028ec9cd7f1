//! Configuration: one TOML file, every key with a default, each overridable by a `HALLMARK_*`
//! environment variable, then by command-line flags; layered with `figment` and validated into the
//! typed [`Config`].
//!
//! An environment variable `HALLMARK_<SECTION>_<KEY>` sets `section.key`: the first `_` after the prefix
//! separates the two (`HALLMARK_AGENT_STATE_DIR` is `agent.state_dir`). Lists are comma-separated there.
//! A few variables are not configuration ([`NOT_CONFIG`]: `HALLMARK_LOG`, the filter, and those of the
//! project's own tools and tests); any other `HALLMARK_*` variable whose section Hallmark does not have
//! (`HALLMARK_MQQT_ENABLED`, `HALLMARK_SOURCE`) is an error that names it, as is an unknown key in a
//! known section, in the file or the environment.
//!
//! ```toml
//! [agent]
//! mode = "kiosk"             # kiosk | conveyor
//! thing = "store-12-kiosk-1" # default: AWS_IOT_THING_NAME, else the host name
//! state_dir = "/var/lib/hallmark"
//! [source]
//! kind = "replay"            # replay | camera
//! path = "models/samples/northwind"
//! fps = 2.0                  # 0 = as fast as possible
//! loop = false
//! device = "0"               # camera: index, /dev/videoN or a name
//! brand = "northwind"        # several brands: the one an empty view keeps at start (default: the first)
//! route_every = 0            # several brands: also read the routing barcodes on 1 frame in N (0: only
//!                            # when sight is unsure)
//! [model]
//! bundles = ["models/northwind"]  # several: each frame routed by sight (barcodes when unsure)
//! memory_budget_mib = 512    # detectors loaded at once (least recently used unloaded first)
//! variant = "fast-224"       # run a bundle variant by name, "main" the main model (default: the
//!                            # bundle's default for the mode, else its main model); per brand:
//!                            # "northwind=quarter-turns, aurora=fast-224" (a brand not named: its default)
//! precision = "auto"         # auto | fp32 | fp16 | int8 (auto: fp16 variant on a GPU provider)
//! [kiosk]
//! trigger = "frame"          # frame | button | auto
//! [link]
//! port = "/dev/ttyUSB0"
//! [evidence]
//! max_files = 500
//! max_mib = 200
//! min_free_mib = 128         # no picture is written while less is free (default: twice spool.max_mib)
//! ```
//! Relative paths in a file are taken from the file's folder; the defaults are looked up from the
//! current folder and from the executable's folder upwards (so a built `hallmark` finds the shipped
//! bundle and demo key of its checkout wherever it is started).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

mod file;

use file::Raw;
pub use file::NOT_CONFIG;

pub use hallmark_core::gate::{Direction, GateConfig, OnLate};
pub use hallmark_core::modes::{ConveyorConfig, KioskConfig, Mode, Trigger};

pub use crate::delivery::MqttConfig;
use crate::imageio::ImageLimits;
pub use crate::logging::LogFormat;
use crate::runtime::{GpuOptions, Provider as ExecutionProvider, RuntimeOptions};

pub const DEFAULT_BUNDLE: &str = "models/northwind";
pub const DEFAULT_PUBLIC_KEY: &str = "models/keys/demo-publisher.pub.pem";
pub const DEFAULT_REPLAY: &str = "models/samples/northwind";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        // Design: figment's message names the key and where its value came from (file or variable).
        ConfigError::Invalid(e.to_string().replace("unknown field", "unknown key"))
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub runtime: RuntimeOptions,
    /// Bundles served; the first is the default brand.
    pub bundles: Vec<PathBuf>,
    pub public_keys: Vec<PathBuf>,
    pub updates: UpdatesConfig,
    pub brands: BrandsConfig,
    pub image: ImageLimits,
    pub agent: AgentConfig,
    pub source: SourceConfig,
    pub kiosk: KioskConfig,
    pub conveyor: ConveyorConfig,
    pub link: LinkConfig,
    pub evidence: EvidenceConfig,
    pub output: OutputConfig,
    pub verdict: VerdictConfig,
    pub mqtt: MqttConfig,
    pub spool: SpoolConfig,
    pub http: HttpConfig,
    pub health: HealthConfig,
    pub log: LogConfig,
}

impl Config {
    /// The first bundle (what `scan` and `bench` use without `--model`).
    pub fn bundle(&self) -> &Path {
        &self.bundles[0]
    }

    /// What delivery needs: the broker, the thing it speaks for, and the spool.
    pub fn delivery(&self) -> crate::delivery::Settings {
        crate::delivery::Settings {
            mqtt: self.mqtt.clone(),
            thing: self.agent.thing.clone(),
            spool_path: self.agent.state_dir.join("spool.redb"),
            spool_max_bytes: self.spool.max_bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub mode: Mode,
    pub thing: String,
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Replay,
    Camera,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub kind: SourceKind,
    pub path: PathBuf,
    /// Replay pace (0 = unthrottled); camera: requested frame rate (0 = the camera's default).
    pub fps: f64,
    pub looping: bool,
    /// Decode a replay's files once at start (benchmarks).
    pub preload: bool,
    pub device: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<String>,
    /// No frame for this long: the camera is reopened.
    pub stall_timeout: Duration,
    /// When inference is slower than the source, keep only the freshest frame (count the rest as
    /// dropped) instead of making the source wait. Default: on for a camera, off for a replay (a
    /// recording's every frame counts).
    pub drop_when_busy: bool,
    /// With several brands: the brand a view in which no detector sees anything keeps before any frame
    /// was routed (`None`: the first bundle's).
    pub brand: Option<String>,
    /// With several brands: also read the barcodes that route frames to a brand on one frame in this
    /// many, before inference (a code there saves the other brands' inferences). 0, the default: frames
    /// are routed by sight, and the barcodes read only when sight is unsure.
    pub route_every: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    pub port: Option<PathBuf>,
    pub baud: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceConfig {
    pub enabled: bool,
    pub max_files: usize,
    pub max_mib: u64,
    /// No picture is written while less than this is free on the state folder's file system: the
    /// room is the spool's (default: twice `spool.max_mib`).
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputConfig {
    /// Verdict events as JSON Lines on stdout.
    pub stdout: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerdictConfig {
    /// The same serial seen again within this window is the same pack scanned again, not a clone.
    pub serial_rescan_window: Duration,
    /// Serials remembered (oldest forgotten first).
    pub serial_memory: usize,
    /// Read barcodes inside each item (off: the detector alone decides, e.g. for packs without codes).
    pub barcodes: bool,
}

/// Fleet model updates (`model.updates`, `model.max_bundle_mib`, `model.keep_revisions`).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatesConfig {
    /// Take new revisions from the fleet's release topics (needs `mqtt.enabled`).
    pub enabled: bool,
    /// Largest bundle accepted, however it comes: a release's archive, what it unpacks to, and what
    /// `models install` and `publish` take.
    pub max_bundle_bytes: u64,
    /// Revisions kept per brand in the store besides the active and previous ones.
    pub keep_revisions: usize,
    /// A download slower than `download_min_kib_s` over `download_stall_s` is stalled: it fails, is
    /// retried and resumes, and never holds the updater for the whole download timeout.
    pub download_stall: Duration,
    pub download_min_rate: u64,
}

/// Many brands on one device (`model.memory_budget_mib`): every bundle in `model.bundles` serves; the
/// detectors loaded at once stay within the budget (least recently used unloaded first).
#[derive(Debug, Clone, PartialEq)]
pub struct BrandsConfig {
    /// Estimated memory the loaded detectors may take together.
    pub memory_budget_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpoolConfig {
    /// Bound of the verdict spool in payload bytes (`spool.max_mib`, fractions allowed); when full
    /// the oldest are dropped and counted.
    pub max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// `/metrics` and `/healthz`; `""` or `"off"`: no listener.
    pub listen: Option<String>,
    /// Connections held at once (`http.max_connections`); one more is closed at once.
    pub max_connections: usize,
    /// How long a connection may wait to send a request's head (`http.idle_timeout_s`).
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// `/healthz` answers 200 only while the source delivered a frame within this.
    pub max_frame_age: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// A positive, finite number of seconds as a duration.
fn seconds(key: &str, v: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        ConfigError::Invalid(format!(
            "{key} {v} must be 0 or a positive number of seconds"
        ))
    })
}

impl Config {
    /// Defaults, then the file (if any), then `HALLMARK_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut raw = Raw::read(file, env.into_iter().collect())?;
        let mut f = std::mem::take(&mut raw.file);
        let rel = |key: &str, p: PathBuf| raw.rel(key, p);
        let from_env = |key: &str| raw.set_by_env(key);
        let bad = ConfigError::Invalid;

        let providers = match f.runtime.providers.take() {
            Some(list) => list
                .iter()
                .map(|p| p.parse::<ExecutionProvider>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| bad(format!("runtime.providers: {m}")))?,
            None => vec![ExecutionProvider::Cpu],
        };
        if providers.is_empty() {
            return Err(bad("runtime.providers is empty".into()));
        }
        // The demo configuration: no bundle named, so the shipped demo bundle.
        let demo = f.model.bundles.is_none() && f.model.bundle.is_none();
        // `model.bundles` and the older `model.bundle` are one setting: set in two layers, the later
        // layer (the environment) wins as for every other key; set in one layer, it is ambiguous.
        let many = |list: Vec<String>| -> Vec<PathBuf> {
            list.into_iter()
                .map(|p| rel("model.bundles", p.into()))
                .collect()
        };
        let bundles = match (f.model.bundles.take(), f.model.bundle.take()) {
            (Some(list), Some(one)) => match (from_env("model.bundles"), from_env("model.bundle")) {
                (true, false) => many(list),
                (false, true) => vec![rel("model.bundle", one)],
                _ => {
                    return Err(bad(format!(
                        "model.bundles ({}) and model.bundle ({}) are both set in the same place: set one",
                        list.join(", "),
                        one.display()
                    )))
                }
            },
            (Some(list), None) => many(list),
            (None, Some(one)) => vec![rel("model.bundle", one)],
            (None, None) => vec![project_path(DEFAULT_BUNDLE)],
        };
        if bundles.is_empty() {
            return Err(bad("model.bundles is empty".into()));
        }
        let public_keys = match f.trust.public_keys {
            Some(list) => list
                .into_iter()
                .map(|p| rel("trust.public_keys", p.into()))
                .collect(),
            // Design: a release build trusts only the keys its configuration names; the demo key is
            // the default only for the demo bundle (and in debug builds, for tests and development).
            None if demo || cfg!(debug_assertions) => vec![project_path(DEFAULT_PUBLIC_KEY)],
            None => {
                return Err(bad(
                    "trust.public_keys is not set: name the publisher keys to trust (a release build trusts the demo key only for the demo bundle)".into(),
                ))
            }
        };
        let limits = ImageLimits::default();
        let kind = f.source.kind.unwrap_or(SourceKind::Replay);
        let fps = f.source.fps.unwrap_or(match kind {
            SourceKind::Replay => 0.0,
            SourceKind::Camera => 0.0,
        });
        if !(fps >= 0.0 && fps.is_finite()) {
            return Err(bad(format!("source.fps {fps} must be 0 or positive")));
        }
        let mode = f.agent.mode.unwrap_or(Mode::Kiosk);
        let conveyor = ConveyorConfig {
            track_iou: f.conveyor.track_iou.unwrap_or(0.2),
            max_missed: f.conveyor.max_missed.unwrap_or(3),
            max_frames: f.conveyor.max_frames.unwrap_or(30),
            min_frames: f.conveyor.min_frames.unwrap_or(2),
            reject_pulse_ms: f.conveyor.reject_pulse_ms.unwrap_or(300),
            reject_inconclusive: f.conveyor.reject_inconclusive.unwrap_or(true),
            gate: resolve_gate(&f.conveyor)?,
            added_latency: std::time::Duration::from_millis(
                f.conveyor.added_latency_ms.unwrap_or(0),
            ),
        };
        if !(conveyor.track_iou > 0.0 && conveyor.track_iou < 1.0) || conveyor.max_frames == 0 {
            return Err(bad(
                "conveyor.track_iou must be in (0, 1) and conveyor.max_frames above 0".into(),
            ));
        }
        let kiosk = KioskConfig {
            trigger: f.kiosk.trigger.unwrap_or(match kind {
                SourceKind::Replay => Trigger::Frame,
                SourceKind::Camera => Trigger::Button,
            }),
            scan_frames: f.kiosk.scan_frames.unwrap_or(5).max(1),
            scan_timeout: Duration::from_millis(f.kiosk.scan_timeout_ms.unwrap_or(3000)),
            still_frames: f.kiosk.still_frames.unwrap_or(3).max(1),
        };
        let thing = f
            .agent
            .thing
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(default_thing);
        topic_level("agent.thing", &thing).map_err(bad)?;
        let mqtt = resolve_mqtt(&f.mqtt, &raw, &thing)?;
        let spool_mib = f.spool.max_mib.unwrap_or(64.0);
        if !(spool_mib > 0.0 && spool_mib.is_finite()) {
            return Err(bad(format!("spool.max_mib {spool_mib} must be positive")));
        }
        let state_dir = f
            .agent
            .state_dir
            .map(|p| rel("agent.state_dir", p))
            .unwrap_or_else(default_state_dir);
        Ok(Config {
            updates: resolve_updates(&f.model)?,
            brands: BrandsConfig {
                memory_budget_bytes: f.model.memory_budget_mib.unwrap_or(512).max(1) << 20,
            },
            mqtt,
            spool: SpoolConfig {
                max_bytes: ((spool_mib * 1024.0 * 1024.0) as u64).max(1024),
            },
            http: resolve_http(&f.http)?,
            health: HealthConfig {
                max_frame_age: seconds(
                    "health.max_frame_age",
                    f.health.max_frame_age.unwrap_or(10.0),
                )?,
            },
            log: LogConfig {
                format: f.log.format.unwrap_or(LogFormat::Text),
            },
            runtime: resolve_runtime(
                f.runtime,
                providers,
                (f.model.variant, f.model.precision, mode),
                &state_dir,
                &raw,
            )?,
            bundles,
            public_keys,
            image: ImageLimits {
                max_width: f.image.max_width.unwrap_or(limits.max_width),
                max_height: f.image.max_height.unwrap_or(limits.max_height),
                max_alloc: f
                    .image
                    .max_alloc_mib
                    .map(|m| m << 20)
                    .unwrap_or(limits.max_alloc),
            },
            agent: AgentConfig {
                mode,
                thing,
                state_dir: state_dir.clone(),
            },
            source: resolve_source(f.source, kind, fps, &raw),
            kiosk,
            conveyor,
            link: LinkConfig {
                port: f.link.port.map(|p| rel("link.port", p)),
                baud: f.link.baud.unwrap_or(115_200),
            },
            evidence: resolve_evidence(&f.evidence, spool_mib)?,
            output: OutputConfig {
                stdout: f.output.stdout.unwrap_or(true),
            },
            verdict: VerdictConfig {
                // Design: at a kiosk the same pack is often scanned twice; on a conveyor each pack
                // passes once, so a serial seen again is a clone however soon.
                serial_rescan_window: Duration::from_secs(
                    f.verdict.serial_rescan_window_s.unwrap_or(match mode {
                        Mode::Kiosk => 600,
                        Mode::Conveyor => 0,
                    }),
                ),
                serial_memory: f.verdict.serial_memory.unwrap_or(100_000).max(1),
                barcodes: f.verdict.barcodes.unwrap_or(true),
            },
        })
    }

    /// Loads with the process environment.
    pub fn load_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load(file, file::hallmark_vars(std::env::vars()))
    }
}

/// `[runtime]` with the encoding `model.variant` and `model.precision` choose for `mode`; TensorRT
/// engines are cached under `state_dir`.
fn resolve_runtime(
    rt: file::RuntimeSection,
    providers: Vec<ExecutionProvider>,
    (variant, precision, mode): (Option<String>, Option<String>, Mode),
    state_dir: &Path,
    raw: &Raw,
) -> Result<RuntimeOptions, ConfigError> {
    let bad = ConfigError::Invalid;
    Ok(RuntimeOptions {
        ort_lib: rt.ort_lib.map(|p| raw.rel("runtime.ort_lib", p)),
        providers,
        intra_threads: rt.intra_threads.filter(|&n| n > 0),
        spinning: rt.spinning.unwrap_or(true),
        gpu: GpuOptions {
            device_id: rt.device_id.unwrap_or(0),
            fp16: rt.fp16.unwrap_or(false),
            int8_calibration: rt
                .int8_calibration
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| raw.rel("runtime.int8_calibration", p)),
            dla_core: rt.dla_core,
            trt_workspace_mib: rt.trt_workspace_mib.filter(|&m| m > 0),
            cuda_graphs: rt.cuda_graphs.unwrap_or(false),
        },
        fallback: rt.fallback.unwrap_or(false),
        engine_dir: Some(state_dir.join("engines")),
        encoding: crate::bundle::EncodingChoice {
            // An empty value (an unset environment variable) names nothing: the bundle's default for
            // the mode (`default_variants`), else its main model.
            variant: match variant.filter(|v| !v.trim().is_empty()) {
                Some(v) => {
                    crate::bundle::variant_for(&v, "")
                        .map_err(|m| bad(format!("model.variant: {m}")))?;
                    Some(v)
                }
                None => None,
            },
            precision: precision
                .as_deref()
                .unwrap_or("auto")
                .parse()
                .map_err(|m| bad(format!("model.precision: {m}")))?,
            mode: Some(mode.as_str().to_string()),
        },
    })
}

/// `[source]`, with its kind and frame rate already checked.
fn resolve_source(s: file::SourceSection, kind: SourceKind, fps: f64, raw: &Raw) -> SourceConfig {
    SourceConfig {
        kind,
        path: s
            .path
            .map(|p| raw.rel("source.path", p))
            .unwrap_or_else(|| project_path(DEFAULT_REPLAY)),
        fps,
        looping: s.looping.unwrap_or(false),
        preload: s.preload.unwrap_or(false),
        device: s.device.unwrap_or_else(|| "0".into()),
        width: s.width,
        height: s.height,
        format: s.format,
        stall_timeout: Duration::from_millis(s.stall_timeout_ms.unwrap_or(2000)),
        drop_when_busy: s.drop_when_busy.unwrap_or(kind == SourceKind::Camera),
        brand: s.brand.filter(|b| !b.trim().is_empty()),
        route_every: s.route_every.unwrap_or(0),
    }
}

/// `[evidence]`; by default pictures leave twice the spool's bound free on the state disk.
fn resolve_evidence(
    e: &file::EvidenceSection,
    spool_mib: f64,
) -> Result<EvidenceConfig, ConfigError> {
    let bad = ConfigError::Invalid;
    Ok(EvidenceConfig {
        enabled: e.enabled.unwrap_or(true),
        max_files: e.max_files.unwrap_or(500),
        max_mib: e.max_mib.unwrap_or(200),
        min_free_bytes: match e.min_free_mib {
            Some(m) if !(m.is_finite() && m >= 0.0) => {
                return Err(bad(format!(
                    "evidence.min_free_mib {m} must be a number of MiB, 0 or more"
                )))
            }
            Some(m) => (m * 1024.0 * 1024.0) as u64,
            None => ((spool_mib * 2.0 * 1024.0 * 1024.0) as u64).max(1 << 20),
        },
    })
}

/// `[mqtt]`, resolved: the broker, the client id (default `thing`), timings and limits.
fn resolve_mqtt(m: &file::MqttSection, raw: &Raw, thing: &str) -> Result<MqttConfig, ConfigError> {
    let bad = ConfigError::Invalid;
    let broker = Broker::resolve(m, raw)?;
    Ok(MqttConfig {
        enabled: m.enabled.unwrap_or(false),
        host: broker.host,
        port: broker.port,
        client_id: m
            .client_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| thing.to_string()),
        prefix: broker.prefix,
        ca: broker.ca,
        cert: broker.cert,
        key: broker.key,
        keep_alive: Duration::from_secs(m.keep_alive_s.unwrap_or(30).max(5)),
        telemetry_interval: seconds(
            "mqtt.telemetry_interval_s",
            m.telemetry_interval_s.unwrap_or(60.0),
        )?,
        backoff_max: seconds("mqtt.backoff_max_s", m.backoff_max_s.unwrap_or(30.0))?
            .max(Duration::from_millis(500)),
        max_inflight: m.max_inflight.unwrap_or(32).clamp(1, 1000),
        drain_timeout: Duration::from_millis(m.drain_timeout_ms.unwrap_or(5000)),
        max_incoming_bytes: match m.max_incoming_mib.unwrap_or(64.0) {
            m if m.is_finite() && (0.0625..=256.0).contains(&m) => (m * 1048576.0) as usize,
            m => {
                return Err(bad(format!(
                    "mqtt.max_incoming_mib {m} must lie between 0.0625 (64 KiB) and 256 (MQTT's own limit)"
                )))
            }
        },
    })
}

/// Fleet updates (`model.updates`, the bundle limit, download timeouts).
fn resolve_updates(model: &file::ModelSection) -> Result<UpdatesConfig, ConfigError> {
    let bad = ConfigError::Invalid;
    Ok(UpdatesConfig {
        enabled: model.updates.unwrap_or(true),
        max_bundle_bytes: max_bundle_bytes(model.max_bundle_mib),
        keep_revisions: model.keep_revisions.unwrap_or(1),
        download_stall: seconds(
            "model.download_stall_s",
            model.download_stall_s.unwrap_or(60.0),
        )?
        .max(Duration::from_secs(1)),
        download_min_rate: match model.download_min_kib_s.unwrap_or(1.0) {
            k if k.is_finite() && k >= 0.0 => (k * 1024.0) as u64,
            k => {
                return Err(bad(format!(
                    "model.download_min_kib_s {k} must be a number of KiB/s, 0 or more"
                )))
            }
        },
    })
}

/// `[conveyor]`'s reject gate: on when `gate_distance_mm` is set, which then needs the camera's
/// calibration (`px_per_mm`); without it a reject pulses when the pack's verdict comes, as before.
fn resolve_gate(c: &file::ConveyorSection) -> Result<Option<GateConfig>, ConfigError> {
    let bad = ConfigError::Invalid;
    let Some(distance_mm) = c.gate_distance_mm else {
        for (key, set) in [
            ("px_per_mm", c.px_per_mm.is_some()),
            ("counts_per_mm", c.counts_per_mm.is_some()),
            ("direction", c.direction.is_some()),
            ("on_late", c.on_late.is_some()),
        ] {
            if set {
                return Err(bad(format!(
                    "conveyor.{key} is set but conveyor.gate_distance_mm is not: set the gate's \
                     distance from the view's exit edge to use the reject gate"
                )));
            }
        }
        return Ok(None);
    };
    let positive = |key: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(bad(format!("conveyor.{key} {v} must be a positive number")))
        }
    };
    if !(distance_mm.is_finite() && distance_mm >= 0.0) {
        return Err(bad(format!(
            "conveyor.gate_distance_mm {distance_mm} must be 0 or a positive number of millimetres"
        )));
    }
    let px_per_mm = c.px_per_mm.ok_or_else(|| {
        bad(
            "conveyor.gate_distance_mm needs conveyor.px_per_mm, the camera's pixels per \
             millimetre of belt"
                .into(),
        )
    })?;
    Ok(Some(GateConfig {
        distance_mm,
        counts_per_mm: positive("counts_per_mm", c.counts_per_mm.unwrap_or(1.0))?,
        px_per_mm: positive("px_per_mm", px_per_mm)?,
        direction: c.direction.unwrap_or(Direction::LeftToRight),
        on_late: c.on_late.unwrap_or(OnLate::Reject),
        pulse_ms: c.reject_pulse_ms.unwrap_or(300),
        min_frames: c.min_frames.unwrap_or(2),
    }))
}

/// `[http]`: the `/metrics` and `/healthz` listener.
fn resolve_http(http: &file::HttpSection) -> Result<HttpConfig, ConfigError> {
    let bad = ConfigError::Invalid;
    Ok(HttpConfig {
        listen: match http.listen.clone() {
            // "off" too: an empty environment variable means "not set".
            Some(l) if l.trim().is_empty() || l.trim() == "off" => None,
            Some(l) => Some(l.trim().to_string()),
            None => Some("127.0.0.1:9464".into()),
        },
        max_connections: match http.max_connections.unwrap_or(32) {
            n @ 1..=4096 => n,
            n => {
                return Err(bad(format!(
                    "http.max_connections {n} must lie between 1 and 4096"
                )))
            }
        },
        idle_timeout: seconds("http.idle_timeout_s", http.idle_timeout_s.unwrap_or(10.0))?
            .max(Duration::from_millis(100)),
    })
}

/// The broker as `[mqtt]` names it, for the agent and for an operator's tools alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    pub host: String,
    /// 1883, or 8883 when `ca` is set.
    pub port: u16,
    pub prefix: String,
    /// PEM files; `ca` turns TLS on, `cert` + `key` add a client certificate (mutual TLS).
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl Broker {
    fn resolve(m: &file::MqttSection, raw: &Raw) -> Result<Broker, ConfigError> {
        let bad = ConfigError::Invalid;
        let ca = m.ca.clone().map(|p| raw.rel("mqtt.ca", p));
        let cert = m.cert.clone().map(|p| raw.rel("mqtt.cert", p));
        let key = m.key.clone().map(|p| raw.rel("mqtt.key", p));
        if cert.is_some() != key.is_some() {
            return Err(bad(
                "mqtt.cert and mqtt.key go together (a client certificate needs its key)".into(),
            ));
        }
        Ok(Broker {
            host: m.host.clone().unwrap_or_else(|| "localhost".into()),
            port: m.port.unwrap_or(if ca.is_some() { 8883 } else { 1883 }),
            prefix: match &m.prefix {
                Some(p) => {
                    let p = p.trim_end_matches('/').to_string();
                    for level in p.split('/') {
                        topic_level("mqtt.prefix", level).map_err(bad)?;
                    }
                    p
                }
                None => hallmark_proto::topics::DEFAULT_PREFIX.into(),
            },
            ca,
            cert,
            key,
        })
    }
}

/// `model.max_bundle_mib` in bytes (256 MiB when unset).
fn max_bundle_bytes(mib: Option<u64>) -> u64 {
    mib.unwrap_or(256).max(1) << 20
}

/// What an operator's tool (`hallmark publish`, `hallmark fleet status`) takes from the configuration:
/// the broker and the bundle limit devices hold releases to. Only these are read and checked, so a
/// device configuration's other settings (bundles, keys, camera) never stop an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    pub broker: Broker,
    /// `model.max_bundle_mib` in bytes.
    pub max_bundle_bytes: u64,
}

impl Operator {
    /// The file (if any), then `HALLMARK_*` variables from `env`; unknown sections and keys are still
    /// refused.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Operator, ConfigError> {
        let raw = Raw::read(file, env.into_iter().collect())?;
        Ok(Operator {
            broker: Broker::resolve(&raw.file.mqtt, &raw)?,
            max_bundle_bytes: max_bundle_bytes(raw.file.model.max_bundle_mib),
        })
    }

    /// Loads with the process environment.
    pub fn load_env(file: Option<&Path>) -> Result<Operator, ConfigError> {
        Operator::load(file, file::hallmark_vars(std::env::vars()))
    }
}

/// `AWS_IOT_THING_NAME` (Greengrass sets it), else the host name.
fn default_thing() -> String {
    std::env::var("AWS_IOT_THING_NAME")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "hallmark".into())
}

/// Checks that `value` can be one level of an MQTT topic: not empty, and no `/`, `+`, `#` or NUL
/// (a thing named `a/b` or `k+1` would make topics the broker refuses, and drop every connection).
fn topic_level(key: &str, value: &str) -> Result<(), String> {
    let bad = value.chars().find(|c| matches!(c, '/' | '+' | '#' | '\0'));
    match bad {
        _ if value.is_empty() => Err(format!("{key} has an empty topic level")),
        Some(c) => Err(format!(
            "{key} {value:?} holds {c:?}, which MQTT topics do not allow there"
        )),
        None => Ok(()),
    }
}

/// `$STATE_DIRECTORY` (systemd), else `$XDG_STATE_HOME/hallmark`, else `~/.local/state/hallmark`.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("hallmark");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/hallmark"),
        None => std::env::temp_dir().join("hallmark-state"),
    }
}

/// A path of the checkout (`models/...`): from the current folder, else from the executable's folder
/// upwards; the plain relative path when neither has it (the error then names it).
pub fn project_path(rel: &str) -> PathBuf {
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    let starts = cwd
        .iter()
        .map(|p| p.as_path())
        .chain(exe.iter().flat_map(|e| e.ancestors().skip(1)));
    for dir in starts {
        let candidate = dir.join(rel);
        if candidate.exists() {
            return candidate;
        }
    }
    PathBuf::from(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.runtime.providers, vec![ExecutionProvider::Cpu]);
        assert_eq!(c.runtime.intra_threads, None);
        assert!(c.bundle().ends_with("models/northwind"));
        assert_eq!(c.image, ImageLimits::default());
        assert_eq!(
            (c.agent.mode, c.source.kind, c.kiosk.trigger),
            (Mode::Kiosk, SourceKind::Replay, Trigger::Frame)
        );
        assert!(c.source.path.ends_with("models/samples/northwind"));
        assert!(!c.source.looping && !c.source.drop_when_busy && c.output.stdout);
    }

    #[test]
    fn a_named_bundle_trusts_the_demo_key_only_in_debug_builds() {
        // The demo bundle alone trusts the demo key in every build.
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.public_keys[0].ends_with(DEFAULT_PUBLIC_KEY));
        let named = Config::load(None, env(&[("HALLMARK_MODEL_BUNDLE", "/b")]));
        if cfg!(debug_assertions) {
            assert!(named.unwrap().public_keys[0].ends_with(DEFAULT_PUBLIC_KEY));
        } else {
            let err = named.unwrap_err().to_string();
            assert!(err.contains("trust.public_keys is not set"), "{err}");
        }
        let c = Config::load(
            None,
            env(&[
                ("HALLMARK_MODEL_BUNDLE", "/b"),
                ("HALLMARK_TRUST_PUBLIC_KEYS", "/keys/fleet.pem"),
            ]),
        )
        .unwrap();
        assert_eq!(c.public_keys, vec![PathBuf::from("/keys/fleet.pem")]);
    }

    #[test]
    fn file_values_are_taken_relative_to_the_file_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hallmark.toml");
        std::fs::write(&path, "[runtime]\nproviders = [\"cuda\", \"cpu\"]\nintra_threads = 3\n[model]\nbundle = \"b\"\n[agent]\nstate_dir = \"state\"\nmode = \"conveyor\"\n[trust]\npublic_keys = [\"k.pem\"]\n").unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(
            c.runtime.providers,
            vec![ExecutionProvider::Cuda, ExecutionProvider::Cpu]
        );
        assert_eq!(c.runtime.intra_threads, Some(3));
        assert_eq!(c.bundles, vec![dir.path().join("b")]);
        assert_eq!(c.agent.state_dir, dir.path().join("state"));
        assert_eq!(c.agent.mode, Mode::Conveyor);
        let c = Config::load(
            Some(&path),
            env(&[
                ("HALLMARK_RUNTIME_PROVIDERS", "tensorrt"),
                ("HALLMARK_RUNTIME_INTRA_THREADS", "1"),
                ("HALLMARK_AGENT_STATE_DIR", "/tmp/s"),
                ("HALLMARK_MODEL_BUNDLES", "x, y"),
                ("HALLMARK_SOURCE_LOOP", "true"),
                ("HALLMARK_AGENT_THING", "0042"),
                ("HALLMARK_LOG", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(c.runtime.providers, vec![ExecutionProvider::Tensorrt]);
        assert_eq!(c.runtime.intra_threads, Some(1));
        assert_eq!(
            c.agent.state_dir,
            PathBuf::from("/tmp/s"),
            "the first _ after the prefix separates section and key"
        );
        assert_eq!(c.bundles, vec![PathBuf::from("x"), PathBuf::from("y")]);
        assert!(c.source.looping);
        assert_eq!(c.agent.thing, "0042");
        let c = Config::load(
            None,
            env(&[
                ("HALLMARK_MODEL_MEMORY_BUDGET_MIB", "40"),
                ("HALLMARK_SOURCE_BRAND", "aurora"),
                ("HALLMARK_SOURCE_ROUTE_EVERY", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(c.source.route_every, 4);
        assert_eq!(c.brands.memory_budget_bytes, 40 << 20);
        assert_eq!(c.source.brand.as_deref(), Some("aurora"));
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.brands.memory_budget_bytes, 512 << 20);
        assert_eq!(c.source.brand, None);
    }

    #[test]
    fn typos_and_bad_values_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hallmark.toml");
        std::fs::write(&path, "[runtime]\nprovider = [\"cpu\"]\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("provider") && err.contains("unknown key"),
            "{err}"
        );
        let err = Config::load(None, env(&[("HALLMARK_RUNTIME_PROVIDERS", "gpu")])).unwrap_err();
        assert!(
            err.to_string().contains("runtime.providers") && err.to_string().contains("gpu"),
            "{err}"
        );
        let err = Config::load(None, env(&[("HALLMARK_AGENT_MODES", "kiosk")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("modes"), "{err}");
        let err = Config::load(None, env(&[("HALLMARK_SOURCE_FPS", "fast")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HALLMARK_SOURCE_FPS"), "{err}");
        std::fs::write(&path, "[agent\nmode = 1").unwrap();
        assert!(Config::load(Some(&path), env(&[])).is_err());
        assert!(matches!(
            Config::load(Some(&dir.path().join("none.toml")), env(&[])),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn gpu_provider_options_have_defaults_file_values_and_env_overrides() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.runtime.gpu, GpuOptions::default());
        assert!(!c.runtime.fallback);
        assert_eq!(
            c.runtime.engine_dir.as_deref(),
            Some(c.agent.state_dir.join("engines").as_path())
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hallmark.toml");
        std::fs::write(
            &path,
            "[runtime]\nproviders = [\"tensorrt\", \"cuda\"]\ndevice_id = 1\nfp16 = true\nint8_calibration = \"cal.table\"\ndla_core = 0\ntrt_workspace_mib = 1024\ncuda_graphs = true\nfallback = true\n[agent]\nstate_dir = \"state\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(
            c.runtime.gpu,
            GpuOptions {
                device_id: 1,
                fp16: true,
                int8_calibration: Some(dir.path().join("cal.table")),
                dla_core: Some(0),
                trt_workspace_mib: Some(1024),
                cuda_graphs: true,
            }
        );
        assert!(c.runtime.fallback);
        assert_eq!(c.runtime.engine_dir, Some(dir.path().join("state/engines")));
        let c = Config::load(
            Some(&path),
            env(&[
                ("HALLMARK_RUNTIME_DEVICE_ID", "2"),
                ("HALLMARK_RUNTIME_FP16", "false"),
                ("HALLMARK_RUNTIME_DLA_CORE", "1"),
                ("HALLMARK_RUNTIME_TRT_WORKSPACE_MIB", "64"),
                ("HALLMARK_RUNTIME_CUDA_GRAPHS", "false"),
                ("HALLMARK_RUNTIME_FALLBACK", "false"),
                ("HALLMARK_RUNTIME_INT8_CALIBRATION", "/abs/t.cache"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                c.runtime.gpu.device_id,
                c.runtime.gpu.fp16,
                c.runtime.gpu.dla_core
            ),
            (2, false, Some(1))
        );
        assert_eq!(c.runtime.gpu.trt_workspace_mib, Some(64));
        assert!(!c.runtime.gpu.cuda_graphs && !c.runtime.fallback);
        assert_eq!(
            c.runtime.gpu.int8_calibration,
            Some(PathBuf::from("/abs/t.cache"))
        );
    }

    #[test]
    fn the_reject_gate_is_on_with_its_distance_and_needs_the_cameras_calibration() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.conveyor.gate, None, "no gate unless configured");
        let c = Config::load(
            None,
            env(&[
                ("HALLMARK_CONVEYOR_GATE_DISTANCE_MM", "400"),
                ("HALLMARK_CONVEYOR_PX_PER_MM", "2.5"),
                ("HALLMARK_CONVEYOR_DIRECTION", "right_to_left"),
            ]),
        )
        .unwrap();
        let g = c.conveyor.gate.unwrap();
        assert_eq!(
            (
                g.distance_mm,
                g.px_per_mm,
                g.counts_per_mm,
                g.direction,
                g.on_late
            ),
            (400.0, 2.5, 1.0, Direction::RightToLeft, OnLate::Reject)
        );
        for (vars, says) in [
            (
                vec![("HALLMARK_CONVEYOR_GATE_DISTANCE_MM", "400")],
                "px_per_mm",
            ),
            (
                vec![("HALLMARK_CONVEYOR_PX_PER_MM", "2")],
                "gate_distance_mm is not",
            ),
            (
                vec![
                    ("HALLMARK_CONVEYOR_GATE_DISTANCE_MM", "400"),
                    ("HALLMARK_CONVEYOR_PX_PER_MM", "0"),
                ],
                "positive",
            ),
            (
                vec![
                    ("HALLMARK_CONVEYOR_GATE_DISTANCE_MM", "-1"),
                    ("HALLMARK_CONVEYOR_PX_PER_MM", "2"),
                ],
                "gate_distance_mm -1",
            ),
        ] {
            let e = Config::load(None, env(&vars)).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn bad_gpu_provider_options_name_the_key() {
        for (var, value) in [
            ("HALLMARK_RUNTIME_DEVICE_ID", "-1"),
            ("HALLMARK_RUNTIME_DEVICE_ID", "gpu0"),
            ("HALLMARK_RUNTIME_FP16", "maybe"),
            ("HALLMARK_RUNTIME_DLA_CORE", "x"),
            ("HALLMARK_RUNTIME_TRT_WORKSPACE_MIB", "1GB"),
            ("HALLMARK_RUNTIME_CUDA_GRAPHS", "2"),
            ("HALLMARK_RUNTIME_FALLBACK", "yes please"),
        ] {
            let err = Config::load(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(var), "{var}={value}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hallmark.toml");
        std::fs::write(&path, "[runtime]\nfp16 = \"fast\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("runtime.fp16") || err.contains("fp16"),
            "{err}"
        );
        std::fs::write(&path, "[runtime]\ndevice = 0\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("device") && err.contains("unknown key"),
            "{err}"
        );
    }

    #[test]
    fn the_encoding_comes_from_model_variant_and_model_precision() {
        use crate::bundle::{Precision, PrecisionChoice};
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.runtime.encoding.variant, None);
        assert_eq!(c.runtime.encoding.precision, PrecisionChoice::Auto);
        assert_eq!(
            c.runtime.encoding.mode.as_deref(),
            Some("kiosk"),
            "the mode's default variant"
        );
        let c = Config::load(None, env(&[("HALLMARK_AGENT_MODE", "conveyor")])).unwrap();
        assert_eq!(c.runtime.encoding.mode.as_deref(), Some("conveyor"));
        let c = Config::load(
            None,
            env(&[
                ("HALLMARK_MODEL_VARIANT", "fast-224"),
                ("HALLMARK_MODEL_PRECISION", "int8"),
            ]),
        )
        .unwrap();
        assert_eq!(c.runtime.encoding.variant.as_deref(), Some("fast-224"));
        assert_eq!(
            c.runtime.encoding.precision,
            PrecisionChoice::Exactly(Precision::Int8)
        );
        let c = Config::load(None, env(&[("HALLMARK_MODEL_VARIANT", " ")])).unwrap();
        assert_eq!(c.runtime.encoding.variant, None, "empty is the main model");
        let err = Config::load(None, env(&[("HALLMARK_MODEL_PRECISION", "fp64")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.precision") && err.contains("fp64"),
            "{err}"
        );
    }

    #[test]
    fn model_bundle_and_bundles_are_one_setting_the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hallmark.toml");
        std::fs::write(
            &path,
            "[model]\nbundles = [\"a\", \"b\"]\n[trust]\npublic_keys = [\"k.pem\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[("HALLMARK_MODEL_BUNDLE", "/c")])).unwrap();
        assert_eq!(
            c.bundles,
            vec![PathBuf::from("/c")],
            "the environment's, though it is the older key"
        );
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.bundles, vec![dir.path().join("a"), dir.path().join("b")]);
        // Both in one place is ambiguous: an error naming both.
        std::fs::write(
            &path,
            "[model]\nbundles = [\"a\"]\nbundle = \"b\"\n[trust]\npublic_keys = [\"k.pem\"]\n",
        )
        .unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("model.bundles (a)") && err.contains("same place"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[
                ("HALLMARK_MODEL_BUNDLE", "/b"),
                ("HALLMARK_MODEL_BUNDLES", "/a"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("same place"), "{err}");
    }
}
