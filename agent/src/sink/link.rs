//! The kiosk/conveyor controller over the serial link (`hallmark-host-link`): verdicts to its screen,
//! rejects to its actuator, status; its button back to the daemon as a scan trigger.
//!
//! One thread owns the link client. It forwards what the daemon sends, and after every (re)connect or
//! controller hello it re-sends the current status and the last verdict: the client discards what was
//! queued while the port was closed, and a controller that rebooted has a blank screen. A reject is
//! never re-sent (the item has passed the gate by then). It also watches the controller's heartbeats,
//! since an unpowered controller behind a plugged-in USB adapter never closes the port.
//!
//! On a conveyor with a reject gate, the controller's belt counts feed the [`BeltClock`] the judge
//! reads, its gate reports are counted, and every (re)connect, or word after a silence (a cut line
//! leaves the port open), bumps [`LinkState::generation`] so the judge sends the gate's pending packs
//! again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hallmark_core::gate::{BeltClock, GateCommand, OnLate};
use hallmark_host_link::link::{
    self, GateDecision, GateEntry, GateOutcome, Inspected, Message, Reject, ShowVerdict, Status,
};
use hallmark_host_link::{Event, LinkClient, Options};

use crate::observe::Observer;

/// A controller that sent nothing for this long is silent (its heartbeat is every second).
pub const SILENT_AFTER: Duration = Duration::from_secs(3);

/// A controller that reports belt counts (every few tens of milliseconds) and went quiet this long
/// may have missed what was sent meanwhile: the gate's packs are sent again when it speaks.
const GAP: Duration = Duration::from_millis(250);

/// Time the client gets to write what is queued before the link closes.
const FLUSH_WAIT: Duration = Duration::from_millis(150);

/// What others can read about the link.
#[derive(Debug, Default)]
pub struct LinkState {
    connected: AtomicBool,
    last_heard: Mutex<Option<Instant>>,
    pub triggers: AtomicU64,
    pub rejects: AtomicU64,
    /// The belt's counts as the controller reports them (conveyor).
    pub belt: Mutex<BeltClock>,
    /// Bumped whenever the controller may have lost what was sent (a reconnect, a hello, a word
    /// after a silence while it reported the belt).
    pub generation: AtomicU64,
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

    /// A copy of the belt clock now.
    pub fn belt(&self) -> BeltClock {
        self.belt.lock().map(|b| b.clone()).unwrap_or_default()
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
    pub fn spawn(
        port: PathBuf,
        baud: u32,
        triggers: Sender<()>,
        observer: Arc<Observer>,
    ) -> std::io::Result<Link> {
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
                            shared.generation.fetch_add(1, Ordering::Relaxed);
                            true
                        }
                        Event::Disconnected { reason } => {
                            shared.connected.store(false, Ordering::Relaxed);
                            tracing::warn!(%reason, "controller link lost");
                            false
                        }
                        Event::Message(m) => {
                            let now = Instant::now();
                            if let Ok(mut t) = shared.last_heard.lock() {
                                let belt_on = shared.belt.lock().is_ok_and(|b| b.latest().is_some());
                                if belt_on && t.is_some_and(|t| now.duration_since(t) > GAP) {
                                    tracing::info!("controller heard again after a silence");
                                    shared.generation.fetch_add(1, Ordering::Relaxed);
                                }
                                *t = Some(now);
                            }
                            match m {
                                Message::BeltCount(b) => {
                                    if let Ok(mut clock) = shared.belt.lock() {
                                        clock.observe(now, b.count);
                                    }
                                    false
                                }
                                Message::GateReport(r) => {
                                    observer.gate_report(outcome_name(r.outcome));
                                    if matches!(r.outcome, GateOutcome::LateRejected | GateOutcome::LatePassed | GateOutcome::Refused) {
                                        tracing::warn!(item = r.item_id, outcome = ?r.outcome, count = r.count, "the gate handled a pack without its verdict");
                                    } else {
                                        tracing::debug!(item = r.item_id, outcome = ?r.outcome, count = r.count, "gate report");
                                    }
                                    false
                                }
                                Message::Trigger(t) => {
                                    tracing::info!(seq = t.seq, "scan button pressed");
                                    shared.triggers.fetch_add(1, Ordering::Relaxed);
                                    let _ = triggers.send(());
                                    false
                                }
                                Message::Hello(_) => {
                                    shared.generation.fetch_add(1, Ordering::Relaxed);
                                    true
                                }
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

    /// Tells the reject gate of a pack to expect, or of its decision.
    pub fn gate(&self, command: GateCommand, pulse_ms: u16, on_late: OnLate) {
        tracing::debug!(?command, "gate");
        self.send(match command {
            GateCommand::Expect { item, arrives_at } => Message::GateEntry(GateEntry {
                item_id: item,
                arrives_at,
                pulse_ms,
                on_late: match on_late {
                    OnLate::Reject => link::OnLate::Reject,
                    OnLate::Pass => link::OnLate::Pass,
                },
            }),
            GateCommand::Decide { item, reject } => Message::GateDecision(GateDecision {
                item_id: item,
                reject,
            }),
        });
    }

    /// Tells the reject gate the belt reaching it is inspected up to count `through`.
    pub fn inspected(&self, through: u64) {
        tracing::trace!(through, "gate inspected");
        self.send(Message::Inspected(Inspected { through }));
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

/// A gate outcome's name in metrics and logs.
fn outcome_name(o: GateOutcome) -> &'static str {
    match o {
        GateOutcome::Rejected => "rejected",
        GateOutcome::Passed => "passed",
        GateOutcome::LateRejected => "late_rejected",
        GateOutcome::LatePassed => "late_passed",
        GateOutcome::Refused => "refused",
        GateOutcome::Unknown => "unknown",
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shutdown();
    }
}
