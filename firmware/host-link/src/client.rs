//! [`LinkClient`]: the serial link to the controller as a handle with a send queue and an event stream.
//!
//! One thread owns the port. Each connection begins with the agent's hello; then the thread loops:
//! write queued messages, write a heartbeat when due, read with a short timeout and decode. Any I/O
//! error other than a timeout ends the connection ([`Event::Disconnected`]); the thread reopens the
//! path with exponential backoff until it succeeds or the client is dropped. The backoff starts over
//! only after a connection on which the controller spoke (see [`backoff`](crate::backoff)).
//!
//! Design: messages queued while no port is open are discarded, not delivered late — a reject pulse
//! for an item that passed the gate a minute ago must never fire on reconnect. Events go through a
//! bounded queue; if the caller stops reading, the newest events are dropped (and counted in the log)
//! rather than growing memory without bound.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hallmark_link::{
    encode, text_truncated, Decoder, FrameError, Heartbeat, Hello, Message, Role, MAX_WIRE_LEN,
    PROTOCOL_VERSION,
};
use serialport::SerialPort;

use crate::backoff::Backoff;
use crate::error::LinkError;
use crate::port;

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub baud: u32,
    pub heartbeat_every: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// The agent's software version, sent in the hello.
    pub software: String,
    /// Capacity of the event queue.
    pub event_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            baud: 115_200,
            heartbeat_every: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
            software: env!("CARGO_PKG_VERSION").to_string(),
            event_capacity: 256,
        }
    }
}

/// What happened on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The port is open and the hello has been sent.
    Connected,
    /// The port went away or failed; the client is trying to reopen it.
    Disconnected { reason: String },
    /// A message from the controller.
    Message(Message),
    /// A frame from the controller was damaged and skipped.
    Dropped(FrameError),
}

/// Handle to the link thread. Dropping it closes the port and stops the thread.
pub struct LinkClient {
    outgoing: Sender<Message>,
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LinkClient {
    /// Starts the link thread for the serial device at `path` (it need not exist yet).
    pub fn spawn(path: impl Into<PathBuf>, opts: Options) -> LinkClient {
        let path = path.into();
        let (outgoing, queue) = mpsc::channel();
        let (event_tx, events) = mpsc::sync_channel(opts.event_capacity.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            path,
            opts,
            queue,
            events: event_tx,
            stop: stop.clone(),
            dropped_events: 0,
        };
        let thread = std::thread::Builder::new()
            .name("hallmark-link".into())
            .spawn(move || worker.run())
            .ok();
        LinkClient {
            outgoing,
            events,
            stop,
            thread,
        }
    }

    /// Queues `msg` for the controller. Checked here, so a bad message fails at the caller.
    pub fn send(&self, msg: Message) -> Result<(), LinkError> {
        let mut scratch = [0u8; MAX_WIRE_LEN];
        encode(&msg, &mut scratch)?;
        self.outgoing.send(msg).map_err(|_| LinkError::Stopped)
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, LinkError> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(e),
            Err(RecvTimeoutError::Timeout) => Err(LinkError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(LinkError::Stopped),
        }
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }
}

impl Drop for LinkClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    path: PathBuf,
    opts: Options,
    queue: Receiver<Message>,
    events: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    dropped_events: u64,
}

impl Worker {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn emit(&mut self, e: Event) {
        match self.events.try_send(e) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped_events += 1;
                if self.dropped_events.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped_events,
                        "link events not read; dropping"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn run(mut self) {
        let mut backoff = Backoff::new(self.opts.reconnect_min, self.opts.reconnect_max);
        let mut logged_failure = false;
        while !self.stopped() {
            let mut heard = false;
            match port::open(&self.path, self.opts.baud) {
                Ok(mut port) => {
                    logged_failure = false;
                    tracing::info!(port = %self.path.display(), "link connected");
                    let (reason, session_heard) = self.session(&mut *port);
                    heard = session_heard;
                    drop(port);
                    if self.stopped() {
                        break;
                    }
                    tracing::warn!(port = %self.path.display(), %reason, "link lost; reconnecting");
                    self.emit(Event::Disconnected { reason });
                }
                Err(e) => {
                    if !logged_failure {
                        tracing::warn!(error = %e, "link port unavailable; retrying");
                        logged_failure = true;
                    }
                }
            }
            let discarded = self.queue.try_iter().count();
            if discarded > 0 {
                tracing::warn!(
                    discarded,
                    "messages queued while the link was down were discarded"
                );
            }
            self.sleep(backoff.after_attempt(heard));
        }
    }

    /// Sleeps in short steps so that dropping the client is prompt.
    fn sleep(&self, total: Duration) {
        let end = Instant::now() + total;
        while !self.stopped() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }

    /// One connection, until an I/O error or the stop flag. Returns why it ended, and whether the
    /// controller said anything valid during it.
    fn session(&mut self, port: &mut dyn SerialPort) -> (String, bool) {
        let mut heard = false;
        let reason = self.converse(port, &mut heard);
        (reason, heard)
    }

    fn converse(&mut self, port: &mut dyn SerialPort, heard: &mut bool) -> String {
        let hello = Message::Hello(Hello {
            role: Role::Agent,
            protocol: PROTOCOL_VERSION,
            software: text_truncated(&self.opts.software),
        });
        if let Err(e) = write_message(port, &hello) {
            return format!("writing hello: {e}");
        }
        self.emit(Event::Connected);
        let mut decoder = Decoder::new();
        let mut buf = [0u8; 256];
        let mut heartbeat_seq = 0u32;
        let mut next_heartbeat = Instant::now() + self.opts.heartbeat_every;
        while !self.stopped() {
            while let Ok(msg) = self.queue.try_recv() {
                if let Err(e) = write_message(port, &msg) {
                    return format!("writing {}: {e}", msg.kind());
                }
            }
            if Instant::now() >= next_heartbeat {
                heartbeat_seq = heartbeat_seq.wrapping_add(1);
                next_heartbeat = Instant::now() + self.opts.heartbeat_every;
                if let Err(e) =
                    write_message(port, &Message::Heartbeat(Heartbeat { seq: heartbeat_seq }))
                {
                    return format!("writing heartbeat: {e}");
                }
            }
            match port.read(&mut buf) {
                Ok(0) => return "port closed".to_string(),
                Ok(n) => {
                    for r in decoder.feed(&buf[..n]).collect::<Vec<_>>() {
                        match r {
                            Ok(m) => {
                                *heard = true;
                                self.emit(Event::Message(m));
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "damaged frame from controller skipped");
                                self.emit(Event::Dropped(e));
                            }
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return format!("reading: {e}"),
            }
        }
        "stopped".to_string()
    }
}

fn write_message(port: &mut dyn SerialPort, msg: &Message) -> std::io::Result<()> {
    let mut out = [0u8; MAX_WIRE_LEN];
    let n = encode(msg, &mut out).map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    port.write_all(&out[..n])?;
    port.flush()
}
