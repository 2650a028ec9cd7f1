//! The kiosk/conveyor controller over the serial link (`hallmark-host-link`): verdicts to its screen,
//! rejects to its actuator, status; its button back to the daemon as a scan trigger.
//!
//! One thread owns the link client. It forwards what the daemon sends, and after every (re)connect or
//! controller hello it re-sends the current status and the last verdict: the client discards what was
//! queued while the port was closed, and a controller that rebooted has a blank screen. A reject is
//! never re-sent (the item has passed the gate by then). It also watches the controller's heartbeats,
//! since an unpowered controller behind a plugged-in USB adapter never closes the port.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hallmark_host_link::link::{Message, Reject, ShowVerdict, Status};
use hallmark_host_link::{Event, LinkClient, Options};

/// A controller that sent nothing for this long is silent (its heartbeat is every second).
pub const SILENT_AFTER: Duration = Duration::from_secs(3);

/// Time the client gets to write what is queued before the link closes.
const FLUSH_WAIT: Duration = Duration::from_millis(150);

/// What others can read about the link.
#[derive(Debug, Default)]
pub struct LinkState {
    connected: AtomicBool,
    last_heard: Mutex<Option<Instant>>,
    pub triggers: AtomicU64,
    pub rejects: AtomicU64,
}

impl LinkState {
    /// Connected and heard from recently.
    pub fn healthy(&self) -> bool {
        let heard = self
            .last_heard
            .lock()
            .map(|t| t.is_some_and(|t| t.elapsed() < SILENT_AFTER))
            .unwrap_or(false);
        self.connected.load(Ordering::Relaxed) && heard
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// The daemon's handle to the controller.
pub struct Link {
    tx: Option<Sender<Message>>,
    pub state: Arc<LinkState>,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts the link thread on `port` (it need not exist yet). Each button press sends `()` on
    /// `triggers`.
    pub fn spawn(port: PathBuf, baud: u32, triggers: Sender<()>) -> std::io::Result<Link> {
        let (tx, rx) = channel::<Message>();
        let state = Arc::new(LinkState::default());
        let shared = state.clone();
        let thread = std::thread::Builder::new().name("hallmark-link-pump".into()).spawn(move || {
            let client = LinkClient::spawn(port, Options { baud, ..Options::default() });
            let mut status = Message::Status(Status::Idle);
            let mut shown: Option<Message> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(10)) {
                    Ok(msg) => {
                        match &msg {
                            Message::Status(_) => status = msg.clone(),
                            Message::ShowVerdict(_) => shown = Some(msg.clone()),
                            Message::Reject(_) => {
                                shared.rejects.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                        if let Err(e) = client.send(msg) {
                            tracing::warn!(error = %e, "cannot queue a message for the controller");
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        // Design: the client writes its queue every read timeout (20 ms) and discards it
                        // when dropped; give it time to write the last verdict and reject.
                        std::thread::sleep(FLUSH_WAIT);
                        break;
                    }
                }
                while let Some(event) = client.try_recv() {
                    let resend = match event {
                        Event::Connected => {
                            shared.connected.store(true, Ordering::Relaxed);
                            true
                        }
                        Event::Disconnected { reason } => {
                            shared.connected.store(false, Ordering::Relaxed);
                            tracing::warn!(%reason, "controller link lost");
                            false
                        }
                        Event::Message(m) => {
                            if let Ok(mut t) = shared.last_heard.lock() {
                                *t = Some(Instant::now());
                            }
                            match m {
                                Message::Trigger(t) => {
                                    tracing::info!(seq = t.seq, "scan button pressed");
                                    shared.triggers.fetch_add(1, Ordering::Relaxed);
                                    let _ = triggers.send(());
                                    false
                                }
                                Message::Hello(_) => true,
                                _ => false,
                            }
                        }
                        Event::Dropped(e) => {
                            tracing::debug!(error = %e, "damaged frame from the controller");
                            false
                        }
                    };
                    if resend {
                        for m in std::iter::once(status.clone()).chain(shown.clone()) {
                            let _ = client.send(m);
                        }
                    }
                }
            }
        })?;
        Ok(Link {
            tx: Some(tx),
            state,
            thread: Some(thread),
        })
    }

    /// Shows a verdict on the screen.
    pub fn show(&self, v: ShowVerdict) {
        self.send(Message::ShowVerdict(v));
    }

    /// Pulses the reject actuator for `item_id`.
    pub fn reject(&self, item_id: u32, pulse_ms: u16) {
        self.send(Message::Reject(Reject { item_id, pulse_ms }));
    }

    pub fn status(&self, s: Status) {
        self.send(Message::Status(s));
    }

    fn send(&self, m: Message) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(m);
        }
    }

    /// Sends what is queued, closes the port and joins the thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shutdown();
    }
}
