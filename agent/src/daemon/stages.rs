//! The stages before inference, each on its own thread: capture (the source into the newest-wins
//! [`FrameSlot`]) and pre-processing (a frame into one of two circulating inputs, routed to a brand).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use hallmark_core::brands;

use super::slot::FrameSlot;
use super::{Brand, DaemonError, Stats};
use crate::capture::{Next, OwnedFrame, Source, SourceState};
use crate::detector::Input;
use crate::observe::{Observer, Stage};

/// A pre-processed frame: the frame, its input tensor and the brand it is routed to.
pub(super) type Prepared = (OwnedFrame, Input, brands::Route);

/// The capture thread's parts.
pub(super) struct Capture {
    pub source: Box<dyn Source>,
    pub slot: Arc<FrameSlot>,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    /// The source's latest state, for the daemon's status.
    pub state: Arc<Mutex<SourceState>>,
    pub observer: Arc<Observer>,
    /// `source.drop_when_busy`: the newest frame replaces one inference has not taken yet.
    pub drop_when_busy: bool,
}

impl Capture {
    /// Starts the thread; it ends with the source, on `stop`, or when the slot is closed.
    pub fn spawn(self) -> Result<JoinHandle<()>, DaemonError> {
        let Capture {
            mut source,
            slot,
            stop,
            stats,
            state,
            observer,
            drop_when_busy,
        } = self;
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
            .map_err(DaemonError::Thread)
    }
}

/// The barcode router of several brands (none for one).
pub(super) fn router(
    names: &[String],
    registry: &brands::Registry<Brand, crate::detector::Detector>,
) -> Option<brands::Router> {
    (names.len() > 1).then(|| {
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
    })
}

/// The pre-processing thread's parts.
pub(super) struct Prep {
    pub slot: Arc<FrameSlot>,
    pub stats: Arc<Stats>,
    pub observer: Arc<Observer>,
    pub prep: crate::detector::Prep,
    /// Several brands: reads the routing barcodes on one frame in `route_every` (0: never here).
    pub router: Option<brands::Router>,
    pub route_every: u32,
    /// The brand every frame goes to when one brand is served.
    pub default: usize,
    /// Inputs handed back by inference, to fill again.
    pub inputs: Receiver<Input>,
    pub prepared: SyncSender<Prepared>,
}

impl Prep {
    /// Starts the thread; it ends when the slot closes or inference is gone.
    pub fn spawn(self) -> Result<JoinHandle<()>, DaemonError> {
        let Prep {
            slot,
            stats,
            observer,
            mut prep,
            router,
            route_every,
            default,
            inputs,
            prepared: prepared_tx,
        } = self;
        let mut scratch = Vec::new();
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
            .map_err(DaemonError::Thread)
    }
}

/// Reads the barcodes anywhere in the frame and routes it to a brand.
pub(super) fn read_route(
    router: &brands::Router,
    frame: &OwnedFrame,
    scratch: &mut Vec<u8>,
) -> brands::Route {
    let gtins = crate::codes::frame_gtins(frame.view(), scratch);
    router.route(gtins.iter().map(String::as_str))
}

/// Closes the frame slot when dropped.
struct CloseOnDrop(Arc<FrameSlot>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}
