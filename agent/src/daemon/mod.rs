//! `hallmark run`: the agent daemon. Capture → pre-process → inference → items, barcodes, verdicts,
//! tracking → sinks, each stage on its own thread, joined by bounded hand-overs:
//!
//! ```text
//! capture ──slot(1)──▶ prep ──(1)──▶ inference ──(2)──▶ judge ──▶ spool ─▶ MQTT
//!                        ▲   2 inputs   │                       └─▶ stdout · evidence · controller
//!                        └──────────────┘
//! ```
//! - capture never waits for inference when the source is a camera (the freshest frame wins, the rest
//!   are counted as dropped); a replay waits instead, so a recording's every frame is judged;
//! - pre-processing of frame N+1 runs while frame N is inferred (two input tensors take turns);
//! - barcodes, the verdict rule, tracking and the modes (`hallmark_core::modes`) run after inference, so the model
//!   never waits for them; sinks have their own threads and queues, so a slow sink never stalls it;
//! - with MQTT on, each batch of verdicts is committed to the spool (fsync) before anything acts on
//!   it — screen, reject gate, stdout — so every verdict anyone saw reaches the broker
//!   ([`crate::delivery`]);
//! - [`crate::observe`] counts and times every stage for `/metrics`, `/healthz` and telemetry.
//!
//! Where each part lives: `run` (here) opens the models and the source and wires the threads;
//! `stages.rs` holds the capture and pre-processing threads, `inference.rs` the inference loop (swaps
//! between frames, routing to a brand, putting back a swapped-in model that fails), `judge.rs` the judge
//! thread (the frame step, the modes, verdict events, the sinks), [`updates`] the model updater.
//!
//! Shutdown is a future handed in (the CLI passes SIGINT/SIGTERM; tests pass their own): capture stops,
//! the frames in flight are finished, open items are decided, the sinks are flushed, and `run` returns.

mod inference;
mod judge;
pub mod routing;
pub mod selftest;
pub mod serials;
pub mod slot;
mod stages;
pub mod updates;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hallmark_host_link::link::Status;
use thiserror::Error;

use crate::bundle::Manifest;
use crate::capture::{Source, SourceError, SourceState};
use crate::config::{Config, SourceKind};
use crate::delivery::{Delivery, DeliveryError};
use crate::detector::{DetectorError, Input};
use crate::observe::Observer;
use crate::pipeline::{Pipeline, PipelineError};
use hallmark_core::brands;
use hallmark_core::report::Origin;
use judge::{Inferred, Judge, Sinks};
use slot::FrameSlot;

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("state folder {path}: {source}")]
    StateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("inference failed and cannot go on: {0}")]
    Detector(#[from] DetectorError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("model bundles: {0}")]
    Brands(String),
}

/// Counters the daemon keeps (read by status and, later, metrics).
#[derive(Debug, Default)]
pub struct Stats {
    pub frames: AtomicU64,
    pub skipped: AtomicU64,
    pub verdicts: AtomicU64,
    pub counterfeit: AtomicU64,
    pub inconclusive: AtomicU64,
    pub genuine: AtomicU64,
    pub no_product: AtomicU64,
    pub frame_errors: AtomicU64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub frames: u64,
    pub dropped: u64,
    pub skipped: u64,
    pub verdicts: u64,
    pub counterfeit: u64,
    pub sink_drops: u64,
    /// From the first inferred frame to the last (throughput = (frames − 1) / busy).
    pub busy: std::time::Duration,
}

/// Opens the configured source (a clear error when it cannot start).
pub fn open_source(config: &Config) -> Result<Box<dyn Source>, SourceError> {
    match config.source.kind {
        SourceKind::Replay => {
            let opts = crate::capture::replay::ReplayOptions {
                path: config.source.path.clone(),
                fps: config.source.fps,
                looping: config.source.looping,
                preload: config.source.preload,
                limits: config.image,
            };
            if crate::capture::video::is_video(&opts.path) {
                Ok(Box::new(crate::capture::video::VideoReplay::open(opts)?))
            } else {
                Ok(Box::new(crate::capture::Replay::open(opts)?))
            }
        }
        SourceKind::Camera => open_camera(config),
    }
}

fn open_camera(config: &Config) -> Result<Box<dyn Source>, SourceError> {
    let s = &config.source;
    let opts = crate::capture::camera::CameraOptions {
        device: s.device.clone(),
        width: s.width,
        height: s.height,
        fps: Some(s.fps.round() as u32).filter(|&f| f > 0),
        format: s.format.clone(),
        stall_after: s.stall_timeout,
    };
    Ok(Box::new(crate::capture::camera::Camera::open(&opts)?))
}

/// Runs the daemon until the source ends or `shutdown` completes.
pub fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, DaemonError> {
    let state_dir = config.agent.state_dir.clone();
    std::fs::create_dir_all(&state_dir).map_err(|source| DaemonError::StateDir {
        path: state_dir.display().to_string(),
        source,
    })?;
    raise_descriptor_limit();
    // Models first (their errors are the likelier ones), then the source: both before anything runs.
    let opening = Instant::now();
    let pipeline = Pipeline::open_with(
        config.runtime.clone(),
        config.bundle(),
        &config.public_keys,
        Some(crate::service::engine_building),
    )?;
    let opened_in = opening.elapsed();
    let store = open_store(&config)?;
    let trust = crate::bundle::TrustedKeys::from_pem_files(&config.public_keys)
        .map_err(PipelineError::from)?;
    let Served {
        runtime,
        mut registry,
        names,
        default,
        shape,
        first_load,
    } = serve_brands(&config, (pipeline, opened_in), &store, &trust)?;
    prune_stale_engines(&runtime, &registry, &names);
    let source = open_source(&config)?;
    let manifest = registry
        .source(&names[default])
        .expect("the default brand is served")
        .manifest
        .clone();
    let provider = registry
        .detector(&names[default])
        .map_or_else(|| "-".to_string(), |d| d.provider().to_string());
    let variant = registry
        .source(&names[default])
        .and_then(|s| s.bundle.variant())
        .unwrap_or("main")
        .to_string();
    let input = format!(
        "{}x{}",
        manifest.model.input.width, manifest.model.input.height
    );
    tracing::info!(brand = %manifest.brand, revision = manifest.revision, %variant, %input, %provider, brands = names.len(), source = %source.name(), mode = config.agent.mode.as_str(), "hallmark run: model loaded, source open");

    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    spawn_shutdown_watch(shutdown, done_rx, stop.clone()).map_err(DaemonError::Thread)?;

    let stats = Arc::new(Stats::default());
    let (observer, revisions) = start_observer(&config, &registry, &names, first_load);
    let http = serve_http(&config, &observer);
    let source_state = Arc::new(Mutex::new(SourceState::Opening));
    let slot = Arc::new(FrameSlot::default());
    let origin = Origin {
        thing: config.agent.thing.clone(),
        source: source.name(),
        mode: config.agent.mode,
    };

    // Everything that can fail is set up before the first thread starts, so an error leaves nothing
    // running behind it.
    let (input_back, inputs) = channel::<Input>();
    for _ in 0..2 {
        let _ = input_back.send(Input::new(shape)?);
    }
    let (inferred_tx, inferred_rx) = sync_channel::<Inferred>(2);
    let (trigger_tx, trigger_rx) = channel::<()>();
    let updates_on = config.mqtt.enabled && config.updates.enabled;
    let inbox = Arc::new(crate::update::Inbox::new());
    let delivery = if config.mqtt.enabled {
        Some(Delivery::start(
            &config.delivery(),
            revisions.clone(),
            observer.clone(),
            trigger_tx.clone(),
            updates_on.then(|| inbox.clone()),
        )?)
    } else {
        None
    };
    let (swap_tx, swaps) = channel::<updates::Swap>();
    let (fault_tx, faults) = channel::<updates::RuntimeFault>();
    let (screen_tx, screen_rx) = channel::<Status>();
    let updater = match (&delivery, updates_on) {
        (Some(d), true) => Some(updates::Updater::new(
            &config,
            store,
            trust,
            &revisions,
            shape,
            updates::Wiring {
                releases: inbox.clone(),
                faults,
                swaps: swap_tx,
                publisher: d.publisher(),
                observer: observer.clone(),
                stop: stop.clone(),
                screen: screen_tx,
            },
        )),
        _ => None,
    };
    let heartbeat = Arc::new(AtomicU64::new(0));
    let judge = Judge::new(
        &config,
        manifest.clone(),
        origin,
        stats.clone(),
        trigger_tx,
        Sinks {
            delivery,
            observer: observer.clone(),
            heartbeat: heartbeat.clone(),
            screen: screen_rx,
        },
    )?;

    // Capture.
    let capture = stages::Capture {
        source,
        slot: slot.clone(),
        stop: stop.clone(),
        stats: stats.clone(),
        state: source_state.clone(),
        observer: observer.clone(),
        drop_when_busy: config.source.drop_when_busy,
    }
    .spawn()?;

    // Pre-processing, with two inputs taking turns with inference.
    // With several brands each frame is routed by sight on the inference thread, the barcodes read only
    // when sight is unsure, or here on one frame in `source.route_every` (see [`brands`]).
    let router = stages::router(&names, &registry);
    let (prepared_tx, prepared_rx) = sync_channel::<stages::Prepared>(1);
    let unsure_router = router.clone();
    let prep = stages::Prep {
        slot: slot.clone(),
        stats: stats.clone(),
        observer: observer.clone(),
        prep: crate::detector::Prep::new(shape),
        router,
        route_every: config.source.route_every,
        default,
        inputs,
        prepared: prepared_tx,
    }
    .spawn()?;

    // Judge: barcodes, verdicts, modes, sinks.
    let judge = {
        std::thread::Builder::new()
            .name("hallmark-judge".into())
            .spawn(move || judge.run(inferred_rx, trigger_rx))
            .map_err(DaemonError::Thread)?
    };

    // The model is loaded and the source open: tell systemd, and let its watchdog follow the judge.
    crate::service::notify_ready();
    let _watchdog = crate::service::spawn_watchdog(heartbeat);

    let updater = match updater {
        Some(u) => Some(
            std::thread::Builder::new()
                .name("hallmark-update".into())
                .spawn(move || u.run())
                .map_err(DaemonError::Thread)?,
        ),
        None => None,
    };

    // Inference, on this thread.
    let ran = inference::Inference {
        registry: &mut registry,
        names: &names,
        runtime: &runtime,
        observer: &observer,
        stats: &stats,
        slot: &slot,
        stop: &stop,
        swaps: &swaps,
        prepared: &prepared_rx,
        input_back: &input_back,
        inferred: &inferred_tx,
        faults: &fault_tx,
        router: unsure_router.as_ref(),
        default,
    }
    .run();
    drop(inferred_tx);
    drop(swaps);
    stop.store(true, Ordering::Relaxed);
    slot.close();
    let sink_drops = judge.join().unwrap_or_default();
    inbox.close();
    if let Some(u) = updater {
        let _ = u.join();
    }
    let _ = prep.join();
    let _ = capture.join();
    let _ = done_tx.send(());
    crate::service::notify_stopping();
    if let Some(server) = http {
        server.close();
    }
    if let Some(e) = ran.fatal {
        return Err(e.into());
    }
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Ok(Summary {
        frames: load(&stats.frames),
        dropped: slot.dropped(),
        skipped: load(&stats.skipped),
        verdicts: load(&stats.verdicts),
        counterfeit: load(&stats.counterfeit),
        sink_drops,
        busy: ran.busy(),
    })
}

/// TensorRT engines of models no longer served (older revisions, removed brands, another ONNX Runtime
/// or other options) are removed once the served ones are in place.
fn prune_stale_engines(
    runtime: &crate::runtime::Runtime,
    registry: &brands::Registry<Brand, crate::detector::Detector>,
    names: &[String],
) {
    let served: Vec<Arc<Manifest>> = names
        .iter()
        .filter_map(|b| registry.source(b).map(|s| s.manifest.clone()))
        .collect();
    let keep: Vec<crate::runtime::ModelInfo> = served
        .iter()
        .map(|m| crate::runtime::ModelInfo {
            sha256: &m.model.sha256,
            input: (m.model.input.width, m.model.input.height),
        })
        .collect();
    match runtime.prune_engines(&keep) {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(?removed, "stale TensorRT engines removed")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "stale TensorRT engines could not be removed"),
    }
}

/// The observer (metrics, health, telemetry) with what is served at start: each brand's revision and
/// provider, the first build time, the camera and link states. Returns it with the served revisions.
fn start_observer(
    config: &Config,
    registry: &brands::Registry<Brand, crate::detector::Detector>,
    names: &[String],
    first_load: std::time::Duration,
) -> (Arc<Observer>, BTreeMap<String, u64>) {
    let observer = Arc::new(Observer::new(&config.agent.thing));
    observer.record_serving_in(
        config.agent.state_dir.join("serving.json"),
        config
            .runtime
            .providers
            .iter()
            .map(ToString::to_string)
            .collect(),
    );
    observer.camera_state(SourceState::Opening.as_str());
    let revisions: BTreeMap<String, u64> = names
        .iter()
        .filter_map(|b| registry.source(b).map(|s| (b.clone(), s.manifest.revision)))
        .collect();
    for (brand, revision) in &revisions {
        observer.model_loaded(brand, *revision);
    }
    for brand in registry.loaded() {
        if let Some(d) = registry.detector(brand) {
            observer.model_provider(brand, &d.provider().to_string());
        }
    }
    observer.model_built(first_load);
    observer.models_in_memory(registry.loaded().len());
    observer.link_state(if config.link.port.is_some() {
        "disconnected"
    } else {
        "none"
    });
    (observer, revisions)
}

/// `/metrics` and `/healthz`, when `http.listen` is set.
fn serve_http(
    config: &Config,
    observer: &Arc<Observer>,
) -> Option<crate::observe::http::HttpServer> {
    match &config.http.listen {
        // Design: metrics are for people watching; a busy port must not stop verdicts.
        Some(listen) => {
            let limits = crate::observe::http::Limits {
                max_connections: config.http.max_connections,
                idle_timeout: config.http.idle_timeout,
            };
            match crate::observe::http::serve(
                listen,
                observer.clone(),
                config.health.max_frame_age,
                limits,
            ) {
                Ok(server) => {
                    tracing::info!(addr = %server.local_addr(), "serving /metrics and /healthz");
                    Some(server)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no /metrics or /healthz");
                    None
                }
            }
        }
        None => None,
    }
}

/// Opens the model store (`state_dir/models`, recovering from a crash).
fn open_store(config: &Config) -> Result<crate::store::Store, DaemonError> {
    let root = config.agent.state_dir.join("models");
    let (store, recovery) =
        crate::store::Store::open_recovering(&root).map_err(|e| DaemonError::StateDir {
            path: root.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
    if !recovery.removed.is_empty() || !recovery.fell_back.is_empty() {
        tracing::warn!(
            ?recovery,
            "model store recovered from an interrupted change"
        );
    }
    Ok(store)
}

/// One served brand: its verified bundle (model bytes in memory) and manifest.
pub(crate) struct Brand {
    pub bundle: crate::bundle::Bundle,
    pub manifest: Arc<Manifest>,
}

/// Every configured brand, ready to serve.
struct Served {
    runtime: crate::runtime::Runtime,
    registry: brands::Registry<Brand, crate::detector::Detector>,
    /// The brands in configuration order (frames are routed to an index into this).
    names: Vec<String>,
    /// The brand a frame shows when no barcode says otherwise (`source.brand`).
    default: usize,
    /// The input (size and type) every brand shares.
    shape: crate::detector::InputShape,
    /// How long the default brand's detector took to build (the first bundle's: with the runtime).
    first_load: std::time::Duration,
}

/// Verifies every configured bundle (the store's newer active revision of a brand serves instead of
/// its configured bundle when it verifies and loads), checks that all share one input (size and type:
/// the two circulating inputs and the pre-processing fit every brand; each detector decodes its own
/// output, so a brand's `quarter-turns` variant, four times as many rows, serves beside another brand's
/// main model), and keeps the default brand's detector loaded; the others load when a frame needs them.
fn serve_brands(
    config: &Config,
    (pipeline, opened_in): (Pipeline, std::time::Duration),
    store: &crate::store::Store,
    trust: &crate::bundle::TrustedKeys,
) -> Result<Served, DaemonError> {
    let Pipeline {
        runtime,
        bundle,
        detector,
        ..
    } = pipeline;
    let mut loaded = vec![(bundle, detector)];
    let mut took = vec![opened_in];
    for path in &config.bundles[1..] {
        let bundle = crate::bundle::Bundle::open(path, trust)
            .and_then(|b| b.select(&config.runtime.encoding, config.runtime.prefers_gpu()))
            .map_err(PipelineError::from)?;
        let started = Instant::now();
        let detector =
            crate::detector::Detector::new(&runtime, &bundle).map_err(PipelineError::from)?;
        took.push(started.elapsed());
        loaded.push((bundle, detector));
    }
    let shape_of = |d: &crate::detector::Detector| d.input_shape();
    let shape = shape_of(&loaded[0].1);
    for (b, d) in &loaded[1..] {
        if shape_of(d) != shape {
            return Err(DaemonError::Brands(format!(
                "{} ({}: input {}) and {} ({}: input {}) differ; every bundle served on one device must share the input (size and type)",
                loaded[0].0.dir().display(),
                loaded[0].0.manifest().brand,
                shape,
                b.dir().display(),
                b.manifest().brand,
                d.input_shape(),
            )));
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (b, _) in &loaded {
        let brand = &b.manifest().brand;
        if names.contains(brand) {
            return Err(DaemonError::Brands(format!(
                "brand {brand} is configured twice (the second is {})",
                b.dir().display()
            )));
        }
        names.push(brand.clone());
    }
    let default = match &config.source.brand {
        Some(b) => names.iter().position(|n| n == b).ok_or_else(|| {
            DaemonError::Brands(format!(
                "source.brand {b} is not among the brands served ({})",
                names.join(", ")
            ))
        })?,
        None => 0,
    };
    let mut registry = brands::Registry::new(config.brands.memory_budget_bytes);
    let first_load = took[default];
    for (i, (bundle, detector)) in loaded.into_iter().enumerate() {
        let (bundle, detector) = match newer_from_store(store, &bundle, trust, &runtime, config) {
            Some((b, d)) if shape_of(&d) == shape => (b, d),
            Some((b, _)) => {
                tracing::error!(brand = %b.manifest().brand, revision = b.manifest().revision, "the store's active revision has another input size or type; serving the configured bundle");
                (bundle, detector)
            }
            None => (bundle, detector),
        };
        let brand = Brand {
            manifest: Arc::new(bundle.manifest().clone()),
            bundle,
        };
        let cost = brands::estimate(brand.bundle.model_bytes().len());
        registry.add(&names[i], brand, cost);
        if i == default {
            let _ = registry.ensure_loaded(&names[i], |_| Ok::<_, DetectorError>(detector));
        }
    }
    Ok(Served {
        runtime,
        registry,
        names,
        default,
        shape,
        first_load,
    })
}

/// The store's active revision of the bundle's brand, verified and loaded in the encoding the device
/// runs (`model.variant`, `model.precision`, the bundle's default for the mode: as the configured bundle
/// and a hot swap choose it), when it is newer, or when it is the target of a signed rollback that
/// withdrew the configured revision (a restart must not undo a rollback the publisher signed).
fn newer_from_store(
    store: &crate::store::Store,
    bundle: &crate::bundle::Bundle,
    trust: &crate::bundle::TrustedKeys,
    runtime: &crate::runtime::Runtime,
    config: &Config,
) -> Option<(crate::bundle::Bundle, crate::detector::Detector)> {
    let brand = &bundle.manifest().brand;
    let configured = bundle.manifest().revision;
    let active = store.active(brand).ok().flatten()?;
    let withdrawn = store
        .guard(brand)
        .ok()
        .and_then(|g| g.rollback)
        .is_some_and(|r| r.to == active && r.to < configured && configured <= r.supersedes);
    if active <= configured && !withdrawn {
        return None;
    }
    if withdrawn {
        tracing::warn!(%brand, revision = active, configured, "the configured revision was withdrawn by a signed rollback; serving the store's active revision");
    }
    let loaded = store
        .active_bundle(brand, trust)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.select(&config.runtime.encoding, config.runtime.prefers_gpu())
                .map_err(|e| e.to_string())
        })
        .and_then(|b| {
            crate::detector::Detector::new(runtime, &b)
                .map(|d| (b, d))
                .map_err(|e| e.to_string())
        });
    match loaded {
        Ok(pair) => {
            tracing::info!(%brand, revision = active, configured, "serving the store's active revision");
            Some(pair)
        }
        Err(e) => {
            tracing::error!(%brand, revision = active, error = %e, "the store's active revision does not load; serving the configured bundle");
            None
        }
    }
}

/// Raises the soft limit of open files to the hard one: frames, evidence pictures, the spool, the
/// broker and the HTTP endpoint all need descriptors, and a 1,024 soft limit is a default, not a
/// decision (systemd's `LimitNOFILE` sets the hard one).
fn raise_descriptor_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current < now.maximum {
        let raised = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::debug!(from = ?now.current, to = ?now.maximum, "open file limit raised")
            }
            Err(e) => tracing::debug!(error = %e, "open file limit left as it is"),
        }
    }
}

/// Counts detectors unloaded for room, gives their memory back, and shows how many are loaded.
fn evicted_now(observer: &Observer, evicted: &[String], loaded: usize) {
    for brand in evicted {
        observer.model_evicted();
        tracing::info!(%brand, "detector unloaded to stay within model.memory_budget_mib");
    }
    if !evicted.is_empty() {
        routing::release_freed_memory();
    }
    observer.models_in_memory(loaded);
}

/// Completes `shutdown` on a small runtime of its own; sets `stop` when it fires. Ends when the daemon
/// says it is done.
fn spawn_shutdown_watch(
    shutdown: impl Future<Output = ()> + Send + 'static,
    done: tokio::sync::oneshot::Receiver<()>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("hallmark-shutdown".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = shutdown => {
                        tracing::info!("shutting down: finishing the frames in flight");
                        stop.store(true, Ordering::Relaxed);
                    }
                    _ = done => {}
                }
            });
        })?;
    Ok(())
}
