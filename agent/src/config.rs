//! Configuration: one TOML file, every key with a default, each overridable by a `HALLMARK_*`
//! environment variable (`HALLMARK_<SECTION>_<KEY>`, lists comma-separated), then by command-line flags.
//!
//! ```toml
//! [runtime]
//! ort_lib = "/opt/onnxruntime/lib/libonnxruntime.so.1.31.1"  # default: ORT_DYLIB_PATH, then .venv
//! providers = ["cpu"]        # cpu | cuda | tensorrt, in order; each must register
//! intra_threads = 0          # 0 = physical cores
//! [model]
//! bundle = "models/northwind"
//! [trust]
//! public_keys = ["models/keys/demo-publisher.pub.pem"]
//! [image]
//! max_width = 16384
//! max_height = 16384
//! max_alloc_mib = 1024
//! ```
//! Relative paths in a file are taken from the file's folder; the defaults are looked up from the
//! current folder and from the executable's folder upwards (so a built `hallmark` finds the shipped
//! bundle and demo key of its checkout wherever it is started).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::imageio::ImageLimits;
use crate::runtime::{Provider, RuntimeOptions};

pub const DEFAULT_BUNDLE: &str = "models/northwind";
pub const DEFAULT_PUBLIC_KEY: &str = "models/keys/demo-publisher.pub.pem";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub runtime: RuntimeOptions,
    pub bundle: PathBuf,
    pub public_keys: Vec<PathBuf>,
    pub image: ImageLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct File {
    runtime: RuntimeSection,
    model: ModelSection,
    trust: TrustSection,
    image: ImageSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RuntimeSection {
    ort_lib: Option<PathBuf>,
    providers: Option<Vec<Provider>>,
    intra_threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ModelSection {
    bundle: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TrustSection {
    public_keys: Option<Vec<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ImageSection {
    max_width: Option<u32>,
    max_height: Option<u32>,
    max_alloc_mib: Option<u64>,
}

impl Config {
    /// Defaults, then the file (if any), then `HALLMARK_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (mut f, base) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.into(),
                    message: e.to_string(),
                })?;
                let f: File = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.into(),
                    message: e.to_string(),
                })?;
                (f, path.parent().map(Path::to_path_buf))
            }
            None => (File::default(), None),
        };
        let rel = |p: PathBuf| match &base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        };
        f.runtime.ort_lib = f.runtime.ort_lib.map(rel);
        f.model.bundle = f.model.bundle.map(rel);
        f.trust.public_keys = f
            .trust
            .public_keys
            .map(|v| v.into_iter().map(rel).collect());

        let var = |name: &str| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name.to_string(), v))
        };
        let bad = |(name, value): (String, String), message: String| ConfigError::Env {
            name,
            value,
            message,
        };
        if let Some((_, v)) = var("HALLMARK_RUNTIME_ORT_LIB") {
            f.runtime.ort_lib = Some(v.into());
        }
        if let Some(kv) = var("HALLMARK_RUNTIME_PROVIDERS") {
            let parsed: Result<Vec<Provider>, String> = kv.1.split(',').map(str::parse).collect();
            f.runtime.providers = Some(parsed.map_err(|m| bad(kv.clone(), m))?);
        }
        if let Some(kv) = var("HALLMARK_RUNTIME_INTRA_THREADS") {
            f.runtime.intra_threads = Some(
                kv.1.trim()
                    .parse()
                    .map_err(|_| bad(kv.clone(), "not a whole number".into()))?,
            );
        }
        if let Some((_, v)) = var("HALLMARK_MODEL_BUNDLE") {
            f.model.bundle = Some(v.into());
        }
        if let Some((_, v)) = var("HALLMARK_TRUST_PUBLIC_KEYS") {
            f.trust.public_keys = Some(v.split(',').map(|s| PathBuf::from(s.trim())).collect());
        }
        for (name, slot) in [
            ("HALLMARK_IMAGE_MAX_WIDTH", &mut f.image.max_width),
            ("HALLMARK_IMAGE_MAX_HEIGHT", &mut f.image.max_height),
        ] {
            if let Some(kv) = var(name) {
                *slot = Some(
                    kv.1.trim()
                        .parse()
                        .map_err(|_| bad(kv.clone(), "not a whole number".into()))?,
                );
            }
        }
        if let Some(kv) = var("HALLMARK_IMAGE_MAX_ALLOC_MIB") {
            f.image.max_alloc_mib = Some(
                kv.1.trim()
                    .parse()
                    .map_err(|_| bad(kv.clone(), "not a whole number".into()))?,
            );
        }

        let limits = ImageLimits::default();
        Ok(Config {
            runtime: RuntimeOptions {
                ort_lib: f.runtime.ort_lib,
                providers: f.runtime.providers.unwrap_or_else(|| vec![Provider::Cpu]),
                intra_threads: f.runtime.intra_threads.filter(|&n| n > 0),
            },
            bundle: f
                .model
                .bundle
                .unwrap_or_else(|| project_path(DEFAULT_BUNDLE)),
            public_keys: f
                .trust
                .public_keys
                .unwrap_or_else(|| vec![project_path(DEFAULT_PUBLIC_KEY)]),
            image: ImageLimits {
                max_width: f.image.max_width.unwrap_or(limits.max_width),
                max_height: f.image.max_height.unwrap_or(limits.max_height),
                max_alloc: f
                    .image
                    .max_alloc_mib
                    .map(|m| m << 20)
                    .unwrap_or(limits.max_alloc),
            },
        })
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
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.runtime.providers, vec![Provider::Cpu]);
        assert_eq!(c.runtime.intra_threads, None);
        assert!(c.bundle.ends_with("models/northwind"));
        assert_eq!(c.image, ImageLimits::default());
    }

    #[test]
    fn file_values_are_taken_relative_to_the_file_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hallmark.toml");
        std::fs::write(&path, "[runtime]\nproviders = [\"cuda\", \"cpu\"]\nintra_threads = 3\n[model]\nbundle = \"b\"\n").unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.runtime.providers, vec![Provider::Cuda, Provider::Cpu]);
        assert_eq!(c.runtime.intra_threads, Some(3));
        assert_eq!(c.bundle, dir.path().join("b"));
        let c = Config::load(
            Some(&path),
            env(&[
                ("HALLMARK_RUNTIME_PROVIDERS", "tensorrt"),
                ("HALLMARK_RUNTIME_INTRA_THREADS", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.runtime.providers, vec![Provider::Tensorrt]);
        assert_eq!(c.runtime.intra_threads, Some(1));
    }

    #[test]
    fn typos_and_bad_values_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hallmark.toml");
        std::fs::write(&path, "[runtime]\nprovider = [\"cpu\"]\n").unwrap();
        assert!(Config::load(Some(&path), env(&[]))
            .unwrap_err()
            .to_string()
            .contains("provider"));
        let err = Config::load(None, env(&[("HALLMARK_RUNTIME_PROVIDERS", "gpu")])).unwrap_err();
        assert!(
            err.to_string().contains("HALLMARK_RUNTIME_PROVIDERS")
                && err.to_string().contains("gpu"),
            "{err}"
        );
    }
}
