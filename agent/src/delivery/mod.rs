//! Delivery: verdicts to the fleet over MQTT with nothing lost.
//!
//! ```text
//! judge ──append (fsync)──▶ spool (redb) ──pump──▶ rumqttc ──▶ broker
//!                               ▲                      │
//!                               └──remove on PUBACK────┘
//! ```
//! - [`spool`]: every verdict is committed durably before it is published, and removed only after
//!   the broker's PUBACK; replayed in order after a reconnect or a restart; bounded (oldest dropped,
//!   counted).
//! - [`outbox`]: the pure matching of acknowledgements to verdicts (rumqttc hides packet ids).
//! - [`mqtt`]: the connection — persistent session, the retained `online` status that is also the
//!   last will, telemetry, the command topic, reconnects with capped, jittered backoff, shutdown.
//! - [`tls`]: certificates. Delays are `hallmark_core::backoff`'s; topics and payloads `hallmark_proto`'s.

pub mod mqtt;
pub mod outbox;
pub mod spool;
pub mod tls;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::observe::Observer;
use spool::Spool;

/// What delivery needs of the configuration (`Config::delivery` resolves it): the broker, the thing
/// it speaks for, and the verdict spool.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub mqtt: MqttConfig,
    pub thing: String,
    /// The verdict spool's file (`state_dir/spool.redb`).
    pub spool_path: PathBuf,
    /// Bound of the spool in payload bytes (`spool.max_mib`).
    pub spool_max_bytes: u64,
}

/// The `[mqtt]` section, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// Off (the default): no broker; verdicts go to the other sinks only.
    pub enabled: bool,
    pub host: String,
    /// 1883, or 8883 when `ca` is set. Port 443 adds the ALPN protocol AWS IoT Core wants there.
    pub port: u16,
    /// Stable across restarts (the broker keeps the session under it): default the thing name.
    pub client_id: String,
    pub prefix: String,
    /// PEM files; `ca` turns TLS on, `cert` + `key` add a client certificate (mutual TLS).
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub keep_alive: Duration,
    /// Telemetry period (0: none).
    pub telemetry_interval: Duration,
    /// Reconnect backoff: from 0.5 s, doubling up to this, with jitter.
    pub backoff_max: Duration,
    /// Verdicts published and not yet acknowledged, at most.
    pub max_inflight: u16,
    /// On shutdown, how long to wait for the spool to empty while connected.
    pub drain_timeout: Duration,
    /// Largest packet read from the broker (`mqtt.max_incoming_mib`): anything the broker may deliver
    /// must be read whole to be refused and acknowledged, or the broker delivers it again after every
    /// reconnect. Set it to the broker's own limit (AWS IoT Core: 128 KiB; mosquitto's
    /// `message_size_limit`).
    pub max_incoming_bytes: usize,
}

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("mqtt: {0}")]
    Setup(String),
    #[error("cannot start the MQTT thread: {0}")]
    Thread(std::io::Error),
}

/// The topics of one device (`hallmark_proto::topics`).
pub use hallmark_proto::Topics;

/// A message from the broker for another part of the agent (model releases); the updater's inbox
/// owns the type, so `update` needs nothing of `delivery`.
pub use crate::update::inbox::Inbound;

/// Retained statuses to (re)publish: the latest payload per topic, and whether it still has to go
/// out on this connection. Every connect marks them all again (the broker may have lost them).
#[derive(Debug, Default)]
pub(crate) struct Retained {
    pub latest: std::collections::BTreeMap<String, (Vec<u8>, bool)>,
}

impl Retained {
    pub fn set(&mut self, topic: String, payload: Vec<u8>) {
        self.latest.insert(topic, (payload, true));
    }

    pub fn mark_all(&mut self) {
        for v in self.latest.values_mut() {
            v.1 = true;
        }
    }

    /// The statuses still to publish, oldest topic name first; marks them taken.
    pub fn take_due(&mut self) -> Vec<(String, Vec<u8>)> {
        self.latest
            .iter_mut()
            .filter(|(_, v)| v.1)
            .map(|(t, v)| {
                v.1 = false;
                (t.clone(), v.0.clone())
            })
            .collect()
    }
}

/// Verdicts acted on while the spool could not write, in decision order, waiting to be appended.
#[derive(Debug, Default)]
pub(crate) struct Unspooled {
    queue: VecDeque<Vec<u8>>,
    bytes: u64,
}

/// At most this many verdicts wait in memory for a spool that cannot write (beyond that, the oldest
/// are lost and counted): about an hour of a busy conveyor.
const UNSPOOLED_MAX: usize = 50_000;

/// What the judge and the connection share.
pub(crate) struct Shared {
    pub spool: Spool,
    /// Bounded by [`UNSPOOLED_MAX`] and the spool's own byte bound.
    pub unspooled: Mutex<Unspooled>,
    pub spool_max_bytes: u64,
    pub observer: Arc<Observer>,
    /// New verdicts in the spool, or shutdown: the connection's pump looks again.
    pub wake: tokio::sync::Notify,
    pub closing: AtomicBool,
    /// When each verdict was spooled (for the verdict → PUBACK latency); this run's only.
    pub spooled_at: Mutex<HashMap<u64, Instant>>,
    pub retained: Mutex<Retained>,
    /// The models served, for the `online` status.
    pub models: Mutex<BTreeMap<String, u64>>,
    pub topics: Topics,
}

impl Shared {
    /// Sets the retained `online` status (with the models served now).
    pub fn set_online(&self, online: bool) {
        let models = self.models.lock().map(|m| m.clone()).unwrap_or_default();
        if let Ok(mut r) = self.retained.lock() {
            r.set(
                self.topics.online.clone(),
                mqtt::online_payload(online, &models, &self.observer.providers()),
            );
        }
        self.wake.notify_one();
    }

    /// Mirrors the spool's level and state into the metrics and the health check.
    pub fn report_level(&self) {
        let level = self.spool.level();
        self.observer.spool(level.depth, level.bytes);
        self.observer.set_spool_dropped(level.dropped);
        self.observer.spool_failing(self.spool.failing());
    }

    /// Appends `payloads` after whatever waits in memory, keeping decision order. What the spool
    /// cannot take waits in memory (bounded: the oldest beyond it are lost, counted and logged).
    pub fn spool_in_order(&self, payloads: &[&[u8]]) {
        let Ok(mut held) = self.unspooled.lock() else {
            return;
        };
        let appended = if held.queue.is_empty() {
            self.spool.append(payloads)
        } else {
            let all: Vec<&[u8]> = held
                .queue
                .iter()
                .map(Vec::as_slice)
                .chain(payloads.iter().copied())
                .collect();
            self.spool.append(&all)
        };
        match appended {
            Ok(a) => {
                if !held.queue.is_empty() {
                    tracing::info!(
                        verdicts = held.queue.len(),
                        "verdicts held in memory are in the spool now"
                    );
                }
                held.queue.clear();
                held.bytes = 0;
                self.note_spooled(&a);
                self.observer.unspooled(0, 0);
            }
            Err(e) => {
                self.observer.spool_write_error();
                let mut lost = 0u64;
                for p in payloads {
                    held.bytes += p.len() as u64;
                    held.queue.push_back(p.to_vec());
                }
                while held.queue.len() > UNSPOOLED_MAX
                    || (held.bytes > self.spool_max_bytes && held.queue.len() > 1)
                {
                    if let Some(old) = held.queue.pop_front() {
                        held.bytes -= old.len() as u64;
                        lost += 1;
                    }
                }
                if lost > 0 {
                    tracing::error!(lost, error = %e, "verdict spool cannot write and the verdicts waiting in memory passed their bound: the oldest are lost");
                }
                self.observer.unspooled(held.queue.len(), lost);
            }
        }
        drop(held);
        self.report_level();
        self.wake.notify_one();
    }

    /// Tries again to append what waits in memory (the spool reopens itself when it can).
    pub fn respool(&self) {
        let waiting = self
            .unspooled
            .lock()
            .map(|h| !h.queue.is_empty())
            .unwrap_or(false);
        if waiting {
            self.spool_in_order(&[]);
        } else if self.spool.failing().is_some() {
            // Nothing waits, but a read or a removal failed: a cheap read reopens it.
            let _ = self.spool.after(None, 1);
            self.report_level();
            self.wake.notify_one();
        }
    }

    /// When each verdict was spooled (for the verdict → PUBACK latency); drops forgotten.
    fn note_spooled(&self, appended: &spool::Appended) {
        let now = Instant::now();
        if let Ok(mut at) = self.spooled_at.lock() {
            for d in &appended.dropped {
                at.remove(d);
            }
            // Bounded by the spool: entries leave on PUBACK or when dropped.
            for s in &appended.seqs {
                at.insert(*s, now);
            }
        }
    }
}

/// Publishes retained statuses and the models served from any thread (the updater's).
#[derive(Clone)]
pub struct Publisher(Arc<Shared>);

impl Publisher {
    pub fn publish_retained(&self, topic: String, payload: Vec<u8>) {
        if let Ok(mut r) = self.0.retained.lock() {
            r.set(topic, payload);
        }
        self.0.wake.notify_one();
    }

    pub fn set_models(&self, models: BTreeMap<String, u64>) {
        if let Ok(mut m) = self.0.models.lock() {
            *m = models;
        }
        self.0.set_online(true);
    }

    pub fn topics(&self) -> &Topics {
        &self.0.topics
    }
}

/// The delivery side of the daemon: spool and MQTT connection.
pub struct Delivery {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Delivery {
    /// Opens the spool and checks the TLS files (so a bad certificate is one clear error at start),
    /// then connects in the background. Nothing is lost while the broker is away: verdicts wait in
    /// the spool.
    pub fn start(
        settings: &Settings,
        models: BTreeMap<String, u64>,
        observer: Arc<Observer>,
        triggers: Sender<()>,
        releases: Option<Arc<crate::update::Inbox>>,
    ) -> Result<Delivery, DeliveryError> {
        let spool::Opened { spool, set_aside } =
            Spool::open(&settings.spool_path, settings.spool_max_bytes)?;
        if let Some(aside) = &set_aside {
            observer.spool_damaged();
            tracing::error!(kept = %aside.path.display(), reason = %aside.reason, "verdict spool damaged: set aside with the verdicts it held, which are lost; starting with a fresh spool");
        }
        let shared = Arc::new(Shared {
            spool,
            unspooled: Mutex::new(Unspooled::default()),
            spool_max_bytes: settings.spool_max_bytes,
            observer,
            wake: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
            spooled_at: Mutex::new(HashMap::new()),
            retained: Mutex::new(Retained::default()),
            models: Mutex::new(models.clone()),
            topics: Topics::new(&settings.mqtt.prefix, &settings.thing),
        });
        shared.set_online(true);
        shared.report_level();
        let level = shared.spool.level();
        if level.depth > 0 {
            tracing::info!(
                depth = level.depth,
                "verdict spool holds undelivered verdicts from before; they go first"
            );
        }
        let connection =
            mqtt::Connection::new(settings, models, shared.clone(), triggers, releases)?;
        let thread = std::thread::Builder::new()
            .name("hallmark-mqtt".into())
            .spawn(move || connection.run())
            .map_err(DeliveryError::Thread)?;
        Ok(Delivery {
            shared,
            thread: Some(thread),
        })
    }

    /// Commits verdict events (their exact bytes) to the spool; returns once they are durable, or,
    /// while the spool cannot write (a full disk), once they wait in memory to be appended as soon as
    /// it can (in decision order, bounded; [`Delivery::unspooled`] says how many wait).
    pub fn submit(&self, payloads: &[&[u8]]) {
        if !payloads.is_empty() {
            self.shared.spool_in_order(payloads);
        }
    }

    /// Verdicts waiting in memory for the spool.
    pub fn unspooled(&self) -> usize {
        self.shared
            .unspooled
            .lock()
            .map(|h| h.queue.len())
            .unwrap_or(0)
    }

    /// Publishes `payload` retained (QoS 1) on `topic` now, or as soon as connected; a newer payload for
    /// the same topic replaces one not yet sent.
    pub fn publish_retained(&self, topic: String, payload: Vec<u8>) {
        if let Ok(mut r) = self.shared.retained.lock() {
            r.set(topic, payload);
        }
        self.shared.wake.notify_one();
    }

    /// The models served changed: the retained `online` status says so.
    pub fn set_models(&self, models: BTreeMap<String, u64>) {
        if let Ok(mut m) = self.shared.models.lock() {
            *m = models;
        }
        self.shared.set_online(true);
    }

    pub fn topics(&self) -> &Topics {
        &self.shared.topics
    }

    /// A handle for other threads to publish retained statuses through this connection.
    pub fn publisher(&self) -> Publisher {
        Publisher(self.shared.clone())
    }

    /// Publishes what the spool holds if connected (bounded by `mqtt.drain_timeout`), publishes
    /// `online: false`, disconnects, and joins the connection thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.thread.is_some() {
            self.shared.respool();
            let left = self.unspooled();
            if left > 0 {
                tracing::error!(verdicts = left, "shutting down while the verdict spool cannot write: verdicts held in memory are lost");
            }
        }
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the MQTT thread panicked");
            }
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.shutdown();
    }
}
