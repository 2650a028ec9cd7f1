//! The controller state machine: what the kiosk does when a message arrives, the button is pressed
//! or time passes.
//!
//! Inputs: [`Controller::on_message`], [`Controller::on_button`], [`Controller::on_tick`], each with
//! the current time in milliseconds from any monotonic clock. Output: an [`Effects`] value (redraw the
//! screen, switch the actuator, send a message). It does no I/O, so the board, the simulator and the
//! tests drive the very same logic.
//!
//! Rules:
//! - Any valid message from the agent counts as a sign of life; after `offline_after_ms` without one the
//!   screen turns to [`Screen::Offline`]. The next message brings it back.
//! - Except a counterfeit: it survives a link drop. The screen keeps the verdict and adds a "link
//!   lost" marker ([`VerdictView::link_lost`]) until the agent speaks again (marker off, verdict
//!   stays), a new scan replaces it, or the clerk acknowledges it with the button (then
//!   [`Screen::Offline`]).
//! - A heartbeat goes out every `heartbeat_every_ms`; a hello goes out at start and in answer to the
//!   agent's hello.
//! - A verdict stays up until the next scan (status `Scanning`, another verdict) — a counterfeit stays
//!   indefinitely so nobody misses it; genuine / inconclusive / no-product fall back to idle after
//!   `verdict_hold_ms`. Status `Idle` does not wipe a verdict that is still showing.
//! - The button sends a trigger; presses closer than `debounce_ms` to the last accepted one are ignored.
//!
//! Design: a counterfeit verdict leaves the screen only through an event a person or the agent caused
//! (a new scan, a new verdict, a status that takes the screen, a button press) — never through time
//! alone, so the clerk cannot miss it because the PC hiccuped.
//!
//! Design: the actuator is never left on. Every "on" carries a deadline (pulse length, capped at
//! `max_pulse_ms`) and [`Controller::on_tick`] switches it off once the deadline passes, whatever else
//! happens — including the agent going offline mid-pulse.
//!
//! On a conveyor ([`Config::gate`]) the controller also keeps the reject gate's queue ([`Gate`]): the
//! belt count comes from an encoder ([`Controller::on_count`]) or, on a line without one, from the
//! controller's own milliseconds at a fixed belt speed; it reports the count to the agent every
//! `report_every_ms`, and fires each pack's pulse when the count reaches it. A full queue diverts
//! everything (the actuator pulsed again and again, each pulse with its deadline) until there is room.

use hallmark_link::{
    text_truncated, BeltCount, Heartbeat, Hello, Message, Reject, Role, Status, Trigger, Verdict,
    PROTOCOL_VERSION,
};

use crate::gate::Gate;
use crate::screen::{Screen, VerdictView};

/// Messages one input may send at most (a heartbeat, the belt count, gate reports); beyond it the
/// oldest reports of one step are dropped (the agent counts what it hears).
pub const SEND_MAX: usize = 8;

/// Where a conveyor's belt count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountSource {
    /// Encoder pulses, given by [`Controller::on_count`].
    Encoder,
    /// The controller's milliseconds (a line without an encoder, at a fixed belt speed).
    Clock,
}

/// The reject gate of a conveyor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    pub counts: CountSource,
    /// How often the belt count is reported to the agent.
    pub report_every_ms: u64,
}

/// Timing rules, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub heartbeat_every_ms: u64,
    pub offline_after_ms: u64,
    pub verdict_hold_ms: u64,
    pub max_pulse_ms: u16,
    pub debounce_ms: u64,
    /// A conveyor's reject gate (none: a kiosk, or a gate fired by `Reject` as it comes).
    pub gate: Option<GateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat_every_ms: 1_000,
            offline_after_ms: 3_000,
            verdict_hold_ms: 8_000,
            max_pulse_ms: 2_000,
            debounce_ms: 250,
            gate: None,
        }
    }
}

/// A command for the reject actuator output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actuator {
    On,
    Off,
}

/// What the caller must do after one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Effects {
    /// The screen changed: draw [`Controller::screen`].
    pub redraw: bool,
    /// Switch the actuator output.
    pub actuator: Option<Actuator>,
    /// Send these messages to the agent, in order.
    pub send: heapless::Vec<Message, SEND_MAX>,
}

impl Effects {
    fn say(&mut self, m: Message) {
        if self.send.is_full() {
            self.send.remove(0);
        }
        // Design: just made room.
        let _ = self.send.push(m);
    }
}

/// The controller's whole state.
#[derive(Debug, Clone)]
pub struct Controller {
    cfg: Config,
    software: &'static str,
    screen: Screen,
    last_heard: Option<u64>,
    /// Heard within `offline_after_ms` (false at power-on).
    link_up: bool,
    next_heartbeat: u64,
    heartbeat_seq: u32,
    trigger_seq: u32,
    last_press: Option<u64>,
    actuator_off_at: Option<u64>,
    verdict_until: Option<u64>,
    gate: Gate,
    belt_seq: u32,
    next_belt_report: u64,
}

impl Controller {
    /// A controller powered on at `now`; the returned effects draw the first screen and say hello.
    pub fn new(cfg: Config, software: &'static str, now: u64) -> (Self, Effects) {
        let c = Controller {
            cfg,
            software,
            screen: Screen::Offline,
            last_heard: None,
            link_up: false,
            next_heartbeat: now.saturating_add(cfg.heartbeat_every_ms),
            heartbeat_seq: 0,
            trigger_seq: 0,
            last_press: None,
            actuator_off_at: None,
            verdict_until: None,
            gate: Gate::new(),
            belt_seq: 0,
            next_belt_report: now,
        };
        let mut fx = Effects {
            redraw: true,
            actuator: Some(Actuator::Off),
            send: heapless::Vec::new(),
        };
        fx.say(c.hello());
        (c, fx)
    }

    /// The reject gate's queue (conveyor).
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The screen to show.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// Whether the actuator output is on.
    pub fn actuator_on(&self) -> bool {
        self.actuator_off_at.is_some()
    }

    /// The time at which [`Controller::on_tick`] next has something to do (for sleeping boards).
    ///
    /// Design: after a tick at `now` this is always later than `now` — an offline timeout that has
    /// already fired is not a deadline any more, so a board sleeping until it cannot spin.
    pub fn next_deadline(&self) -> u64 {
        let mut t = self.next_heartbeat;
        let offline_at = match (self.link_up, self.last_heard) {
            (true, Some(h)) => Some(h.saturating_add(self.cfg.offline_after_ms)),
            _ => None,
        };
        let belt = self.cfg.gate.map(|_| self.next_belt_report);
        // Counting in milliseconds, a pack's count is the time it reaches the gate.
        let arrival = match self.cfg.gate {
            Some(g) if g.counts == CountSource::Clock => self.gate.next_arrival(),
            _ => None,
        };
        for d in [
            self.actuator_off_at,
            self.verdict_until,
            offline_at,
            belt,
            arrival,
        ]
        .into_iter()
        .flatten()
        {
            t = t.min(d);
        }
        t
    }

    fn hello(&self) -> Message {
        Message::Hello(Hello {
            role: Role::Controller,
            protocol: PROTOCOL_VERSION,
            software: text_truncated(self.software),
        })
    }

    fn show(&mut self, screen: Screen, fx: &mut Effects) {
        self.verdict_until = None;
        if self.screen != screen {
            self.screen = screen;
            fx.redraw = true;
        }
    }

    fn showing_verdict(&self) -> bool {
        matches!(self.screen, Screen::Verdict(_))
    }

    /// Sets the "link lost" marker of a counterfeit on screen; returns whether one is on screen.
    fn mark_counterfeit(&mut self, link_lost: bool, fx: &mut Effects) -> bool {
        match &mut self.screen {
            Screen::Verdict(v) if v.verdict == Verdict::Counterfeit => {
                if v.link_lost != link_lost {
                    v.link_lost = link_lost;
                    fx.redraw = true;
                }
                true
            }
            _ => false,
        }
    }

    /// A message from the agent arrived.
    pub fn on_message(&mut self, now: u64, msg: Message) -> Effects {
        let mut fx = Effects::default();
        self.last_heard = Some(now);
        self.link_up = true;
        if self.screen == Screen::Offline {
            self.show(Screen::Idle, &mut fx);
        }
        self.mark_counterfeit(false, &mut fx);
        match msg {
            Message::Hello(h) if h.role == Role::Agent => fx.say(self.hello()),
            Message::ShowVerdict(v) => {
                let hold = v.verdict != Verdict::Counterfeit;
                self.show(
                    Screen::Verdict(VerdictView {
                        item_id: v.item_id,
                        verdict: v.verdict,
                        brand: v.brand,
                        product: v.product,
                        confidence: v.confidence,
                        link_lost: false,
                    }),
                    &mut fx,
                );
                if hold {
                    self.verdict_until = Some(now.saturating_add(self.cfg.verdict_hold_ms));
                }
            }
            Message::Status(Status::Idle) => {
                if !self.showing_verdict() {
                    self.show(Screen::Idle, &mut fx);
                }
            }
            Message::Status(Status::Scanning) => self.show(Screen::Scanning, &mut fx),
            Message::Status(Status::ModelUpdating { brand, progress }) => self.show(
                Screen::Updating {
                    brand,
                    progress: progress.0.min(100),
                },
                &mut fx,
            ),
            Message::Status(Status::AgentError { detail }) => {
                self.show(Screen::AgentError { detail }, &mut fx)
            }
            Message::Reject(Reject { pulse_ms, .. }) => self.pulse(now, pulse_ms, &mut fx),
            Message::GateEntry(e) => {
                if let Some(r) = self.gate.enter(e) {
                    fx.say(Message::GateReport(r));
                }
            }
            Message::GateDecision(d) => {
                if let Some(r) = self.gate.decide(d) {
                    fx.say(Message::GateReport(r));
                }
            }
            Message::Inspected(i) => self.gate.inspected(i.through),
            // Heartbeats only prove liveness; the controller's own kinds of message coming back
            // (a looped line, a confused peer) are ignored.
            Message::Heartbeat(_)
            | Message::Hello(_)
            | Message::Trigger(_)
            | Message::BeltCount(_)
            | Message::GateReport(_) => {}
        }
        fx
    }

    /// Switches the actuator on for `pulse_ms` (capped); a pulse during a pulse extends it, never
    /// shortens it.
    fn pulse(&mut self, now: u64, pulse_ms: u16, fx: &mut Effects) {
        let len = u64::from(pulse_ms.min(self.cfg.max_pulse_ms));
        if len > 0 {
            let until = now.saturating_add(len);
            let was_on = self.actuator_on();
            self.actuator_off_at = Some(self.actuator_off_at.map_or(until, |t| t.max(until)));
            if !was_on {
                fx.actuator = Some(Actuator::On);
            }
        }
    }

    /// The belt moved to `count` (encoder pulses; with [`CountSource::Clock`] the controller counts
    /// itself in [`Controller::on_tick`]): fires what has reached the gate, reports it.
    pub fn on_count(&mut self, now: u64, count: u64) -> Effects {
        let mut fx = Effects::default();
        self.gate_to(now, count, &mut fx);
        fx
    }

    fn gate_to(&mut self, now: u64, count: u64, fx: &mut Effects) {
        let passed = self.gate.advance(count);
        if let Some(ms) = passed.fire_ms {
            self.pulse(now, ms, fx);
        }
        for r in passed.reports {
            fx.say(Message::GateReport(r));
        }
        // A full queue, or belt the agent never inspected, diverts everything: one capped pulse after
        // another while it lasts.
        if (self.gate.overflowing() || self.gate.uninspected()) && !self.actuator_on() {
            self.pulse(now, self.cfg.max_pulse_ms, fx);
        }
    }

    /// The kiosk button was pressed.
    pub fn on_button(&mut self, now: u64) -> Effects {
        if let Some(last) = self.last_press {
            if now.saturating_sub(last) < self.cfg.debounce_ms {
                return Effects::default();
            }
        }
        self.last_press = Some(now);
        let mut fx = Effects::default();
        // The clerk acknowledges a counterfeit kept through a link drop; what is true now is shown.
        if matches!(&self.screen, Screen::Verdict(v) if v.link_lost) {
            self.show(Screen::Offline, &mut fx);
        }
        self.trigger_seq = self.trigger_seq.wrapping_add(1);
        fx.say(Message::Trigger(Trigger {
            seq: self.trigger_seq,
        }));
        fx
    }

    /// Time passed; call at least every 100 ms or at [`Controller::next_deadline`].
    pub fn on_tick(&mut self, now: u64) -> Effects {
        let mut fx = Effects::default();
        if let Some(off_at) = self.actuator_off_at {
            if now >= off_at {
                self.actuator_off_at = None;
                fx.actuator = Some(Actuator::Off);
            }
        }
        if let Some(gate) = self.cfg.gate {
            if gate.counts == CountSource::Clock {
                self.gate_to(now, now, &mut fx);
            }
            if now >= self.next_belt_report {
                self.belt_seq = self.belt_seq.wrapping_add(1);
                self.next_belt_report = now.saturating_add(gate.report_every_ms.max(1));
                fx.say(Message::BeltCount(BeltCount {
                    seq: self.belt_seq,
                    count: self.gate.count(),
                }));
            }
        }
        if self.link_up {
            let silent_since = self.last_heard.unwrap_or(0);
            if now.saturating_sub(silent_since) >= self.cfg.offline_after_ms {
                self.link_up = false;
                // A counterfeit on screen stays, marked; anything else gives way below.
                self.mark_counterfeit(true, &mut fx);
            }
        }
        if !self.link_up {
            // Nothing but the offline screen or a kept counterfeit while the agent is silent.
            if !matches!(&self.screen, Screen::Verdict(v) if v.link_lost) {
                self.show(Screen::Offline, &mut fx);
            }
        } else if let Some(until) = self.verdict_until {
            if now >= until {
                self.show(Screen::Idle, &mut fx);
            }
        }
        if now >= self.next_heartbeat {
            self.heartbeat_seq = self.heartbeat_seq.wrapping_add(1);
            self.next_heartbeat = now.saturating_add(self.cfg.heartbeat_every_ms);
            fx.say(Message::Heartbeat(Heartbeat {
                seq: self.heartbeat_seq,
            }));
        }
        fx
    }
}
