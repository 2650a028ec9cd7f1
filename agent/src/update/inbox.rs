//! Release messages on their way from the broker to the updater: the newest message per topic wins
//! (a release topic is retained state, so an older message under a newer one says nothing), at most
//! [`MAX_TOPICS`] wait, and a message for the brand being installed interrupts the install, so a newer
//! release never waits behind a slow download of an older one.
//!
//! The MQTT thread [`Inbox::put`]s; the updater [`Inbox::take`]s, says what it is installing
//! ([`Inbox::installing`]) and hands [`Inbox::interrupt`] to the download as its cancel flag.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A message from the broker for another part of the agent (model releases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Topics (two per brand: fleet and device) whose newest message may wait at once; beyond it the
/// topic waiting longest is dropped, counted.
pub const MAX_TOPICS: usize = 256;

#[derive(Debug, Default)]
struct Waiting {
    /// Topic → (arrival order, payload).
    latest: BTreeMap<String, (u64, Vec<u8>)>,
    seq: u64,
    /// The brand the updater is installing.
    installing: Option<String>,
    closed: bool,
    dropped: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Inbox {
    waiting: Mutex<Waiting>,
    ready: Condvar,
    interrupt: AtomicBool,
}

fn lock(m: &Mutex<Waiting>) -> MutexGuard<'_, Waiting> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inbox {
    pub fn new() -> Inbox {
        Inbox::default()
    }

    /// A message on a release topic: replaces the one waiting for the same topic; interrupts the
    /// install of the brand the topic names.
    pub fn put(&self, topic: String, payload: Vec<u8>) {
        let mut w = lock(&self.waiting);
        if w.closed {
            return;
        }
        let brand = topic.rsplit('/').next().unwrap_or_default();
        if w.installing.as_deref() == Some(brand) {
            self.interrupt.store(true, Ordering::SeqCst);
        }
        w.seq += 1;
        let seq = w.seq;
        w.latest.insert(topic, (seq, payload));
        while w.latest.len() > MAX_TOPICS {
            let oldest = w
                .latest
                .iter()
                .min_by_key(|(_, (seq, _))| *seq)
                .map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                w.latest.remove(&t);
                w.dropped += 1;
                tracing::warn!(topic = %t, "too many release topics waiting; the oldest message is dropped");
            }
        }
        drop(w);
        self.ready.notify_one();
    }

    /// The message waiting longest, waiting up to `timeout` for one; `None` on timeout or once closed.
    pub fn take(&self, timeout: Duration) -> Option<Inbound> {
        let mut w = lock(&self.waiting);
        if w.latest.is_empty() && !w.closed {
            w = self
                .ready
                .wait_timeout(w, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let topic = w
            .latest
            .iter()
            .min_by_key(|(_, (seq, _))| *seq)
            .map(|(t, _)| t.clone())?;
        let (_, payload) = w.latest.remove(&topic)?;
        Some(Inbound { topic, payload })
    }

    /// The updater starts (`Some(brand)`) or ends (`None`) an install. A start clears the interrupt,
    /// unless a message for that brand already waits.
    pub fn installing(&self, brand: Option<&str>) {
        let mut w = lock(&self.waiting);
        w.installing = brand.map(str::to_string);
        if let Some(b) = brand {
            let waiting = w.latest.keys().any(|t| t.rsplit('/').next() == Some(b));
            self.interrupt.store(w.closed || waiting, Ordering::SeqCst);
        }
    }

    /// Set by a message for the brand being installed, or by [`Inbox::close`].
    pub fn interrupt(&self) -> &AtomicBool {
        &self.interrupt
    }

    /// Shutdown: wakes the updater and interrupts its download.
    pub fn close(&self) {
        lock(&self.waiting).closed = true;
        self.interrupt.store(true, Ordering::SeqCst);
        self.ready.notify_all();
    }

    pub fn closed(&self) -> bool {
        lock(&self.waiting).closed
    }

    /// Messages dropped because too many topics were waiting.
    pub fn dropped(&self) -> u64 {
        lock(&self.waiting).dropped
    }

    /// Messages waiting now.
    pub fn len(&self) -> usize {
        lock(&self.waiting).latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = "hallmark/fleet/models/northwind";
    const CANARY: &str = "hallmark/things/k1/models/northwind";

    #[test]
    fn the_newest_message_per_topic_wins_in_arrival_order() {
        let inbox = Inbox::new();
        for i in 0..100u8 {
            inbox.put(FLEET.into(), vec![i; 60 << 10]);
        }
        inbox.put(CANARY.into(), b"canary".to_vec());
        assert_eq!(inbox.len(), 2, "a hundred releases on one topic hold one");
        let first = inbox.take(Duration::ZERO).unwrap();
        assert_eq!((first.topic.as_str(), first.payload[0]), (FLEET, 99));
        assert_eq!(inbox.take(Duration::ZERO).unwrap().payload, b"canary");
        assert!(inbox.take(Duration::from_millis(10)).is_none());
    }

    #[test]
    fn waiting_topics_are_bounded_the_oldest_dropped() {
        let inbox = Inbox::new();
        for i in 0..MAX_TOPICS + 10 {
            inbox.put(format!("hallmark/fleet/models/brand-{i}"), vec![1]);
        }
        assert_eq!(inbox.len(), MAX_TOPICS);
        assert_eq!(inbox.dropped(), 10);
        assert_eq!(
            inbox.take(Duration::ZERO).unwrap().topic,
            "hallmark/fleet/models/brand-10"
        );
    }

    #[test]
    fn a_message_for_the_brand_being_installed_interrupts_it_others_do_not() {
        let inbox = Inbox::new();
        inbox.installing(Some("northwind"));
        inbox.put("hallmark/fleet/models/aurora".into(), vec![1]);
        assert!(!inbox.interrupt().load(Ordering::SeqCst));
        inbox.put(CANARY.into(), vec![2]);
        assert!(inbox.interrupt().load(Ordering::SeqCst));
        inbox.installing(Some("northwind"));
        assert!(
            inbox.interrupt().load(Ordering::SeqCst),
            "a message for it still waits"
        );
        while inbox.take(Duration::ZERO).is_some() {}
        inbox.installing(Some("northwind"));
        assert!(
            !inbox.interrupt().load(Ordering::SeqCst),
            "a new install starts clear"
        );
    }

    #[test]
    fn close_wakes_the_taker_and_interrupts() {
        let inbox = std::sync::Arc::new(Inbox::new());
        let taker = {
            let inbox = inbox.clone();
            std::thread::spawn(move || inbox.take(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(50));
        inbox.close();
        assert!(taker.join().unwrap().is_none());
        assert!(inbox.interrupt().load(Ordering::SeqCst));
        inbox.put(FLEET.into(), vec![1]);
        assert!(inbox.is_empty(), "nothing is taken after close");
    }
}
