//! The inference loop, on the daemon's main thread: swaps in a new model between two frames, runs the
//! detector of the brand each prepared frame is routed to (every brand's, for a frame routed by sight),
//! hands the detections to the judge, and puts a swapped-in model that fails on frames back to the one
//! it replaced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_core::brands;
use hallmark_core::failing;
use hallmark_core::modes::IDLE_TICK;
use hallmark_detect::Detection;

use super::judge::Inferred;
use super::slot::FrameSlot;
use super::stages::{read_route, Prepared};
use super::{evicted_now, updates, Brand, Stats};
use crate::capture::OwnedFrame;
use crate::detector::{DetectorError, Input};
use crate::observe::{Observer, Stage};

/// Transient inference errors in a row after which a swapped-in model counts as failing.
const SWAP_FAILURES: u32 = 3;

/// What the loop works with; the caller keeps ownership, so what it drops after the loop (and when)
/// is unchanged.
pub(super) struct Inference<'a> {
    pub registry: &'a mut brands::Registry<Brand, crate::detector::Detector>,
    pub names: &'a [String],
    pub runtime: &'a crate::runtime::Runtime,
    pub observer: &'a Observer,
    pub stats: &'a Stats,
    pub slot: &'a FrameSlot,
    pub stop: &'a AtomicBool,
    pub swaps: &'a Receiver<updates::Swap>,
    pub prepared: &'a Receiver<Prepared>,
    pub input_back: &'a Sender<Input>,
    pub inferred: &'a SyncSender<Inferred>,
    pub faults: &'a Sender<updates::RuntimeFault>,
    /// Reads a frame's barcodes when sight is unsure (several brands).
    pub router: Option<&'a brands::Router>,
    /// The brand a frame shows when no barcode says otherwise.
    pub default: usize,
}

/// How the loop ended.
pub(super) struct Ran {
    /// The error that stopped inference, if one did.
    pub fatal: Option<DetectorError>,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
}

impl Ran {
    /// From the first inferred frame to the last.
    pub fn busy(&self) -> Duration {
        match (self.first_at, self.last_at) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        }
    }
}

impl Inference<'_> {
    /// Runs until pre-processing ends, the judge is gone, or an error that cannot be skipped.
    pub fn run(self) -> Ran {
        let Inference {
            registry,
            names,
            runtime,
            observer,
            stats,
            slot,
            stop,
            swaps,
            prepared: prepared_rx,
            input_back,
            inferred: inferred_tx,
            faults: fault_tx,
            router: unsure_router,
            default,
        } = self;
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
                evicted_now(observer, &evicted, registry.loaded().len());
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
                registry,
                names,
                (route, &frame, &input),
                (&mut sight, unsure_router, &mut scratch),
                runtime,
                observer,
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
                    evicted_now(observer, &evicted, registry.loaded().len());
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
        Ran {
            fatal,
            first_at,
            last_at,
        }
    }
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
                super::evicted_now(observer, &loaded.evicted, registry.loaded().len());
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
