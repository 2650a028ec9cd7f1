//! ONNX Runtime: loading the shared library once per process, and building inference sessions with the
//! configured execution providers and threads.
//!
//! Sessions get full graph optimisation and share one intra-op thread pool of `intra_threads` threads
//! (default: the physical cores), ONNX Runtime's global pool: a device serving several brands runs one
//! pool, not one per loaded model (only one session runs at a time, on the inference thread). The pool
//! is made with the process's one environment, so the first `Runtime` loaded sets its size. The
//! execution providers are tried in the configured order and each must register: a provider that fails
//! is an error naming it, never a silent fall back to the CPU.

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
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            ort_lib: None,
            providers: vec![Provider::Cpu],
            intra_threads: None,
            spinning: true,
        }
    }
}

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error("could not load the ONNX Runtime library {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("ONNX Runtime environment: {0}")]
    Environment(String),
    #[error("execution provider {provider} failed to register (no fall back to CPU): {message}")]
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
}

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
                let threads = options
                    .intra_threads
                    .filter(|&n| n > 0)
                    .unwrap_or_else(physical_cores);
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
        })
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
        self.builder(model)?
            .commit_from_file(model)
            .map_err(|e| RuntimeError::Session {
                model: model.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// A session for the ONNX model held in `bytes` (ONNX Runtime copies them); `label` names it in
    /// errors. This is how verified bundles are loaded: the bytes hashed are the bytes that run.
    pub fn session_from_memory(&self, label: &Path, bytes: &[u8]) -> Result<Session, RuntimeError> {
        self.builder(label)?
            .commit_from_memory(bytes)
            .map_err(|e| RuntimeError::Session {
                model: label.to_path_buf(),
                message: e.to_string(),
            })
    }

    fn builder(&self, model: &Path) -> Result<ort::session::builder::SessionBuilder, RuntimeError> {
        let err = |e: &dyn std::fmt::Display| RuntimeError::Session {
            model: model.to_path_buf(),
            message: e.to_string(),
        };
        // The threads and spinning are the global pool's (set with the environment).
        let mut builder = Session::builder(&self.environment)
            .map_err(|e| err(&e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| err(&e))?;
        for &provider in &self.options.providers {
            let dispatch = match provider {
                Provider::Cpu => ort::ep::CPU::default().build(),
                Provider::Cuda => ort::ep::CUDA::default().build(),
                Provider::Tensorrt => ort::ep::TensorRT::default().build(),
            }
            .error_on_failure();
            builder = builder.with_execution_providers([dispatch]).map_err(|e| {
                RuntimeError::Provider {
                    provider,
                    message: e.to_string(),
                }
            })?;
        }
        Ok(builder)
    }
}
