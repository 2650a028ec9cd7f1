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
//! - [`tls`], [`backoff`], [`command`]: certificates, delays, command parsing.

pub mod backoff;
pub mod command;
pub mod mqtt;
pub mod outbox;
pub mod spool;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use thiserror::Error;

use crate::config::Config;
use crate::observe::Observer;
use spool::Spool;

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

/// The topics of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub verdicts: String,
    pub online: String,
    pub telemetry: String,
    pub commands: String,
}

impl Topics {
    pub fn new(prefix: &str, thing: &str) -> Topics {
        let base = format!("{prefix}/things/{thing}");
        Topics {
            verdicts: format!("{base}/verdicts"),
            online: format!("{base}/online"),
            telemetry: format!("{base}/telemetry"),
            commands: format!("{base}/commands"),
        }
    }
}

/// What the judge and the connection share.
pub(crate) struct Shared {
    pub spool: Spool,
    pub observer: Arc<Observer>,
    /// New verdicts in the spool, or shutdown: the connection's pump looks again.
    pub wake: tokio::sync::Notify,
    pub closing: AtomicBool,
    /// When each verdict was spooled (for the verdict → PUBACK latency); this run's only.
    pub spooled_at: Mutex<HashMap<u64, Instant>>,
}

impl Shared {
    /// Mirrors the spool's level into the metrics.
    pub fn report_level(&self) {
        let level = self.spool.level();
        self.observer.spool(level.depth, level.bytes);
        self.observer.set_spool_dropped(level.dropped);
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
        config: &Config,
        models: BTreeMap<String, u64>,
        observer: Arc<Observer>,
        triggers: Sender<()>,
    ) -> Result<Delivery, DeliveryError> {
        let spool = Spool::open(
            &config.agent.state_dir.join("spool.redb"),
            config.spool.max_bytes,
        )?;
        let shared = Arc::new(Shared {
            spool,
            observer,
            wake: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
            spooled_at: Mutex::new(HashMap::new()),
        });
        shared.report_level();
        let level = shared.spool.level();
        if level.depth > 0 {
            tracing::info!(
                depth = level.depth,
                "verdict spool holds undelivered verdicts from before; they go first"
            );
        }
        let connection = mqtt::Connection::new(config, models, shared.clone(), triggers)?;
        let thread = std::thread::Builder::new()
            .name("hallmark-mqtt".into())
            .spawn(move || connection.run())
            .map_err(DeliveryError::Thread)?;
        Ok(Delivery {
            shared,
            thread: Some(thread),
        })
    }

    /// Commits verdict events (their exact bytes) to the spool; returns once they are durable.
    pub fn submit(&self, payloads: &[&[u8]]) -> Result<(), DeliveryError> {
        if payloads.is_empty() {
            return Ok(());
        }
        let appended = self.shared.spool.append(payloads)?;
        let now = Instant::now();
        if let Ok(mut at) = self.shared.spooled_at.lock() {
            for d in &appended.dropped {
                at.remove(d);
            }
            // Bounded by the spool: entries leave on PUBACK or when dropped.
            for s in &appended.seqs {
                at.insert(*s, now);
            }
        }
        self.shared.report_level();
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Publishes what the spool holds if connected (bounded by `mqtt.drain_timeout`), publishes
    /// `online: false`, disconnects, and joins the connection thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
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
