//! The judge stage, on its own thread: everything after inference. Each inferred frame goes through
//! the frame step (`hallmark_core::step`: items, barcodes, verdicts), the kiosk or conveyor mode, serial
//! numbering and the SGTIN memory, and its decided items become verdict events, committed to the spool
//! before the screen, the reject gate, stdout and the evidence sink act on them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hallmark_detect::Detection;
use hallmark_host_link::link::{ShowVerdict, Status};

use super::serials::SerialLedger;
use super::{DaemonError, Stats};
use crate::bundle::Manifest;
use crate::capture::OwnedFrame;
use crate::config::{Config, Mode};
use crate::delivery::Delivery;
use crate::observe::{Observer, Stage};
use crate::sink::{evidence, link::Link, stdout, Queue};
use hallmark_core::gate::GatePlan;
use hallmark_core::modes::decided::Decided;
use hallmark_core::modes::tracks::Judging;
use hallmark_core::modes::{Conveyor, Kiosk, Modes, IDLE_TICK};
use hallmark_core::report::{self, Origin};
use hallmark_core::step::{judge_frame, CodeReader, NoCodes};
use hallmark_core::verdict::{self, VerdictKind};
use hallmark_proto::VerdictEvent;

/// A frame and what the detector found in it.
pub(super) struct Inferred {
    /// The model that judged it (a swap may come between two frames).
    pub manifest: Arc<Manifest>,
    pub frame: Arc<OwnedFrame>,
    pub detections: Vec<Detection>,
}

/// The judge stage: everything after inference.
pub(super) struct Judge {
    manifest: Arc<Manifest>,
    origin: Origin,
    stats: Arc<Stats>,
    modes: Modes,
    serials: SerialLedger,
    /// Frames come from a camera: only then are genuine packs' SGTINs remembered.
    live: bool,
    stdout: Option<Queue<Arc<VerdictEvent>>>,
    /// The evidence writer, and the room its file system has left beyond the spool's reserve.
    evidence: Option<(Queue<evidence::Job>, evidence::Room)>,
    link: Option<Link>,
    mode: Mode,
    reject_pulse_ms: u16,
    reject_inconclusive: bool,
    /// Conveyor with a reject gate (and a controller): each pack's arrival at the gate.
    gate: Option<GatePlan>,
    /// The link's generation the gate's packs were last sent in.
    gate_generation: u64,
    /// The generation changed at this instant: the packs ahead go again once a count newer than it
    /// arrives (before it, the clock may still hold the count from before the outage).
    resend_after: Option<Instant>,
    /// Said once: the controller reports no belt count, so rejects pulse at their verdict.
    warned_no_counts: bool,
    /// The furthest belt count the judged frames vouch for (see `GatePlan::inspected`).
    inspected_through: u64,
    inspected_epoch: u64,
    /// `conveyor.added_latency_ms` (a test hook): decided items held this long before they go out.
    added_latency: std::time::Duration,
    held: std::collections::VecDeque<(Instant, Vec<Decided>)>,
    next_item: u32,
    frame_no: u64,
    /// The barcode reader, unless `verdict.barcodes` is off.
    barcodes: Option<crate::codes::Barcodes>,
    delivery: Option<Delivery>,
    observer: Arc<Observer>,
    /// Bumped every loop (≤ 100 ms apart): systemd's watchdog is fed while it moves.
    heartbeat: Arc<AtomicU64>,
    screen: Receiver<Status>,
    /// Keeps the trigger channel open for the link and the command topic.
    _triggers: std::sync::mpsc::Sender<()>,
}

/// The judge's outputs that come from outside (delivery and observability).
pub(super) struct Sinks {
    pub delivery: Option<Delivery>,
    pub observer: Arc<Observer>,
    pub heartbeat: Arc<AtomicU64>,
    /// Screen statuses from the updater (model updating), shown on the controller.
    pub screen: Receiver<Status>,
}

impl Judge {
    pub fn new(
        config: &Config,
        manifest: Arc<Manifest>,
        origin: Origin,
        stats: Arc<Stats>,
        triggers: std::sync::mpsc::Sender<()>,
        sinks: Sinks,
    ) -> Result<Judge, DaemonError> {
        let state_dir = &config.agent.state_dir;
        let io = |source: std::io::Error| DaemonError::StateDir {
            path: state_dir.display().to_string(),
            source,
        };
        let modes = match config.agent.mode {
            Mode::Kiosk => Modes::Kiosk(Kiosk::new(config.kiosk.clone())),
            Mode::Conveyor => Modes::Conveyor(Conveyor::new(&config.conveyor)),
        };
        let stdout = if config.output.stdout {
            Some(stdout::spawn(4096).map_err(DaemonError::Thread)?)
        } else {
            None
        };
        let evidence = if config.evidence.enabled {
            let dir = state_dir.join("evidence");
            let store =
                evidence::Store::open(&dir, config.evidence.max_files, config.evidence.max_mib)
                    .map_err(io)?;
            let room = evidence::Room::new(&dir, config.evidence.min_free_bytes);
            let queue = evidence::spawn(store, room.clone(), 16, sinks.observer.clone())
                .map_err(DaemonError::Thread)?;
            Some((queue, room))
        } else {
            None
        };
        let link = match &config.link.port {
            Some(port) => Some(
                Link::spawn(
                    port.clone(),
                    config.link.baud,
                    triggers.clone(),
                    sinks.observer.clone(),
                )
                .map_err(DaemonError::Thread)?,
            ),
            None => None,
        };
        if config.agent.mode == Mode::Kiosk
            && config.kiosk.trigger == crate::config::Trigger::Button
        {
            spawn_terminal_trigger(triggers.clone());
        }
        let gate = match (&config.conveyor.gate, config.agent.mode, &link) {
            (Some(g), Mode::Conveyor, Some(_)) => Some(GatePlan::new(g.clone())),
            (Some(_), Mode::Conveyor, None) => {
                tracing::warn!(
                    "conveyor.gate_distance_mm is set but link.port is not: no controller, no gate"
                );
                None
            }
            _ => None,
        };
        let serials = SerialLedger::open(
            &state_dir.join("serials.log"),
            config.verdict.serial_memory,
            config.verdict.serial_rescan_window,
        );
        Ok(Judge {
            manifest,
            origin,
            stats,
            modes,
            serials,
            live: config.source.kind == crate::config::SourceKind::Camera,
            stdout,
            evidence,
            link,
            mode: config.agent.mode,
            reject_pulse_ms: config.conveyor.reject_pulse_ms,
            reject_inconclusive: config.conveyor.reject_inconclusive,
            gate,
            gate_generation: 0,
            resend_after: None,
            warned_no_counts: false,
            inspected_through: 0,
            inspected_epoch: 0,
            added_latency: config.conveyor.added_latency,
            held: std::collections::VecDeque::new(),
            next_item: 1,
            frame_no: 0,
            barcodes: config
                .verdict
                .barcodes
                .then(crate::codes::Barcodes::default),
            delivery: sinks.delivery,
            observer: sinks.observer,
            heartbeat: sinks.heartbeat,
            screen: sinks.screen,
            _triggers: triggers,
        })
    }

    /// Runs until inference ends; returns how many events the sinks dropped.
    pub fn run(mut self, inferred: Receiver<Inferred>, triggers: Receiver<()>) -> u64 {
        if let Some(link) = &self.link {
            link.status(Status::Idle);
        }
        loop {
            self.heartbeat.fetch_add(1, Ordering::Relaxed);
            while let Ok(status) = self.screen.try_recv() {
                if let Some(link) = &self.link {
                    link.status(status);
                }
            }
            if let Some(link) = &self.link {
                self.observer.link_state(if link.state.connected() {
                    "connected"
                } else {
                    "disconnected"
                });
            }
            while triggers.try_recv().is_ok() {
                self.modes.trigger();
            }
            self.release_held(false);
            self.gate_tick();
            let wait = match self.held.front() {
                Some((due, _)) => due.saturating_duration_since(Instant::now()).min(IDLE_TICK),
                None => IDLE_TICK,
            };
            match inferred.recv_timeout(wait) {
                Ok(item) => {
                    let started = Instant::now();
                    self.on_frame(item);
                    self.observer.stage(Stage::Judge, started.elapsed());
                }
                Err(RecvTimeoutError::Timeout) => {
                    let decided = judging(&self.manifest, &self.serials, |j| {
                        self.modes.on_idle(j, Instant::now())
                    });
                    self.decided(decided);
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let decided = judging(&self.manifest, &self.serials, |j| self.modes.finish(j));
        self.decided(decided);
        self.release_held(true);
        let mut drops = 0;
        if let Some(q) = self.stdout.take() {
            drops += q.dropped();
            q.close();
        }
        if let Some((q, _)) = self.evidence.take() {
            drops += q.dropped();
            q.close();
        }
        if let Some(link) = self.link.take() {
            link.close();
        }
        if let Some(delivery) = self.delivery.take() {
            delivery.close();
        }
        drops
    }

    fn on_frame(
        &mut self,
        Inferred {
            frame,
            detections,
            manifest,
        }: Inferred,
    ) {
        if !Arc::ptr_eq(&manifest, &self.manifest) {
            if manifest.brand != self.manifest.brand {
                // Design: the items seen so far are this brand's: decided by its model's rules, before
                // the next brand's frames start items of their own.
                let decided = judging(&self.manifest, &self.serials, |j| self.modes.finish(j));
                self.decided(decided);
            }
            self.manifest = manifest;
        }
        self.frame_no += 1;
        let codes: &mut dyn CodeReader = match &mut self.barcodes {
            Some(reader) => reader,
            None => &mut NoCodes,
        };
        let step = judging(&self.manifest, &self.serials, |j| {
            let judged = judge_frame(frame.view(), &detections, codes, &self.manifest, &j.ctx);
            self.modes.on_frame(
                self.frame_no,
                &frame,
                &judged,
                &detections,
                j,
                Instant::now(),
            )
        });
        if step.scan_started {
            if let Some(link) = &self.link {
                link.status(Status::Scanning);
            }
        }
        let mut pending_inspected = None;
        if let Some(plan) = &mut self.gate {
            let size = (frame.width, frame.height);
            plan.observe(frame.captured, size, &step.tracked, &mut self.next_item);
            if let Some(link) = &self.link {
                // Design: after the frame's packs are placed, so a pack is announced before the
                // belt it is on counts as inspected.
                let clock = link.state.belt();
                if clock.epoch() != self.inspected_epoch {
                    // The encoder reset: the old counts mean nothing.
                    self.inspected_epoch = clock.epoch();
                    self.inspected_through = 0;
                }
                if let Some(through) = plan.inspected(frame.captured, size, &clock) {
                    self.inspected_through = self.inspected_through.max(through);
                    pending_inspected = Some(self.inspected_through);
                }
            }
            self.gate_tick();
            if let (Some(through), Some(link)) = (pending_inspected, &self.link) {
                link.inspected(through);
            }
        }
        self.decided(step.decided);
    }

    /// Decided items go out now, or after `conveyor.added_latency_ms` (a test hook).
    fn decided(&mut self, decided: Vec<Decided>) {
        if decided.is_empty() {
            return;
        }
        if self.added_latency.is_zero() {
            self.emit(decided);
        } else {
            self.held
                .push_back((Instant::now() + self.added_latency, decided));
        }
    }

    /// Emits the held items that are due (all of them at the end).
    fn release_held(&mut self, all: bool) {
        while let Some((due, _)) = self.held.front() {
            let wait = due.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                if !all {
                    break;
                }
                // At the end each goes when due (a test hook: bounded by added_latency).
                std::thread::sleep(wait.min(self.added_latency));
            }
            if let Some((_, decided)) = self.held.pop_front() {
                self.emit(decided);
            }
        }
    }

    /// Tells the controller the gate's new and moved targets; all pending ones again after it may
    /// have lost them (a reconnect, a silence).
    fn gate_tick(&mut self) {
        let (Some(plan), Some(link)) = (&mut self.gate, &self.link) else {
            return;
        };
        let clock = link.state.belt();
        let generation = link.state.generation.load(Ordering::Relaxed);
        let mut commands = Vec::new();
        if generation != self.gate_generation {
            self.gate_generation = generation;
            self.resend_after = Some(Instant::now());
        }
        // Only against a count reported after the outage: the one before it is stale.
        let fresh = |since: Instant| clock.latest().is_some_and(|(at, _)| at > since);
        if self.resend_after.is_some_and(fresh) {
            self.resend_after = None;
            commands = plan.resend(&clock);
            if !commands.is_empty() {
                tracing::info!(
                    commands = commands.len(),
                    "gate: packs ahead of the gate sent again"
                );
            }
        }
        commands.extend(plan.refresh(&clock));
        let cfg = plan.config();
        for c in commands {
            link.gate(c, cfg.pulse_ms, cfg.on_late);
        }
    }

    fn emit(&mut self, decided: Vec<Decided>) {
        if decided.is_empty() {
            return;
        }
        let now = unix_now();
        for d in &decided {
            for s in d.remembered(self.live) {
                self.serials.record(&s, now);
            }
        }
        let mut out = Vec::with_capacity(decided.len());
        let clock = self.link.as_ref().map(|l| l.state.belt());
        for d in decided {
            let kind = d.decision.verdict;
            let reject = self.mode == Mode::Conveyor
                && (kind == VerdictKind::Counterfeit
                    || (self.reject_inconclusive && kind == VerdictKind::Inconclusive));
            // A pack the gate expects keeps the item id it was announced with.
            let gated = match (&mut self.gate, &clock) {
                // A controller that has never reported the belt's count (its gate is not set up, or
                // no encoder): no pack can be placed, so rejects pulse at their verdict, as without
                // a gate.
                (Some(_), Some(clock)) if clock.latest().is_none() => {
                    if !self.warned_no_counts {
                        self.warned_no_counts = true;
                        tracing::warn!("conveyor.gate_distance_mm is set but the controller reports no belt count: rejects pulse at their verdict (set up the controller's gate)");
                    }
                    None
                }
                (Some(plan), Some(clock)) => plan.decide(d.track, reject, clock, Instant::now()),
                _ => None,
            };
            let item_id = match &gated {
                Some(g) => g.item,
                None => {
                    let id = self.next_item;
                    self.next_item = self.next_item.wrapping_add(1);
                    id
                }
            };
            let latency = d
                .last
                .as_ref()
                .map_or(0.0, |l| l.frame.captured.elapsed().as_secs_f64() * 1e3);
            let id = uuid::Uuid::now_v7().to_string();
            let ts = hallmark_core::clock::rfc3339_utc(SystemTime::now());
            let mut event = report::verdict_event(
                (id.clone(), ts.clone()),
                item_id,
                &self.origin,
                &self.manifest,
                &d,
                latency,
            );
            if let Some(g) = &gated {
                event.gate = g.timing;
                if let Some(t) = g.timing {
                    self.observer.gate_decided(t.margin_mm, t.late);
                    if t.late {
                        tracing::warn!(item = item_id, margin_mm = t.margin_mm, "decision came after the pack reached the gate: the gate handled it by conveyor.on_late");
                    }
                }
            }
            let count = match kind {
                VerdictKind::Genuine => &self.stats.genuine,
                VerdictKind::Counterfeit => &self.stats.counterfeit,
                VerdictKind::Inconclusive => &self.stats.inconclusive,
                VerdictKind::NoProduct => &self.stats.no_product,
            };
            count.fetch_add(1, Ordering::Relaxed);
            self.stats.verdicts.fetch_add(1, Ordering::Relaxed);
            if matches!(kind, VerdictKind::Counterfeit | VerdictKind::Inconclusive)
                && d.last.is_some()
            {
                if let Some((q, room)) = &self.evidence {
                    let name = format!(
                        "{}-{}-{}.jpg",
                        ts.replace([':', '.'], ""),
                        kind.as_str(),
                        &id[id.len() - 12..]
                    );
                    if !room.ok() {
                        self.observer.evidence_skipped("low_disk");
                    } else if q.offer(evidence::Job {
                        name: name.clone(),
                        decided: d.clone(),
                        manifest: self.manifest.clone(),
                    }) {
                        event.evidence = Some(name);
                    }
                }
            }
            self.observer.verdict(kind.as_str());
            self.observer.stage(
                Stage::Verdict,
                std::time::Duration::from_secs_f64(latency / 1e3),
            );
            out.push((item_id, kind, reject, gated.map(|g| g.command), d, event));
        }
        // Durable first: nothing acts on a verdict the spool does not hold. While it cannot write (a
        // full disk), the kiosk and the reject gate still act, and the verdicts wait in memory to be
        // spooled, counted (`hallmark_verdicts_unspooled`), with the health check failing.
        if let Some(delivery) = &self.delivery {
            let payloads: Vec<Vec<u8>> = out.iter().map(|(.., event)| event.to_json()).collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            delivery.submit(&refs);
        }
        let has_counts = clock.as_ref().is_some_and(|c| c.latest().is_some());
        for (item_id, kind, reject, gate_command, d, event) in out {
            if let Some(link) = &self.link {
                // Design: the reject goes out before the screen update, so it never waits behind one.
                // A pack the gate expects is decided there (fired when it arrives); any other pulses
                // now, as without a gate.
                match (gate_command, &self.gate) {
                    (Some(Some(c)), Some(plan)) => {
                        let cfg = plan.config();
                        link.gate(c, cfg.pulse_ms, cfg.on_late);
                    }
                    // Expected by the plan but not placed on the belt yet: sent after its target.
                    (Some(_), _) => {}
                    // With a gate, a pack it does not know (never announced, or forgotten) is not
                    // pulsed now: the actuator would fire at whatever is at the gate.
                    (None, Some(_)) if reject && has_counts => tracing::warn!(
                        item = item_id,
                        "a reject for a pack the gate does not know: not fired"
                    ),
                    (None, _) if reject => link.reject(item_id, self.reject_pulse_ms),
                    (None, _) => {}
                }
                if d.primary || self.mode == Mode::Conveyor {
                    link.show(ShowVerdict::new(
                        item_id,
                        kind,
                        &self.manifest.brand,
                        &d.decision.product,
                        d.decision.confidence,
                    ));
                }
            }
            if let Some(q) = &self.stdout {
                q.offer(Arc::new(event));
            }
        }
    }
}

/// Calls `f` with what the verdict rule needs besides the evidence: today's date and the SGTIN memory.
fn judging<R>(manifest: &Manifest, serials: &SerialLedger, f: impl FnOnce(&Judging<'_>) -> R) -> R {
    let today = hallmark_core::clock::today_utc();
    let now = unix_now();
    let seen = |s: &verdict::Sgtin| serials.is_clone(s, now);
    f(&Judging {
        manifest,
        ctx: verdict::Context {
            today: &today,
            seen: &seen,
        },
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `trigger = button` on a terminal: Enter starts a scan.
fn spawn_terminal_trigger(triggers: std::sync::mpsc::Sender<()>) {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return;
    }
    eprintln!("hallmark: press Enter to scan");
    let _ = std::thread::Builder::new()
        .name("hallmark-stdin".into())
        .spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
                if triggers.send(()).is_err() {
                    break;
                }
            }
        });
}
