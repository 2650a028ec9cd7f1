//! ONNX Runtime: loading the shared library once per process, and building inference sessions with the
//! configured execution providers and threads.
//!
//! Sessions get full graph optimisation and share one intra-op thread pool of `intra_threads` threads
//! (default: the physical cores), ONNX Runtime's global pool: a device serving several brands runs one
//! pool, not one per loaded model (only one session runs at a time, on the inference thread). The pool
//! is made with the process's one environment, so the first `Runtime` loaded sets its size. The
//! execution providers are tried in the configured order and each must register: a provider that fails
//! is an error naming it, never a silent fall back to the CPU — unless `runtime.fallback` allows it,
//! and then the fall back is logged at error level and the provider really in use is reported.

pub mod engine_cache;
pub mod gpu_probe;
mod locate;
mod threads;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::session::{builder::GraphOptimizationLevel, Session};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use locate::{locate, search_roots, LocateError, Source};
pub use threads::physical_cores;

/// An execution provider Hallmark can ask ONNX Runtime for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Cpu,
    Cuda,
    Tensorrt,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::Tensorrt => "tensorrt",
        })
    }
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Provider::Cpu),
            "cuda" => Ok(Provider::Cuda),
            "tensorrt" => Ok(Provider::Tensorrt),
            other => Err(format!(
                "unknown execution provider {other:?} (expected cpu, cuda or tensorrt)"
            )),
        }
    }
}

/// How to load the runtime and build sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeOptions {
    /// Explicit library path (`--ort-lib` / `runtime.ort_lib`).
    pub ort_lib: Option<PathBuf>,
    /// In order of preference; each must register.
    pub providers: Vec<Provider>,
    /// Intra-op threads; `None` = physical cores.
    pub intra_threads: Option<usize>,
    /// Let idle intra-op threads spin waiting for work (ONNX Runtime's default). Off gives the cores to
    /// capture, pre-processing and judging between inferences, but measured here it lowers throughput
    /// (2 cores: 115 against 138 frames/s), so it stays on unless a device needs the CPU elsewhere.
    pub spinning: bool,
    /// Options of the CUDA and TensorRT providers.
    pub gpu: GpuOptions,
    /// A requested GPU provider that cannot register falls back to the next one / the CPU (logged at
    /// error level) instead of failing.
    pub fallback: bool,
    /// TensorRT's engine and timing caches live in per-engine folders here (`state_dir/engines`);
    /// `None`: no cache.
    pub engine_dir: Option<PathBuf>,
    /// Which of a bundle's encodings to run (`model.variant`, `model.precision`).
    pub encoding: crate::bundle::EncodingChoice,
}

impl RuntimeOptions {
    /// The preferred provider is a GPU one (`model.precision = "auto"` then takes an fp16 variant).
    pub fn prefers_gpu(&self) -> bool {
        matches!(
            self.providers.first(),
            Some(Provider::Cuda | Provider::Tensorrt)
        )
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            ort_lib: None,
            providers: vec![Provider::Cpu],
            intra_threads: None,
            spinning: true,
            gpu: GpuOptions::default(),
            fallback: false,
            engine_dir: None,
            encoding: Default::default(),
        }
    }
}

/// The GPU providers' options (`runtime.device_id`, `runtime.fp16`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuOptions {
    pub device_id: u32,
    /// TensorRT FP16 kernels.
    pub fp16: bool,
    /// A TensorRT INT8 calibration table; INT8 is on when set.
    pub int8_calibration: Option<PathBuf>,
    /// Run TensorRT on this DLA core (Jetson).
    pub dla_core: Option<u32>,
    /// TensorRT's builder workspace; `None`: TensorRT's default.
    pub trt_workspace_mib: Option<u64>,
    /// CUDA graphs (CUDA provider, and TensorRT's own).
    pub cuda_graphs: bool,
}

/// What a built session needs to know about its model for the engine cache.
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo<'a> {
    pub sha256: &'a str,
    /// Static input (width, height).
    pub input: (u32, u32),
}

/// A session and the provider it really got: the first requested that registered, or the CPU.
pub struct Loaded {
    pub session: Session,
    pub provider: Provider,
}

/// The CUDA provider with `gpu`'s options.
pub fn cuda_provider(gpu: &GpuOptions) -> ort::ep::CUDA {
    ort::ep::CUDA::default()
        .with_device_id(i32::try_from(gpu.device_id).unwrap_or(i32::MAX))
        .with_cuda_graph(gpu.cuda_graphs)
}

/// The TensorRT provider with `gpu`'s options; its engine and timing caches in `cache` when given.
pub fn tensorrt_provider(gpu: &GpuOptions, cache: Option<&Path>) -> ort::ep::TensorRT {
    let mut trt = ort::ep::TensorRT::default()
        .with_device_id(i32::try_from(gpu.device_id).unwrap_or(i32::MAX))
        .with_fp16(gpu.fp16)
        .with_cuda_graph(gpu.cuda_graphs);
    if let Some(table) = &gpu.int8_calibration {
        trt = trt
            .with_int8(true)
            .with_int8_calibration_table_name(table.display());
    }
    if let Some(core) = gpu.dla_core {
        trt = trt.with_dla(true).with_dla_core(core);
    }
    if let Some(mib) = gpu.trt_workspace_mib {
        trt = trt.with_max_workspace_size(usize::try_from(mib << 20).unwrap_or(usize::MAX));
    }
    if let Some(dir) = cache {
        trt = trt
            .with_engine_cache(true)
            .with_engine_cache_path(dir.display())
            .with_timing_cache(true)
            .with_timing_cache_path(dir.display());
    }
    trt
}

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error("could not load the ONNX Runtime library {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("ONNX Runtime environment: {0}")]
    Environment(String),
    #[error("execution provider {provider} failed to register (no fall back to CPU; runtime.fallback = true allows one): {message}")]
    Provider { provider: Provider, message: String },
    #[error("could not create an inference session for {model}: {message}")]
    Session { model: PathBuf, message: String },
}

/// The loaded ONNX Runtime and the session settings.
pub struct Runtime {
    environment: Arc<ort::environment::Environment>,
    options: RuntimeOptions,
    library: PathBuf,
    threads: usize,
    /// Told, every `BUILD_REPORT_EVERY`, how long a TensorRT engine has been building (the daemon
    /// tells systemd); see [`Runtime::report_engine_builds`].
    engine_build: Option<EngineBuildReport>,
}

/// What a slow TensorRT engine build is reported to: the brand, and how long it has been building.
pub type EngineBuildReport = fn(brand: &str, building_for: std::time::Duration);

impl Runtime {
    /// Finds and loads the library (once per process; later calls reuse it).
    pub fn load(options: RuntimeOptions) -> Result<Runtime, RuntimeError> {
        let env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
        let (library, source) =
            locate(options.ort_lib.as_deref(), env.as_deref(), &search_roots())?;
        // Design: ONNX Runtime allows one environment per process, and a library cannot be unloaded;
        // every Runtime (one per brand bundle) shares the first, and asking for another library fails.
        #[allow(clippy::type_complexity)]
        static LOADED: Mutex<Option<(PathBuf, Arc<ort::environment::Environment>, usize)>> =
            Mutex::new(None);
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (environment, threads) = match &*loaded {
            Some((path, environment, threads)) if *path == library => {
                (environment.clone(), *threads)
            }
            Some((path, ..)) => {
                return Err(RuntimeError::Environment(format!(
                    "{} is already loaded in this process; cannot also load {}",
                    path.display(),
                    library.display()
                )))
            }
            None => {
                tracing::debug!(library = %library.display(), ?source, "loading ONNX Runtime");
                let builder = ort::init_from(&library).map_err(|e| RuntimeError::Load {
                    path: library.clone(),
                    message: e.to_string(),
                })?;
                // Design: one intra-op pool for every session (each brand's detector): sessions built
                // in an environment with a global pool run on it (ort disables their own threads).
                let threads = threads::bounded(options.intra_threads);
                let pool = ort::environment::GlobalThreadPoolOptions::default()
                    .with_intra_threads(threads)
                    .and_then(|p| p.with_inter_threads(1))
                    .and_then(|p| p.with_spin_control(options.spinning))
                    .map_err(|e| RuntimeError::Environment(e.to_string()))?;
                let environment = Arc::new(
                    builder
                        .with_name("hallmark")
                        .with_global_thread_pool(pool)
                        .build()
                        .map_err(|e| RuntimeError::Environment(e.to_string()))?,
                );
                *loaded = Some((library.clone(), environment.clone(), threads));
                (environment, threads)
            }
        };
        drop(loaded);
        Ok(Runtime {
            environment,
            options,
            library,
            threads,
            engine_build: None,
        })
    }

    /// Reports slow TensorRT engine builds of the detectors built from now on to `report` (besides
    /// the log).
    pub fn report_engine_builds(&mut self, report: EngineBuildReport) {
        self.engine_build = Some(report);
    }

    /// Where slow engine builds are reported, if anywhere.
    pub fn engine_build_report(&self) -> Option<EngineBuildReport> {
        self.engine_build
    }

    /// The library that was loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Intra-op threads of the shared pool (as asked by the first `Runtime` of the process).
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn providers(&self) -> &[Provider] {
        &self.options.providers
    }

    /// A session for the ONNX model at `model` (read by ONNX Runtime itself).
    pub fn session(&self, model: &Path) -> Result<Session, RuntimeError> {
        let (mut builder, _) = self.builder(model, None)?;
        builder
            .commit_from_file(model)
            .map_err(|e| RuntimeError::Session {
                model: model.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// A session for the ONNX model held in `bytes` (ONNX Runtime copies them); `label` names it in
    /// errors. This is how verified bundles are loaded: the bytes hashed are the bytes that run.
    pub fn session_from_memory(&self, label: &Path, bytes: &[u8]) -> Result<Session, RuntimeError> {
        Ok(self.load_from_memory(label, bytes, None)?.session)
    }

    /// As `session_from_memory`, and says which provider the session got; `model` keys TensorRT's
    /// engine cache.
    pub fn load_from_memory(
        &self,
        label: &Path,
        bytes: &[u8],
        model: Option<ModelInfo<'_>>,
    ) -> Result<Loaded, RuntimeError> {
        let (mut builder, provider) = self.builder(label, model)?;
        let session = builder
            .commit_from_memory(bytes)
            .map_err(|e| RuntimeError::Session {
                model: label.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(Loaded { session, provider })
    }

    /// The engine cache folder for `model`: keyed by the model, ONNX Runtime, TensorRT's version and the
    /// GPU (asked of libnvinfer and libcuda, see [`gpu_probe`]) and the build options.
    pub fn engine_cache(&self, model: Option<ModelInfo<'_>>) -> Option<PathBuf> {
        let (dir, model) = (self.options.engine_dir.as_ref()?, model?);
        let calibration =
            self.options
                .gpu
                .int8_calibration
                .as_ref()
                .map(|p| match std::fs::read(p) {
                    Ok(b) => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)),
                    Err(_) => format!("unreadable {}", p.display()),
                });
        let (tensorrt, gpu) = (
            gpu_probe::tensorrt_version(),
            gpu_probe::gpu(self.options.gpu.device_id),
        );
        let key = engine_cache::EngineKey {
            model_sha256: model.sha256,
            onnxruntime: ort::info(),
            tensorrt: tensorrt.as_deref(),
            gpu: gpu.as_deref(),
            fp16: self.options.gpu.fp16,
            int8_calibration_sha256: calibration.as_deref(),
            dla_core: self.options.gpu.dla_core,
            input: model.input,
        };
        Some(dir.join(key.dir_name()))
    }

    /// With TensorRT configured, removes the engine folders of every model but `keep` (the models
    /// served); returns the folders removed. Without TensorRT the cache is left as it is.
    pub fn prune_engines(&self, keep: &[ModelInfo<'_>]) -> std::io::Result<Vec<String>> {
        let Some(dir) = self.options.engine_dir.as_ref() else {
            return Ok(Vec::new());
        };
        if !self.options.providers.contains(&Provider::Tensorrt) {
            return Ok(Vec::new());
        }
        let keep: Vec<String> = keep
            .iter()
            .filter_map(|m| self.engine_cache(Some(*m)))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        engine_cache::prune(dir, &keep)
    }

    fn builder(
        &self,
        model: &Path,
        info: Option<ModelInfo<'_>>,
    ) -> Result<(ort::session::builder::SessionBuilder, Provider), RuntimeError> {
        let err = |e: &dyn std::fmt::Display| RuntimeError::Session {
            model: model.to_path_buf(),
            message: e.to_string(),
        };
        // The threads and spinning are the global pool's (set with the environment).
        let mut builder = Session::builder(&self.environment)
            .map_err(|e| err(&e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| err(&e))?;
        let mut in_use = None;
        for &provider in &self.options.providers {
            let mut cache: Option<PathBuf> = None;
            let dispatch = match provider {
                Provider::Cpu => ort::ep::CPU::default().build(),
                Provider::Cuda => cuda_provider(&self.options.gpu).build(),
                Provider::Tensorrt => {
                    // Design: no cache is better than no model: a folder that cannot be made is a warning.
                    cache = self.engine_cache(info).filter(|dir| {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| tracing::warn!(dir = %dir.display(), error = %e, "TensorRT engine cache folder cannot be made; building engines uncached"))
                            .is_ok()
                    });
                    tensorrt_provider(&self.options.gpu, cache.as_deref()).build()
                }
            }
            .error_on_failure();
            // Registered one by one on the same builder, so a failure leaves the builder usable.
            let registered = dispatch.register(&mut builder);
            if let (Err(_), Some(dir)) = (&registered, &cache) {
                // The folder made for an engine that will never be built (only removed if empty).
                let _ = std::fs::remove_dir(dir);
            }
            match registered {
                Ok(()) => {
                    in_use.get_or_insert(provider);
                }
                Err(e) if self.options.fallback && provider != Provider::Cpu => {
                    tracing::error!(
                        %provider,
                        error = %e,
                        "execution provider failed to register; falling back (runtime.fallback = true)"
                    );
                }
                Err(e) => {
                    return Err(RuntimeError::Provider {
                        provider,
                        message: e.to_string(),
                    })
                }
            }
        }
        let in_use = match in_use {
            Some(p) => p,
            None => {
                tracing::error!(
                    requested = ?self.options.providers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "no requested execution provider registered; running on the CPU"
                );
                Provider::Cpu
            }
        };
        Ok((builder, in_use))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_options_reach_the_provider_builders() {
        let gpu = GpuOptions {
            device_id: 1,
            fp16: true,
            int8_calibration: Some(PathBuf::from("/cal/table.cache")),
            dla_core: Some(0),
            trt_workspace_mib: Some(2048),
            cuda_graphs: true,
        };
        let trt = format!(
            "{:?}",
            tensorrt_provider(&gpu, Some(Path::new("/state/engines/k")))
        );
        for pair in [
            "\"device_id\": \"1\"",
            "\"trt_fp16_enable\": \"true\"",
            "\"trt_int8_enable\": \"true\"",
            "\"trt_int8_calibration_table_name\": \"/cal/table.cache\"",
            "\"trt_dla_enable\": \"true\"",
            "\"trt_dla_core\": \"0\"",
            "\"trt_max_workspace_size\": \"2147483648\"",
            "\"trt_cuda_graph_enable\": \"true\"",
            "\"trt_engine_cache_enable\": \"true\"",
            "\"trt_engine_cache_path\": \"/state/engines/k\"",
            "\"trt_timing_cache_enable\": \"true\"",
            "\"trt_timing_cache_path\": \"/state/engines/k\"",
        ] {
            assert!(trt.contains(pair), "{pair} not in {trt}");
        }
        let cuda = format!("{:?}", cuda_provider(&gpu));
        for pair in ["\"device_id\": \"1\"", "\"enable_cuda_graph\": \"true\""] {
            assert!(cuda.contains(pair), "{pair} not in {cuda}");
        }
        // Defaults: no INT8, DLA, workspace or cache keys at all.
        let plain = format!("{:?}", tensorrt_provider(&GpuOptions::default(), None));
        for key in ["trt_int8", "trt_dla", "trt_max_workspace", "cache"] {
            assert!(!plain.contains(key), "{key} in {plain}");
        }
        assert!(plain.contains("\"trt_fp16_enable\": \"false\""), "{plain}");
    }

    #[test]
    fn engines_are_pruned_only_with_tensorrt_and_the_served_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let engines = dir.path().join("engines");
        std::fs::create_dir_all(engines.join("stale")).unwrap();
        let model = ModelInfo {
            sha256: "ab12",
            input: (320, 320),
        };
        let cpu = Runtime::load(RuntimeOptions {
            engine_dir: Some(engines.clone()),
            intra_threads: Some(1),
            ..Default::default()
        })
        .unwrap();
        assert!(cpu.prune_engines(&[model]).unwrap().is_empty());
        assert!(
            engines.join("stale").exists(),
            "no TensorRT: cache left alone"
        );
        let trt = Runtime::load(RuntimeOptions {
            providers: vec![Provider::Tensorrt],
            fallback: true,
            engine_dir: Some(engines.clone()),
            intra_threads: Some(1),
            ..Default::default()
        })
        .unwrap();
        let served = trt.engine_cache(Some(model)).unwrap();
        assert!(served.starts_with(&engines));
        std::fs::create_dir_all(&served).unwrap();
        assert_eq!(
            trt.prune_engines(&[model]).unwrap(),
            vec!["stale".to_string()]
        );
        assert!(served.exists());
    }
}
