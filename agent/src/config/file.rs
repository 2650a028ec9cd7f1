//! The configuration as written: the file's shape (every section and key optional, unknown keys
//! refused) and the `HALLMARK_<SECTION>_<KEY>` variables layered over it with `figment`. Nothing here
//! has a default or a meaning yet: that is [`super`]'s, which resolves this raw shape into the typed
//! settings.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer};

use super::{ConfigError, LogFormat, Mode, SourceKind, Trigger};

const ENV_PREFIX: &str = "HALLMARK_";
/// `HALLMARK_<NAME>...` variables that are not configuration: the log filter, and the variables of
/// the project's scripts, tests and pipeline.
pub const NOT_CONFIG: [&str; 7] = ["log", "config", "bin", "setup", "test", "soak", "yolo"];
const SECTIONS: [&str; 17] = [
    "runtime", "model", "trust", "image", "agent", "source", "kiosk", "conveyor", "link",
    "evidence", "output", "verdict", "mqtt", "spool", "http", "health", "log",
];

/// The file and the environment, layered (the environment wins), as written.
pub(super) struct Raw {
    figment: Figment,
    pub file: File,
}

impl Raw {
    /// Reads the file (if any) and the `HALLMARK_*` variables of `env`; refuses an unknown section or
    /// key and a value of the wrong type, naming it and where it came from.
    pub fn read(file: Option<&Path>, env: Vec<(String, String)>) -> Result<Raw, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            // Design: figment treats a missing file as empty; a named file that is not there is an error.
            std::fs::metadata(path).map_err(|e| ConfigError::Read {
                path: path.into(),
                message: e.to_string(),
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        check_env_names(&env)?;
        let figment = figment.merge(EnvVars(env));
        let file: File = figment.extract_lossy()?;
        Ok(Raw { figment, file })
    }

    /// A path from the file is relative to the file's folder; one from the environment is taken as it
    /// is.
    pub fn rel(&self, key: &str, p: PathBuf) -> PathBuf {
        let from_file = self
            .figment
            .find_metadata(key)
            .and_then(|m| m.source.as_ref())
            .and_then(|s| s.file_path())
            .and_then(Path::parent);
        match from_file {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        }
    }

    /// Whether `key` was set by an environment variable (the later layer).
    pub fn set_by_env(&self, key: &str) -> bool {
        self.figment
            .find_metadata(key)
            .is_some_and(|m| m.source.as_ref().and_then(|s| s.file_path()).is_none())
    }
}

/// The variables of `vars` that may be configuration (`HALLMARK_*`).
pub(super) fn hallmark_vars(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    vars.into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct File {
    pub runtime: RuntimeSection,
    pub model: ModelSection,
    pub trust: TrustSection,
    pub image: ImageSection,
    pub agent: AgentSection,
    pub source: SourceSection,
    pub kiosk: KioskSection,
    pub conveyor: ConveyorSection,
    pub link: LinkSection,
    pub evidence: EvidenceSection,
    pub output: OutputSection,
    pub verdict: VerdictSection,
    pub mqtt: MqttSection,
    pub spool: SpoolSection,
    pub http: HttpSection,
    pub health: HealthSection,
    pub log: LogSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RuntimeSection {
    pub ort_lib: Option<PathBuf>,
    #[serde(deserialize_with = "list")]
    pub providers: Option<Vec<String>>,
    pub intra_threads: Option<usize>,
    pub spinning: Option<bool>,
    pub device_id: Option<u32>,
    pub fp16: Option<bool>,
    pub int8_calibration: Option<PathBuf>,
    pub dla_core: Option<u32>,
    pub trt_workspace_mib: Option<u64>,
    pub cuda_graphs: Option<bool>,
    pub fallback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ModelSection {
    pub bundle: Option<PathBuf>,
    #[serde(deserialize_with = "list")]
    pub bundles: Option<Vec<String>>,
    pub updates: Option<bool>,
    pub max_bundle_mib: Option<u64>,
    pub keep_revisions: Option<usize>,
    pub download_stall_s: Option<f64>,
    pub download_min_kib_s: Option<f64>,
    pub memory_budget_mib: Option<u64>,
    pub precision: Option<String>,
    pub variant: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct TrustSection {
    #[serde(deserialize_with = "list")]
    pub public_keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ImageSection {
    pub max_width: Option<u32>,
    pub max_height: Option<u32>,
    pub max_alloc_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AgentSection {
    pub mode: Option<Mode>,
    pub thing: Option<String>,
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct SourceSection {
    pub kind: Option<SourceKind>,
    pub path: Option<PathBuf>,
    pub fps: Option<f64>,
    #[serde(rename = "loop")]
    pub looping: Option<bool>,
    pub preload: Option<bool>,
    pub device: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<String>,
    pub stall_timeout_ms: Option<u64>,
    pub drop_when_busy: Option<bool>,
    pub brand: Option<String>,
    pub route_every: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct KioskSection {
    pub trigger: Option<Trigger>,
    pub scan_frames: Option<u32>,
    pub scan_timeout_ms: Option<u64>,
    pub still_frames: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ConveyorSection {
    pub track_iou: Option<f32>,
    pub max_missed: Option<u32>,
    pub max_frames: Option<u32>,
    pub min_frames: Option<u32>,
    pub reject_pulse_ms: Option<u16>,
    pub reject_inconclusive: Option<bool>,
    pub gate_distance_mm: Option<f64>,
    pub counts_per_mm: Option<f64>,
    pub px_per_mm: Option<f64>,
    pub direction: Option<hallmark_core::gate::Direction>,
    pub on_late: Option<hallmark_core::gate::OnLate>,
    pub added_latency_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct LinkSection {
    pub port: Option<PathBuf>,
    pub baud: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct EvidenceSection {
    pub enabled: Option<bool>,
    pub max_files: Option<usize>,
    pub max_mib: Option<u64>,
    pub min_free_mib: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct OutputSection {
    pub stdout: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct VerdictSection {
    pub serial_rescan_window_s: Option<u64>,
    pub serial_memory: Option<usize>,
    pub barcodes: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct MqttSection {
    pub enabled: Option<bool>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub client_id: Option<String>,
    pub prefix: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub keep_alive_s: Option<u64>,
    pub telemetry_interval_s: Option<f64>,
    pub backoff_max_s: Option<f64>,
    pub max_inflight: Option<u16>,
    pub drain_timeout_ms: Option<u64>,
    pub max_incoming_mib: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct SpoolSection {
    pub max_mib: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct HttpSection {
    pub listen: Option<String>,
    pub max_connections: Option<usize>,
    pub idle_timeout_s: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct HealthSection {
    /// Seconds.
    pub max_frame_age: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct LogSection {
    pub format: Option<LogFormat>,
}

/// A list given as a TOML array or as one comma-separated string (environment variables).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<OneOrMany>::deserialize(d)?.map(|v| match v {
        OneOrMany::One(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        OneOrMany::Many(v) => v,
    }))
}

/// Refuses a `HALLMARK_*` variable that names no section (a typo would otherwise be ignored in
/// silence), or a section without a key.
fn check_env_names(env: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let (first, key) = rest.split_once('_').unwrap_or((rest.as_str(), ""));
        if NOT_CONFIG.contains(&first) {
            continue;
        }
        if SECTIONS.contains(&first) {
            if key.is_empty() && !value.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{name} names the section [{first}] but no key: set HALLMARK_{}_<KEY>",
                    first.to_ascii_uppercase()
                )));
            }
            continue;
        }
        let near = SECTIONS
            .iter()
            .map(|s| (strsim::levenshtein(s, first), *s))
            .min()
            .filter(|(d, _)| *d <= 2)
            .map(|(_, s)| format!(" (did you mean HALLMARK_{}_…?)", s.to_ascii_uppercase()))
            .unwrap_or_default();
        return Err(ConfigError::Invalid(format!(
            "{name}: no configuration section [{first}]{near}; the sections are {}",
            SECTIONS.join(", ")
        )));
    }
    Ok(())
}

/// `HALLMARK_<SECTION>_<KEY>` variables as a figment provider (raw strings; figment's lossy extraction
/// turns them into numbers and booleans where a key wants one).
struct EnvVars(Vec<(String, String)>);

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
            .interpolater(|_, keys| format!("{ENV_PREFIX}{}", keys.join("_").to_ascii_uppercase()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (name, value) in &self.0 {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest
                .to_ascii_lowercase()
                .split_once('_')
                .map(|(s, k)| (s.to_string(), k.to_string()))
            else {
                continue;
            };
            if !SECTIONS.contains(&section.as_str()) || value.trim().is_empty() {
                continue;
            }
            let entry = root
                .entry(section)
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, dict) = entry {
                dict.insert(key, Value::from(value.clone()));
            }
        }
        Ok(Profile::Default.collect(root))
    }
}
