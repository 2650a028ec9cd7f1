//! The simulator's loop.
//!
//! Three helper threads turn blocking I/O into one stream of [`Input`]s: link bytes, console lines,
//! and a writer that drains outgoing frames. The loop itself is single-threaded: it feeds bytes to the
//! decoder and messages to the controller, ticks the controller at least every 20 ms, and carries out
//! the controller's effects. After every received message the screen is saved to `screen.png`.
//!
//! Event lines on stderr (one per event, stable words, for people and tests):
//! `link PATH`, `rx KIND`, `tx KIND`, `dropped REASON`, `screen NAME`, `actuator on|off`, `button`,
//! `link cut`, `link back`.
//!
//! With a belt ([`Belt`]) the simulator is a conveyor controller: it turns time into encoder counts at
//! the belt's speed, gives the controller every count (as an encoder interrupt would, so a pack fires
//! at its exact count), and writes one JSON line per pack the gate handled to the gate log: its
//! target count, what happened and at which count, and the count at which its decision came (the
//! margin). A cut of the link (the agent hears nothing, the controller hears nothing) can be
//! scheduled.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use anyhow::Context;
use hallmark_link::{encode, Decoder, Message, MAX_WIRE_LEN};
use hallmark_ui::{Actuator, Config, Controller, Effects};

use crate::framebuffer::Framebuffer;
use crate::pty::Pty;

/// Where the link runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// On a new pseudo-terminal whose path is printed (`link PATH`); stdin takes console commands.
    Pty,
    /// On stdin/stdout; no console.
    Stdio,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub link: LinkMode,
    /// Where `screen.png` is written.
    pub out_dir: PathBuf,
    pub controller: Config,
    /// A conveyor: the belt under the simulated encoder (the controller's gate counts encoder pulses).
    pub belt: Option<Belt>,
}

/// A simulated belt and what to log about it.
#[derive(Debug, Clone)]
pub struct Belt {
    pub speed_mm_s: f64,
    pub counts_per_mm: f64,
    /// One JSON line per pack the gate handled.
    pub log: PathBuf,
    /// Cut the link from this long after start, for this long (milliseconds).
    pub cut: Option<(u64, u64)>,
}

impl Belt {
    /// Encoder counts at `ms` after start.
    fn count_at(&self, ms: u64) -> u64 {
        (ms as f64 * self.speed_mm_s * self.counts_per_mm / 1000.0) as u64
    }

    /// The first millisecond at which the belt has reached `count`.
    fn time_of(&self, count: u64) -> u64 {
        let per_ms = self.speed_mm_s * self.counts_per_mm / 1000.0;
        if per_ms <= 0.0 {
            return u64::MAX;
        }
        (count as f64 / per_ms).ceil() as u64
    }

    fn cut_at(&self, ms: u64) -> bool {
        self.cut
            .is_some_and(|(from, len)| ms >= from && ms < from + len)
    }
}

/// What the gate log knows of a pack before its report: its target, and when its decision came.
#[derive(Debug, Clone, Copy, Default)]
struct Expected {
    arrives_at: u64,
    entered_at: u64,
    decided_at: Option<u64>,
    reject: Option<bool>,
}

enum Input {
    Bytes(Vec<u8>),
    LinkClosed(String),
    Console(String),
}

/// Longest the loop waits before ticking the controller.
const TICK: Duration = Duration::from_millis(20);

fn event(line: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// Runs the simulator until `quit` on the console or, in stdio mode, until the link closes.
pub fn run(opts: SimOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("create output folder {}", opts.out_dir.display()))?;
    let png = opts.out_dir.join("screen.png");
    let (inputs, rx) = mpsc::channel::<Input>();

    // Keep the pty (and its slave handle) alive for the whole run.
    let _pty;
    let (reader, writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match opts.link {
        LinkMode::Pty => {
            let pty = Pty::open()?;
            event(format_args!("link {}", pty.path.display()));
            let r = pty.master.try_clone().context("clone pty master")?;
            let w = pty.master.try_clone().context("clone pty master")?;
            _pty = Some(pty);
            let console = inputs.clone();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if console
                        .send(Input::Console(line.trim().to_string()))
                        .is_err()
                    {
                        break;
                    }
                }
            });
            (Box::new(r), Box::new(w))
        }
        LinkMode::Stdio => {
            _pty = None;
            (Box::new(std::io::stdin()), Box::new(std::io::stdout()))
        }
    };
    spawn_reader(reader, inputs);
    let outgoing = spawn_writer(writer);

    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let mut fb = Framebuffer::new();
    let (mut ctrl, fx) = Controller::new(opts.controller, env!("CARGO_PKG_VERSION"), now());
    let mut out = Outputs {
        fb: &mut fb,
        png: &png,
        outgoing: &outgoing,
        cut: false,
    };
    out.apply(&ctrl, fx)?;
    let mut decoder = Decoder::new();
    let mut gate_log = match &opts.belt {
        Some(b) => Some(std::io::BufWriter::new(
            std::fs::File::create(&b.log).with_context(|| format!("create {}", b.log.display()))?,
        )),
        None => None,
    };
    let mut expected: std::collections::HashMap<u32, Expected> = Default::default();
    let mut counted = 0u64;
    let mut was_cut = false;
    let mut was_uninspected = false;

    loop {
        let mut wake = ctrl.next_deadline();
        if let (Some(belt), Some(next)) = (&opts.belt, ctrl.gate().next_arrival()) {
            wake = wake.min(belt.time_of(next));
        }
        let wait = Duration::from_millis(wake.saturating_sub(now())).min(TICK);
        let received = rx.recv_timeout(wait);
        // The belt moves whatever the link does: every count goes to the controller.
        if let Some(belt) = &opts.belt {
            let t = now();
            let cut = belt.cut_at(t);
            if cut != was_cut {
                event(format_args!("link {}", if cut { "cut" } else { "back" }));
                was_cut = cut;
            }
            out.cut = cut;
            let to = belt.count_at(t);
            while counted < to {
                counted += 1;
                let fx = ctrl.on_count(t, counted);
                log_reports(gate_log.as_mut(), &fx, &mut expected)?;
                out.apply(&ctrl, fx)?;
                log_coverage(gate_log.as_mut(), &ctrl, counted, &mut was_uninspected)?;
            }
        }
        match received {
            Ok(Input::Bytes(_)) if out.cut => {}
            Ok(Input::Bytes(bytes)) => {
                for r in decoder.feed(&bytes) {
                    match r {
                        Ok(msg) => {
                            event(format_args!("rx {}", msg.kind()));
                            note_expected(&msg, counted, &mut expected);
                            let fx = ctrl.on_message(now(), msg);
                            log_reports(gate_log.as_mut(), &fx, &mut expected)?;
                            log_coverage(gate_log.as_mut(), &ctrl, counted, &mut was_uninspected)?;
                            out.apply(&ctrl, fx)?;
                            out.fb.save_png(out.png)?;
                        }
                        Err(e) => event(format_args!("dropped {e}")),
                    }
                }
            }
            Ok(Input::Console(cmd)) => match cmd.as_str() {
                "press" => {
                    event(format_args!("button"));
                    let fx = ctrl.on_button(now());
                    out.apply(&ctrl, fx)?;
                }
                "quit" => return Ok(()),
                "" => {}
                other => event(format_args!("unknown command {other:?} (press, quit)")),
            },
            Ok(Input::LinkClosed(why)) => {
                event(format_args!("link closed: {why}"));
                if opts.link == LinkMode::Stdio {
                    return Ok(());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        let fx = ctrl.on_tick(now());
        log_reports(gate_log.as_mut(), &fx, &mut expected)?;
        out.apply(&ctrl, fx)?;
        if let Some(log) = gate_log.as_mut() {
            log.flush()?;
        }
    }
}

/// When the belt at the gate runs past what the agent inspected (the gate diverts everything) and
/// when inspection catches up: an event and a gate log line `{"uninspected_from": count}` /
/// `{"inspected_again": count}`.
fn log_coverage(
    log: Option<&mut std::io::BufWriter<std::fs::File>>,
    ctrl: &Controller,
    count: u64,
    was: &mut bool,
) -> anyhow::Result<()> {
    let now = ctrl.gate().uninspected();
    if now == *was {
        return Ok(());
    }
    *was = now;
    let key = if now {
        "uninspected_from"
    } else {
        "inspected_again"
    };
    event(format_args!("gate {key} {count}"));
    if let Some(log) = log {
        writeln!(log, "{}", serde_json::json!({ key: count }))?;
    }
    Ok(())
}

/// Remembers a pack's target and when its decision came, at belt count `count`.
fn note_expected(
    msg: &Message,
    count: u64,
    expected: &mut std::collections::HashMap<u32, Expected>,
) {
    match msg {
        Message::GateEntry(e) => {
            let x = expected.entry(e.item_id).or_insert(Expected {
                entered_at: count,
                ..Expected::default()
            });
            x.arrives_at = e.arrives_at;
        }
        Message::GateDecision(d) => {
            let x = expected.entry(d.item_id).or_default();
            x.decided_at.get_or_insert(count);
            x.reject = Some(d.reject);
        }
        _ => {}
    }
}

/// One JSON line per gate report: `{"item", "outcome", "count", "target", "entered_at",
/// "decided_at", "margin"}` (margin: counts between the decision and the target; absent when late).
fn log_reports(
    log: Option<&mut std::io::BufWriter<std::fs::File>>,
    fx: &Effects,
    expected: &mut std::collections::HashMap<u32, Expected>,
) -> anyhow::Result<()> {
    let Some(log) = log else {
        return Ok(());
    };
    for m in &fx.send {
        if let Message::GateReport(r) = m {
            let x = expected.get(&r.item_id).copied().unwrap_or_default();
            let margin = x
                .decided_at
                .filter(|&d| d <= x.arrives_at)
                .map(|d| x.arrives_at - d);
            let line = serde_json::json!({
                "item": r.item_id,
                "outcome": format!("{:?}", r.outcome),
                "count": r.count,
                "target": x.arrives_at,
                "entered_at": x.entered_at,
                "decided_at": x.decided_at,
                "reject": x.reject,
                "margin": margin,
            });
            writeln!(log, "{line}")?;
        }
    }
    Ok(())
}

struct Outputs<'a> {
    fb: &'a mut Framebuffer,
    png: &'a std::path::Path,
    outgoing: &'a SyncSender<Vec<u8>>,
    /// The link is cut: nothing goes out.
    cut: bool,
}

impl Outputs<'_> {
    /// Carries out one set of controller effects.
    fn apply(&mut self, ctrl: &Controller, fx: Effects) -> anyhow::Result<()> {
        if fx.redraw {
            self.fb.draw(ctrl.screen());
            self.fb.save_png(self.png)?;
            event(format_args!("screen {}", ctrl.screen().name()));
        }
        match fx.actuator {
            Some(Actuator::On) => event(format_args!("actuator on")),
            Some(Actuator::Off) => event(format_args!("actuator off")),
            None => {}
        }
        if !self.cut {
            for msg in &fx.send {
                self.send(msg);
            }
        }
        Ok(())
    }

    fn send(&self, msg: &Message) {
        let mut buf = [0u8; MAX_WIRE_LEN];
        match encode(msg, &mut buf) {
            Ok(n) => {
                // Design: never block the controller on a slow or absent reader; drop instead.
                if self.outgoing.try_send(buf[..n].to_vec()).is_ok() {
                    event(format_args!("tx {}", msg.kind()));
                } else {
                    event(format_args!("tx-dropped {}", msg.kind()));
                }
            }
            Err(e) => event(format_args!("tx-error {}: {e}", msg.kind())),
        }
    }
}

fn spawn_reader(mut reader: Box<dyn Read + Send>, inputs: mpsc::Sender<Input>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            let msg = match reader.read(&mut buf) {
                Ok(0) => Input::LinkClosed("end of input".into()),
                Ok(n) => Input::Bytes(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Input::LinkClosed(e.to_string()),
            };
            let closed = matches!(msg, Input::LinkClosed(_));
            if inputs.send(msg).is_err() || closed {
                break;
            }
        }
    });
}

fn spawn_writer(mut writer: Box<dyn Write + Send>) -> SyncSender<Vec<u8>> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        for frame in rx {
            if writer
                .write_all(&frame)
                .and_then(|_| writer.flush())
                .is_err()
            {
                break;
            }
        }
    });
    tx
}
