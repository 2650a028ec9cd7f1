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
//! - barcodes, the verdict rule, tracking and the modes ([`modes`]) run after inference, so the model
//!   never waits for them; sinks have their own threads and queues, so a slow sink never stalls it;
//! - with MQTT on, each batch of verdicts is committed to the spool (fsync) before anything acts on
//!   it — screen, reject gate, stdout — so every verdict anyone saw reaches the broker
//!   ([`crate::delivery`]);
//! - [`crate::observe`] counts and times every stage for `/metrics`, `/healthz` and telemetry.
//!
//! Shutdown is a future handed in (the CLI passes SIGINT/SIGTERM; tests pass their own): capture stops,
//! the frames in flight are finished, open items are decided, the sinks are flushed, and `run` returns.

pub mod routing;
pub mod selftest;
pub mod serials;
pub mod slot;
pub mod updates;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hallmark_detect::Detection;
use hallmark_host_link::link::{ShowVerdict, Status};
use thiserror::Error;

use crate::bundle::Manifest;
use crate::capture::{Next, OwnedFrame, Source, SourceError, SourceState};
use crate::config::{Config, Mode, SourceKind};
use crate::delivery::{Delivery, DeliveryError};
use crate::detector::{DetectorError, Input};
use crate::observe::{Observer, Stage};
use crate::pipeline::{Pipeline, PipelineError};
use crate::sink::{evidence, link::Link, stdout, Queue};
use hallmark_core::brands;
use hallmark_core::failing;
use hallmark_core::modes::decided::Decided;
use hallmark_core::modes::tracks::Judging;
use hallmark_core::modes::{Conveyor, Kiosk, Modes, IDLE_TICK};
use hallmark_core::report::{self, Origin};
use hallmark_core::step::{judge_frame, CodeReader, NoCodes};
use hallmark_core::verdict::{self, VerdictKind};
use hallmark_proto::VerdictEvent;
use serials::SerialLedger;
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
    // TensorRT engines of models no longer served (older revisions, removed brands, another ONNX
    // Runtime or other options) are removed once the served ones are in place.
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
    let mut source = open_source(&config)?;
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
    let observer = Arc::new(Observer::new(&config.agent.thing));
    observer.record_serving_in(
        state_dir.join("serving.json"),
        config
            .runtime
            .providers
            .iter()
            .map(ToString::to_string)
            .collect(),
    );
    observer.camera_state(SourceState::Opening.as_str());
    let revisions: std::collections::BTreeMap<String, u64> = names
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
    let http = match &config.http.listen {
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
    };
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
        let _ = input_back.send(Input::new(shape.1)?);
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
    let capture = {
        let (slot, stop, stats, state, observer) = (
            slot.clone(),
            stop.clone(),
            stats.clone(),
            source_state.clone(),
            observer.clone(),
        );
        let drop_when_busy = config.source.drop_when_busy;
        std::thread::Builder::new()
            .name("hallmark-capture".into())
            .spawn(move || {
                // Design: the slot closes however this thread ends (a panic in a source included), so
                // pre-processing and inference always see the end and the daemon can stop.
                let _close = CloseOnDrop(slot.clone());
                // A replay reports no states of its own: its first frame means it streams.
                let mut streaming = false;
                let mut skips =
                    crate::logging::Throttle::new(10, std::time::Duration::from_secs(10));
                while !stop.load(Ordering::Relaxed) {
                    match source.next() {
                        Next::Frame(f) => {
                            if !streaming {
                                streaming = true;
                                observer.camera_state(SourceState::Streaming.as_str());
                            }
                            if !slot.put(f, drop_when_busy) {
                                break;
                            }
                        }
                        Next::Skipped { origin, reason } => {
                            stats.skipped.fetch_add(1, Ordering::Relaxed);
                            observer.frame_error();
                            // Design: a folder of broken files, looping, would write a line a frame.
                            if let Some(left_out) = skips.admit(Instant::now()) {
                                tracing::warn!(%origin, %reason, skipped_since_last_line = left_out, "frame skipped");
                            }
                        }
                        Next::State(s) => {
                            tracing::info!(state = ?s, "source state");
                            observer.camera_state(s.as_str());
                            streaming = s == SourceState::Streaming;
                            if let Ok(mut g) = state.lock() {
                                *g = s;
                            }
                        }
                        Next::Idle => {}
                        Next::End => break,
                    }
                }
                slot.close();
            })
            .map_err(DaemonError::Thread)?
    };

    // Pre-processing, with two inputs taking turns with inference.
    // With several brands each frame is routed by sight on the inference thread, the barcodes read only
    // when sight is unsure, or here on one frame in `source.route_every` (see [`brands`]).
    let router: Option<brands::Router> = (names.len() > 1).then(|| {
        brands::Router::new(
            names
                .iter()
                .map(|b| brands::BrandPrefixes {
                    brand: b.clone(),
                    prefixes: registry
                        .source(b)
                        .map(|s| s.manifest.gs1_prefixes.clone())
                        .unwrap_or_default(),
                })
                .collect(),
        )
    });
    let (prepared_tx, prepared_rx) = sync_channel::<(OwnedFrame, Input, brands::Route)>(1);
    let unsure_router = router.clone();
    let prep = {
        let slot = slot.clone();
        let stats = stats.clone();
        let observer = observer.clone();
        let mut prep = crate::detector::Prep::new(shape.1);
        let mut scratch = Vec::new();
        let route_every = config.source.route_every;
        let mut since_read = 0u32;
        std::thread::Builder::new()
            .name("hallmark-prep".into())
            .spawn(move || {
                let mut spare: Option<Input> = None;
                while let Some(frame) = slot.take() {
                    let Some(mut input) = spare.take().or_else(|| inputs.recv().ok()) else { break };
                    let started = Instant::now();
                    match prep.run(frame.view(), &mut input) {
                        Ok(_) => {
                            let brand = match router.as_ref() {
                                Some(router)
                                    if route_every > 0 && since_read % route_every == 0 =>
                                {
                                    read_route(router, &frame, &mut scratch)
                                }
                                Some(_) => brands::Route::Sight,
                                None => brands::Route::Code(default),
                            };
                            since_read = since_read.wrapping_add(1);
                            observer.stage(Stage::Preprocess, started.elapsed());
                            if prepared_tx.send((frame, input, brand)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            stats.frame_errors.fetch_add(1, Ordering::Relaxed);
                            observer.frame_error();
                            tracing::warn!(origin = %frame.origin, error = %e, "frame cannot be pre-processed; skipped");
                            spare = Some(input);
                        }
                    }
                }
            })
            .map_err(DaemonError::Thread)?
    };

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
    let mut fatal = None;
    let (mut first_at, mut last_at) = (None, None);
    // The model a swap replaced (brand, bundle, detector if still loaded), kept until the new one has
    // proved itself on frames.
    let mut previous: Option<(String, Brand, Option<crate::detector::Detector>)> = None;
    let mut watch = failing::FailureWatch::new(SWAP_FAILURES);
    let mut sight = brands::Sight::new(default);
    let mut scratch = Vec::new();
    loop {
        // Design: a swap happens here, between two frames: no frame waits for it or is dropped by it.
        while let Ok(swap) = swaps.try_recv() {
            let brand = swap.manifest.brand.clone();
            let cost = brands::estimate(swap.bundle.model_bytes().len());
            observer.model_provider(&brand, &swap.detector.provider().to_string());
            let (old, evicted) = registry.replace(
                &brand,
                Brand {
                    bundle: swap.bundle,
                    manifest: swap.manifest.clone(),
                },
                Some(swap.detector),
                cost,
            );
            evicted_now(&observer, &evicted, registry.loaded().len());
            previous = old.map(|(b, d)| (brand.clone(), b, d));
            watch.reset();
            tracing::info!(%brand, revision = swap.manifest.revision, "new model swapped in");
            let _ = swap.done.send(());
        }
        let (frame, input, route) = match prepared_rx.recv_timeout(IDLE_TICK) {
            Ok(next) => next,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let (routed, result) = infer_routed(
            &mut registry,
            &names,
            (route, &frame, &input),
            (&mut sight, unsure_router.as_ref(), &mut scratch),
            &runtime,
            &observer,
        );
        let brand = &names[routed];
        let serving = registry
            .source(brand)
            .expect("routed to a served brand")
            .manifest
            .clone();
        let _ = input_back.send(input);
        // A swapped-in model that fails while serving goes back to the one it replaced.
        let outcome = match &result {
            Ok(_) => failing::Outcome::Ok,
            Err(e) if e.is_transient() => failing::Outcome::Transient,
            Err(_) => failing::Outcome::Fatal,
        };
        let failed_here = watch
            .record(outcome)
            .then(|| result.as_ref().err().map(|e| e.to_string()))
            .flatten();
        if let Some(cause) = failed_here {
            if previous.as_ref().is_some_and(|(b, ..)| b == brand) {
                let (b, old, old_detector) = previous.take().expect("checked");
                let _ = fault_tx.send(updates::RuntimeFault {
                    brand: b.clone(),
                    revision: serving.revision,
                    cause,
                });
                let cost = brands::estimate(old.bundle.model_bytes().len());
                let (_, evicted) = registry.replace(&b, old, old_detector, cost);
                evicted_now(&observer, &evicted, registry.loaded().len());
                watch.reset();
                continue;
            }
        }
        match result {
            Ok(detections) => {
                stats.frames.fetch_add(1, Ordering::Relaxed);
                observer.frame();
                observer.set_dropped(slot.dropped());
                let now = Instant::now();
                first_at.get_or_insert(now);
                last_at = Some(now);
                if inferred_tx
                    .send(Inferred {
                        frame: Arc::new(frame),
                        detections,
                        manifest: serving,
                    })
                    .is_err()
                {
                    break;
                }
            }
            Err(e) if e.is_transient() => {
                stats.frame_errors.fetch_add(1, Ordering::Relaxed);
                observer.frame_error();
                tracing::warn!(origin = %frame.origin, error = %e, "inference failed on a frame; skipped");
            }
            Err(e) => {
                fatal = Some(e);
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
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
    if let Some(e) = fatal {
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
        busy: match (first_at, last_at) {
            (Some(a), Some(b)) => b - a,
            _ => std::time::Duration::ZERO,
        },
    })
}

/// Transient inference errors in a row after which a swapped-in model counts as failing.
const SWAP_FAILURES: u32 = 3;

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
    /// The output layout and input every brand shares.
    shape: (crate::detector::Layout, crate::detector::InputShape),
    /// How long the default brand's detector took to build (the first bundle's: with the runtime).
    first_load: std::time::Duration,
}

/// Verifies every configured bundle (the store's newer active revision of a brand serves instead of
/// its configured bundle when it verifies and loads), checks that all share one input size and output
/// layout (the two circulating inputs and the pre-processing fit every brand), and keeps the default
/// brand's detector loaded; the others load when a frame needs them.
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
    let shape_of = |d: &crate::detector::Detector| (d.layout(), d.input_shape());
    let shape = shape_of(&loaded[0].1);
    for (b, d) in &loaded[1..] {
        if shape_of(d) != shape {
            return Err(DaemonError::Brands(format!(
                "{} ({}: input {}, output {:?}) and {} ({}: input {}, output {:?}) differ; every bundle served on one device must share the input (size and type) and output layout",
                loaded[0].0.dir().display(),
                loaded[0].0.manifest().brand,
                shape.1,
                shape.0,
                b.dir().display(),
                b.manifest().brand,
                d.input_shape(),
                d.layout(),
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
        let (bundle, detector) = match newer_from_store(store, &bundle, trust, &runtime) {
            Some((b, d)) if shape_of(&d) == shape => (b, d),
            Some((b, _)) => {
                tracing::error!(brand = %b.manifest().brand, revision = b.manifest().revision, "the store's active revision has another input size or output layout; serving the configured bundle");
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

/// The store's active revision of the bundle's brand, verified and loaded, when it is newer, or when
/// it is the target of a signed rollback that withdrew the configured revision (a restart must not
/// undo a rollback the publisher signed).
fn newer_from_store(
    store: &crate::store::Store,
    bundle: &crate::bundle::Bundle,
    trust: &crate::bundle::TrustedKeys,
    runtime: &crate::runtime::Runtime,
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

/// Reads the barcodes anywhere in the frame and routes it to a brand.
fn read_route(router: &brands::Router, frame: &OwnedFrame, scratch: &mut Vec<u8>) -> brands::Route {
    let gtins = crate::codes::frame_gtins(frame.view(), scratch);
    router.route(gtins.iter().map(String::as_str))
}

/// Runs `brand`'s detector on a prepared input, building it first when it is not in memory.
fn infer_brand(
    registry: &mut brands::Registry<Brand, crate::detector::Detector>,
    brand: &str,
    input: &Input,
    runtime: &crate::runtime::Runtime,
    observer: &Observer,
) -> Result<Vec<Detection>, DetectorError> {
    let load = |b: &Brand| crate::detector::Detector::new(runtime, &b.bundle);
    match registry.ensure_loaded(brand, load) {
        Some(Ok((detector, loaded))) => {
            if let Some(took) = loaded.built_in {
                observer.model_built(took);
                observer.model_provider(brand, &detector.provider().to_string());
                tracing::info!(%brand, evicted = ?loaded.evicted, ms = took.as_millis() as u64, "detector loaded for a routed frame");
            }
            let started = Instant::now();
            let result = detector.infer(input).map(|(d, _, _)| d.to_vec());
            observer.stage(Stage::Inference, started.elapsed());
            if !loaded.evicted.is_empty() || loaded.built_in.is_some() {
                evicted_now(observer, &loaded.evicted, registry.loaded().len());
            }
            result
        }
        // A model that loaded at start and cannot now: the frame is lost, the next may load.
        Some(Err(e)) => {
            tracing::error!(%brand, error = %e, "detector cannot be loaded; frame skipped");
            Err(DetectorError::Inference(format!("{brand}: {e}")))
        }
        None => Err(DetectorError::Inference(format!(
            "{brand}: not a served brand"
        ))),
    }
}

/// Runs the detector of the brand a frame is routed to; for a frame routed by sight, every served
/// brand's, keeping the detections of the brand that sees its products best ([`brands::Sight`]; the
/// frame's barcodes are read, by `router`, only when sight is unsure). Returns the brand (an index into
/// `names`) and its detections, or the brand whose detector failed.
fn infer_routed(
    registry: &mut brands::Registry<Brand, crate::detector::Detector>,
    names: &[String],
    (route, frame, input): (brands::Route, &OwnedFrame, &Input),
    (sight, router, scratch): (&mut brands::Sight, Option<&brands::Router>, &mut Vec<u8>),
    runtime: &crate::runtime::Runtime,
    observer: &Observer,
) -> (usize, Result<Vec<Detection>, DetectorError>) {
    match route {
        brands::Route::Code(i) => {
            if names.len() > 1 {
                observer.routed(route.by());
            }
            sight.settle(i);
            (
                i,
                infer_brand(registry, &names[i], input, runtime, observer),
            )
        }
        brands::Route::Sight => {
            let mut seen = Vec::with_capacity(names.len());
            for (i, brand) in names.iter().enumerate() {
                match infer_brand(registry, brand, input, runtime, observer) {
                    Ok(d) => seen.push(d),
                    Err(e) => return (i, Err(e)),
                }
            }
            let scores: Vec<f32> = seen.iter().map(|d| brands::sight_score(d)).collect();
            let (i, by) = sight.choose(&scores, || {
                match router.map(|r| read_route(r, frame, scratch)) {
                    Some(brands::Route::Code(i)) => Some(i),
                    _ => None,
                }
            });
            observer.routed(by.by());
            (i, Ok(seen.swap_remove(i)))
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

/// Closes the frame slot when dropped.
struct CloseOnDrop(Arc<FrameSlot>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
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

/// A frame and what the detector found in it.
struct Inferred {
    /// The model that judged it (a swap may come between two frames).
    manifest: Arc<Manifest>,
    frame: Arc<OwnedFrame>,
    detections: Vec<Detection>,
}

/// The judge stage: everything after inference.
struct Judge {
    manifest: Arc<Manifest>,
    origin: Origin,
    stats: Arc<Stats>,
    modes: Modes,
    serials: SerialLedger,
    /// Frames come from a camera: only then are genuine packs' SGTINs remembered.
    live: bool,
    stdout: Option<Queue<Arc<VerdictEvent>>>,
    /// The evidence writer, and the room its file system has left beyond the spool's reserve.
    evidence: Option<(Queue<evidence::Job>, evidence::Room)>,
    link: Option<Link>,
    mode: Mode,
    reject_pulse_ms: u16,
    reject_inconclusive: bool,
    next_item: u32,
    frame_no: u64,
    /// The barcode reader, unless `verdict.barcodes` is off.
    barcodes: Option<crate::codes::Barcodes>,
    delivery: Option<Delivery>,
    observer: Arc<Observer>,
    /// Bumped every loop (≤ 100 ms apart): systemd's watchdog is fed while it moves.
    heartbeat: Arc<AtomicU64>,
    screen: Receiver<Status>,
    /// Keeps the trigger channel open for the link and the command topic.
    _triggers: std::sync::mpsc::Sender<()>,
}

/// The judge's outputs that come from outside (delivery and observability).
struct Sinks {
    delivery: Option<Delivery>,
    observer: Arc<Observer>,
    heartbeat: Arc<AtomicU64>,
    /// Screen statuses from the updater (model updating), shown on the controller.
    screen: Receiver<Status>,
}

impl Judge {
    fn new(
        config: &Config,
        manifest: Arc<Manifest>,
        origin: Origin,
        stats: Arc<Stats>,
        triggers: std::sync::mpsc::Sender<()>,
        sinks: Sinks,
    ) -> Result<Judge, DaemonError> {
        let state_dir = &config.agent.state_dir;
        let io = |source: std::io::Error| DaemonError::StateDir {
            path: state_dir.display().to_string(),
            source,
        };
        let modes = match config.agent.mode {
            Mode::Kiosk => Modes::Kiosk(Kiosk::new(config.kiosk.clone())),
            Mode::Conveyor => Modes::Conveyor(Conveyor::new(&config.conveyor)),
        };
        let stdout = if config.output.stdout {
            Some(stdout::spawn(4096).map_err(DaemonError::Thread)?)
        } else {
            None
        };
        let evidence = if config.evidence.enabled {
            let dir = state_dir.join("evidence");
            let store =
                evidence::Store::open(&dir, config.evidence.max_files, config.evidence.max_mib)
                    .map_err(io)?;
            let room = evidence::Room::new(&dir, config.evidence.min_free_bytes);
            let queue = evidence::spawn(store, room.clone(), 16, sinks.observer.clone())
                .map_err(DaemonError::Thread)?;
            Some((queue, room))
        } else {
            None
        };
        let link = match &config.link.port {
            Some(port) => Some(
                Link::spawn(port.clone(), config.link.baud, triggers.clone())
                    .map_err(DaemonError::Thread)?,
            ),
            None => None,
        };
        if config.agent.mode == Mode::Kiosk
            && config.kiosk.trigger == crate::config::Trigger::Button
        {
            spawn_terminal_trigger(triggers.clone());
        }
        let serials = SerialLedger::open(
            &state_dir.join("serials.log"),
            config.verdict.serial_memory,
            config.verdict.serial_rescan_window,
        );
        Ok(Judge {
            manifest,
            origin,
            stats,
            modes,
            serials,
            live: config.source.kind == crate::config::SourceKind::Camera,
            stdout,
            evidence,
            link,
            mode: config.agent.mode,
            reject_pulse_ms: config.conveyor.reject_pulse_ms,
            reject_inconclusive: config.conveyor.reject_inconclusive,
            next_item: 1,
            frame_no: 0,
            barcodes: config
                .verdict
                .barcodes
                .then(crate::codes::Barcodes::default),
            delivery: sinks.delivery,
            observer: sinks.observer,
            heartbeat: sinks.heartbeat,
            screen: sinks.screen,
            _triggers: triggers,
        })
    }

    /// Runs until inference ends; returns how many events the sinks dropped.
    fn run(mut self, inferred: Receiver<Inferred>, triggers: Receiver<()>) -> u64 {
        if let Some(link) = &self.link {
            link.status(Status::Idle);
        }
        loop {
            self.heartbeat.fetch_add(1, Ordering::Relaxed);
            while let Ok(status) = self.screen.try_recv() {
                if let Some(link) = &self.link {
                    link.status(status);
                }
            }
            if let Some(link) = &self.link {
                self.observer.link_state(if link.state.connected() {
                    "connected"
                } else {
                    "disconnected"
                });
            }
            while triggers.try_recv().is_ok() {
                self.modes.trigger();
            }
            match inferred.recv_timeout(IDLE_TICK) {
                Ok(item) => {
                    let started = Instant::now();
                    self.on_frame(item);
                    self.observer.stage(Stage::Judge, started.elapsed());
                }
                Err(RecvTimeoutError::Timeout) => {
                    let decided = judging(&self.manifest, &self.serials, |j| {
                        self.modes.on_idle(j, Instant::now())
                    });
                    self.emit(decided);
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let decided = judging(&self.manifest, &self.serials, |j| self.modes.finish(j));
        self.emit(decided);
        let mut drops = 0;
        if let Some(q) = self.stdout.take() {
            drops += q.dropped();
            q.close();
        }
        if let Some((q, _)) = self.evidence.take() {
            drops += q.dropped();
            q.close();
        }
        if let Some(link) = self.link.take() {
            link.close();
        }
        if let Some(delivery) = self.delivery.take() {
            delivery.close();
        }
        drops
    }

    fn on_frame(
        &mut self,
        Inferred {
            frame,
            detections,
            manifest,
        }: Inferred,
    ) {
        if !Arc::ptr_eq(&manifest, &self.manifest) {
            if manifest.brand != self.manifest.brand {
                // Design: the items seen so far are this brand's: decided by its model's rules, before
                // the next brand's frames start items of their own.
                let decided = judging(&self.manifest, &self.serials, |j| self.modes.finish(j));
                self.emit(decided);
            }
            self.manifest = manifest;
        }
        self.frame_no += 1;
        let codes: &mut dyn CodeReader = match &mut self.barcodes {
            Some(reader) => reader,
            None => &mut NoCodes,
        };
        let step = judging(&self.manifest, &self.serials, |j| {
            let judged = judge_frame(frame.view(), &detections, codes, &self.manifest, &j.ctx);
            self.modes.on_frame(
                self.frame_no,
                &frame,
                &judged,
                &detections,
                j,
                Instant::now(),
            )
        });
        if step.scan_started {
            if let Some(link) = &self.link {
                link.status(Status::Scanning);
            }
        }
        self.emit(step.decided);
    }

    fn emit(&mut self, decided: Vec<Decided>) {
        if decided.is_empty() {
            return;
        }
        let now = unix_now();
        for d in &decided {
            for s in d.remembered(self.live) {
                self.serials.record(&s, now);
            }
        }
        let mut out = Vec::with_capacity(decided.len());
        for d in decided {
            let item_id = self.next_item;
            self.next_item = self.next_item.wrapping_add(1);
            let latency = d
                .last
                .as_ref()
                .map_or(0.0, |l| l.frame.captured.elapsed().as_secs_f64() * 1e3);
            let id = uuid::Uuid::now_v7().to_string();
            let ts = hallmark_core::clock::rfc3339_utc(SystemTime::now());
            let mut event = report::verdict_event(
                (id.clone(), ts.clone()),
                item_id,
                &self.origin,
                &self.manifest,
                &d,
                latency,
            );
            let kind = d.decision.verdict;
            let count = match kind {
                VerdictKind::Genuine => &self.stats.genuine,
                VerdictKind::Counterfeit => &self.stats.counterfeit,
                VerdictKind::Inconclusive => &self.stats.inconclusive,
                VerdictKind::NoProduct => &self.stats.no_product,
            };
            count.fetch_add(1, Ordering::Relaxed);
            self.stats.verdicts.fetch_add(1, Ordering::Relaxed);
            if matches!(kind, VerdictKind::Counterfeit | VerdictKind::Inconclusive)
                && d.last.is_some()
            {
                if let Some((q, room)) = &self.evidence {
                    let name = format!(
                        "{}-{}-{}.jpg",
                        ts.replace([':', '.'], ""),
                        kind.as_str(),
                        &id[id.len() - 12..]
                    );
                    if !room.ok() {
                        self.observer.evidence_skipped("low_disk");
                    } else if q.offer(evidence::Job {
                        name: name.clone(),
                        decided: d.clone(),
                        manifest: self.manifest.clone(),
                    }) {
                        event.evidence = Some(name);
                    }
                }
            }
            self.observer.verdict(kind.as_str());
            self.observer.stage(
                Stage::Verdict,
                std::time::Duration::from_secs_f64(latency / 1e3),
            );
            out.push((item_id, kind, d, event));
        }
        // Durable first: nothing acts on a verdict the spool does not hold. While it cannot write (a
        // full disk), the kiosk and the reject gate still act, and the verdicts wait in memory to be
        // spooled, counted (`hallmark_verdicts_unspooled`), with the health check failing.
        if let Some(delivery) = &self.delivery {
            let payloads: Vec<Vec<u8>> = out.iter().map(|(.., event)| event.to_json()).collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            delivery.submit(&refs);
        }
        for (item_id, kind, d, event) in out {
            if let Some(link) = &self.link {
                let reject = self.mode == Mode::Conveyor
                    && (kind == VerdictKind::Counterfeit
                        || (self.reject_inconclusive && kind == VerdictKind::Inconclusive));
                // Design: the reject goes out before the screen update, so it never waits behind one.
                if reject {
                    link.reject(item_id, self.reject_pulse_ms);
                }
                if d.primary || self.mode == Mode::Conveyor {
                    link.show(ShowVerdict::new(
                        item_id,
                        kind,
                        &self.manifest.brand,
                        &d.decision.product,
                        d.decision.confidence,
                    ));
                }
            }
            if let Some(q) = &self.stdout {
                q.offer(Arc::new(event));
            }
        }
    }
}

/// Calls `f` with what the verdict rule needs besides the evidence: today's date and the SGTIN memory.
fn judging<R>(manifest: &Manifest, serials: &SerialLedger, f: impl FnOnce(&Judging<'_>) -> R) -> R {
    let today = hallmark_core::clock::today_utc();
    let now = unix_now();
    let seen = |s: &verdict::Sgtin| serials.is_clone(s, now);
    f(&Judging {
        manifest,
        ctx: verdict::Context {
            today: &today,
            seen: &seen,
        },
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `trigger = button` on a terminal: Enter starts a scan.
fn spawn_terminal_trigger(triggers: std::sync::mpsc::Sender<()>) {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return;
    }
    eprintln!("hallmark: press Enter to scan");
    let _ = std::thread::Builder::new()
        .name("hallmark-stdin".into())
        .spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
                if triggers.send(()).is_err() {
                    break;
                }
            }
        });
}
