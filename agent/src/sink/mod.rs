//! Where verdicts go: each sink runs on its own thread behind a bounded queue, so a slow or absent
//! sink never stalls detection. When a queue is full the newest item is dropped and counted (and
//! logged), never blocked on.
//!
//! - [`stdout`]: verdict events as JSON Lines.
//! - [`evidence`]: an annotated JPEG for every counterfeit or inconclusive verdict, under a retention
//!   bound (files and MiB).
//! - [`link`]: the kiosk/conveyor controller over `hallmark-link` (screen, reject gate, button).

pub mod annotate;
pub mod evidence;
pub mod link;
pub mod stdout;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A bounded queue in front of a worker thread.
pub struct Queue<T: Send + 'static> {
    name: &'static str,
    tx: Option<SyncSender<T>>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    /// Signalled (by disconnecting) when the worker has handled everything and returned.
    finished: Option<std::sync::mpsc::Receiver<()>>,
}

/// How long closing waits for a sink to finish what is queued (a stdout pipe nobody reads, a
/// wedged disk): past it the worker is left behind and shutdown goes on.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl<T: Send + 'static> Queue<T> {
    /// Starts a thread that hands every queued item to `handle`, until the queue is closed.
    pub fn spawn(
        name: &'static str,
        capacity: usize,
        mut handle: impl FnMut(T) + Send + 'static,
    ) -> std::io::Result<Queue<T>> {
        let (tx, rx) = sync_channel::<T>(capacity.max(1));
        let (finished_tx, finished) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("hallmark-{name}"))
            .spawn(move || {
                let _finished = finished_tx;
                for item in rx {
                    handle(item);
                }
            })?;
        Ok(Queue {
            name,
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            thread: Some(thread),
            finished: Some(finished),
        })
    }

    /// Queues `item` unless the queue is full (then it is dropped and counted). Returns whether queued.
    pub fn offer(&self, item: T) -> bool {
        let Some(tx) = &self.tx else { return false };
        match tx.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(sink = self.name, dropped = n, "sink queue full; dropping");
                }
                false
            }
        }
    }

    /// Items dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Lets the worker finish what is queued, then joins it — waiting at most [`CLOSE_WAIT`].
    pub fn close(mut self) {
        self.shutdown(CLOSE_WAIT);
    }

    fn shutdown(&mut self, wait: std::time::Duration) {
        self.tx.take();
        let done = self.finished.take().map(|f| {
            matches!(
                f.recv_timeout(wait),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
            )
        });
        if let Some(t) = self.thread.take() {
            if done == Some(false) {
                // Design: a sink blocked on I/O must not hold up a shutdown (SIGTERM is bounded);
                // its thread is left behind and ends with the process.
                tracing::warn!(
                    sink = self.name,
                    waited_ms = wait.as_millis() as u64,
                    "sink did not finish in time; left behind"
                );
                return;
            }
            if t.join().is_err() {
                tracing::error!(sink = self.name, "sink thread panicked");
            }
        }
    }
}

impl<T: Send + 'static> Drop for Queue<T> {
    fn drop(&mut self) {
        self.shutdown(CLOSE_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (gate_tx, gate_rx) = channel::<()>();
        let (done_tx, done_rx) = channel::<u32>();
        let q = Queue::spawn("test", 1, move |v: u32| {
            let _ = gate_rx.recv();
            let _ = done_tx.send(v);
        })
        .unwrap();
        // The worker takes the first item and waits on the gate; one more fits the queue.
        assert!(q.offer(1));
        let mut queued = 1;
        for v in 2..10 {
            if q.offer(v) {
                queued += 1;
            }
        }
        assert!(q.dropped() >= 6, "dropped {}", q.dropped());
        for _ in 0..queued {
            gate_tx.send(()).unwrap();
        }
        q.close();
        let got: Vec<u32> = done_rx.try_iter().collect();
        assert_eq!(got.len(), queued);
        assert_eq!(got[0], 1);
    }

    #[test]
    fn closing_a_wedged_sink_waits_a_bounded_time() {
        let (gate_tx, gate_rx) = channel::<()>();
        let mut q = Queue::spawn("wedged", 4, move |_: u32| {
            // A write that never returns (a pipe nobody reads), until the test lets it go.
            let _ = gate_rx.recv();
        })
        .unwrap();
        assert!(q.offer(1));
        let started = std::time::Instant::now();
        q.shutdown(std::time::Duration::from_millis(200));
        let took = started.elapsed();
        assert!(
            took >= std::time::Duration::from_millis(200)
                && took < std::time::Duration::from_secs(3),
            "{took:?}"
        );
        drop(gate_tx);
    }
}
