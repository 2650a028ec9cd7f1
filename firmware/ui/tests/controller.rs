//! The controller state machine driven through its public inputs, checking screens, actuator commands
//! and outgoing messages.

use hallmark_link::*;
use hallmark_ui::{Actuator, Config, Controller, Screen};

const CFG: Config = Config {
    heartbeat_every_ms: 1_000,
    offline_after_ms: 3_000,
    verdict_hold_ms: 8_000,
    max_pulse_ms: 2_000,
    debounce_ms: 250,
    gate: None,
};

fn verdict(v: Verdict, id: u32) -> Message {
    Message::ShowVerdict(ShowVerdict {
        item_id: id,
        verdict: v,
        brand: text_truncated("Acme"),
        product: text_truncated("Classic Watch"),
        confidence: Confidence(900),
    })
}

fn agent_hello() -> Message {
    Message::Hello(Hello {
        role: Role::Agent,
        protocol: PROTOCOL_VERSION,
        software: text_truncated("0.1.0"),
    })
}

/// A controller that has heard the agent's hello at t=0.
fn online() -> Controller {
    let (mut c, _) = Controller::new(CFG, "test", 0);
    let _ = c.on_message(0, agent_hello());
    c
}

#[test]
fn power_on_shows_offline_turns_the_actuator_off_and_says_hello() {
    let (c, fx) = Controller::new(CFG, "0.1.0", 0);
    assert_eq!(c.screen(), &Screen::Offline);
    assert!(fx.redraw);
    assert_eq!(fx.actuator, Some(Actuator::Off));
    match fx.send.first().cloned() {
        Some(Message::Hello(h)) => {
            assert_eq!(h.role, Role::Controller);
            assert_eq!(h.protocol, PROTOCOL_VERSION);
            assert_eq!(h.software.as_str(), "0.1.0");
        }
        other => panic!("expected a hello, got {other:?}"),
    }
}

#[test]
fn agent_hello_brings_the_screen_online_and_is_answered() {
    let (mut c, _) = Controller::new(CFG, "0.1.0", 0);
    let fx = c.on_message(10, agent_hello());
    assert_eq!(c.screen(), &Screen::Idle);
    assert!(fx.redraw);
    assert!(matches!(
        fx.send.first().cloned(),
        Some(Message::Hello(Hello {
            role: Role::Controller,
            ..
        }))
    ));
}

#[test]
fn counterfeit_verdict_shows_and_stays_until_the_next_scan() {
    let mut c = online();
    let fx = c.on_message(100, verdict(Verdict::Counterfeit, 7));
    assert!(fx.redraw);
    assert_eq!(c.screen().name(), "counterfeit");
    // Heartbeats keep the link alive far past the hold time; the counterfeit stays up.
    for t in (1_000..60_000).step_by(1_000) {
        let _ = c.on_message(t, Message::Heartbeat(Heartbeat { seq: t as u32 }));
        let _ = c.on_tick(t + 1);
    }
    assert_eq!(c.screen().name(), "counterfeit");
    let _ = c.on_message(61_000, Message::Status(Status::Idle));
    assert_eq!(
        c.screen().name(),
        "counterfeit",
        "idle must not wipe a counterfeit"
    );
    let _ = c.on_message(61_100, Message::Status(Status::Scanning));
    assert_eq!(c.screen(), &Screen::Scanning);
}

#[test]
fn counterfeit_survives_a_link_drop_until_the_clerk_acknowledges_it() {
    let mut c = online();
    let _ = c.on_message(100, verdict(Verdict::Counterfeit, 7));
    // The agent goes silent: the verdict stays, with a "link lost" marker.
    assert!(!c.on_tick(3_099).redraw);
    let fx = c.on_tick(3_100);
    assert!(fx.redraw, "the marker needs a redraw");
    assert_eq!(c.screen().name(), "counterfeit_link_lost");
    match c.screen() {
        Screen::Verdict(v) => assert_eq!((v.item_id, v.link_lost), (7, true)),
        other => panic!("expected the counterfeit, got {other:?}"),
    }
    for t in (3_200..600_000).step_by(700) {
        assert!(
            !c.on_tick(t).redraw,
            "nothing changes while silent ({t} ms)"
        );
    }
    assert_eq!(c.screen().name(), "counterfeit_link_lost");
    // A press acknowledges it: now the screen says what is true, and the trigger still goes out.
    let fx = c.on_button(600_000);
    assert!(fx.redraw);
    assert_eq!(c.screen(), &Screen::Offline);
    assert!(matches!(
        fx.send.first().cloned(),
        Some(Message::Trigger(_))
    ));
}

#[test]
fn counterfeit_kept_through_a_link_drop_loses_its_marker_when_the_agent_returns() {
    let mut c = online();
    let _ = c.on_message(0, verdict(Verdict::Counterfeit, 7));
    let _ = c.on_tick(5_000);
    assert_eq!(c.screen().name(), "counterfeit_link_lost");
    let fx = c.on_message(6_000, Message::Heartbeat(Heartbeat { seq: 9 }));
    assert!(fx.redraw);
    assert_eq!(c.screen().name(), "counterfeit");
    // Back to the ordinary rule: the next scan replaces it.
    let _ = c.on_message(6_100, Message::Status(Status::Scanning));
    assert_eq!(c.screen(), &Screen::Scanning);
}

#[test]
fn a_button_press_with_the_link_up_does_not_wipe_a_counterfeit() {
    let mut c = online();
    let _ = c.on_message(0, verdict(Verdict::Counterfeit, 7));
    let fx = c.on_button(500);
    assert!(!fx.redraw);
    assert_eq!(c.screen().name(), "counterfeit");
}

#[test]
fn genuine_and_inconclusive_verdicts_still_go_offline() {
    for v in [Verdict::Genuine, Verdict::Inconclusive, Verdict::NoProduct] {
        let mut c = online();
        let _ = c.on_message(0, verdict(v, 1));
        let fx = c.on_tick(3_000);
        assert!(fx.redraw);
        assert_eq!(c.screen(), &Screen::Offline, "{v:?}");
    }
}

#[test]
fn once_offline_the_next_deadline_is_in_the_future() {
    // A board sleeps until next_deadline; a deadline already past would make it spin.
    let mut c = online();
    let _ = c.on_tick(3_000);
    assert_eq!(c.screen(), &Screen::Offline);
    assert!(c.next_deadline() > 3_000);
    let mut c = online();
    let _ = c.on_message(0, verdict(Verdict::Counterfeit, 1));
    let _ = c.on_tick(3_000);
    assert!(c.next_deadline() > 3_000);
}

#[test]
fn genuine_verdict_falls_back_to_idle_after_the_hold_time() {
    let mut c = online();
    let _ = c.on_message(0, verdict(Verdict::Genuine, 1));
    let _ = c.on_message(2_000, Message::Heartbeat(Heartbeat { seq: 1 }));
    let _ = c.on_message(4_000, Message::Heartbeat(Heartbeat { seq: 2 }));
    let _ = c.on_message(6_000, Message::Heartbeat(Heartbeat { seq: 3 }));
    assert!(!c.on_tick(7_999).redraw);
    assert_eq!(c.screen().name(), "genuine");
    let fx = c.on_tick(8_000);
    assert!(fx.redraw);
    assert_eq!(c.screen(), &Screen::Idle);
}

#[test]
fn silence_longer_than_the_timeout_shows_offline_and_any_message_recovers() {
    let mut c = online();
    assert!(!c.on_tick(2_999).redraw);
    assert_eq!(c.screen(), &Screen::Idle);
    let fx = c.on_tick(3_000);
    assert!(fx.redraw);
    assert_eq!(c.screen(), &Screen::Offline);
    let fx = c.on_message(3_500, Message::Heartbeat(Heartbeat { seq: 1 }));
    assert!(fx.redraw);
    assert_eq!(c.screen(), &Screen::Idle);
}

#[test]
fn reject_pulses_the_actuator_for_the_requested_time() {
    let mut c = online();
    let fx = c.on_message(
        1_000,
        Message::Reject(Reject {
            item_id: 7,
            pulse_ms: 300,
        }),
    );
    assert_eq!(fx.actuator, Some(Actuator::On));
    assert!(c.actuator_on());
    assert_eq!(c.on_tick(1_299).actuator, None);
    assert_eq!(c.on_tick(1_300).actuator, Some(Actuator::Off));
    assert!(!c.actuator_on());
    assert_eq!(c.on_tick(1_400).actuator, None);
}

#[test]
fn reject_pulse_is_capped_and_a_second_reject_extends_it() {
    let mut c = online();
    let _ = c.on_message(
        0,
        Message::Reject(Reject {
            item_id: 1,
            pulse_ms: 60_000,
        }),
    );
    assert_eq!(c.on_tick(1_999).actuator, None);
    assert_eq!(
        c.on_tick(2_000).actuator,
        Some(Actuator::Off),
        "capped at max_pulse_ms"
    );

    let _ = c.on_message(
        2_500,
        Message::Reject(Reject {
            item_id: 2,
            pulse_ms: 500,
        }),
    );
    let fx = c.on_message(
        2_600,
        Message::Reject(Reject {
            item_id: 3,
            pulse_ms: 500,
        }),
    );
    assert_eq!(fx.actuator, None, "already on");
    assert_eq!(c.on_tick(3_050).actuator, None, "extended to 3100");
    assert_eq!(c.on_tick(3_100).actuator, Some(Actuator::Off));
    let fx = c.on_message(
        4_000,
        Message::Reject(Reject {
            item_id: 4,
            pulse_ms: 0,
        }),
    );
    assert_eq!(fx.actuator, None, "a zero pulse does nothing");
}

#[test]
fn the_actuator_switches_off_even_when_the_agent_goes_silent() {
    let mut c = online();
    let _ = c.on_message(
        0,
        Message::Reject(Reject {
            item_id: 1,
            pulse_ms: 1_500,
        }),
    );
    let mut off_at = None;
    for t in (0..10_000).step_by(100) {
        if c.on_tick(t).actuator == Some(Actuator::Off) {
            off_at = Some(t);
        }
    }
    assert_eq!(off_at, Some(1_500));
    assert_eq!(c.screen(), &Screen::Offline);
}

#[test]
fn button_sends_numbered_triggers_and_ignores_bounces() {
    let mut c = online();
    assert_eq!(
        c.on_button(1_000).send.first().cloned(),
        Some(Message::Trigger(Trigger { seq: 1 }))
    );
    assert_eq!(c.on_button(1_100).send.first().cloned(), None, "bounce");
    assert_eq!(
        c.on_button(1_300).send.first().cloned(),
        Some(Message::Trigger(Trigger { seq: 2 }))
    );
}

#[test]
fn heartbeats_go_out_on_schedule() {
    let mut c = online();
    let mut beats = Vec::new();
    for t in (0..=5_000).step_by(100) {
        if let Some(Message::Heartbeat(h)) = c.on_tick(t).send.first().cloned() {
            beats.push((t, h.seq));
        }
    }
    assert_eq!(
        beats,
        vec![(1_000, 1), (2_000, 2), (3_000, 3), (4_000, 4), (5_000, 5)]
    );
}

#[test]
fn status_messages_choose_their_screens() {
    let mut c = online();
    let _ = c.on_message(
        1,
        Message::Status(Status::ModelUpdating {
            brand: text_truncated("Acme"),
            progress: Progress(40),
        }),
    );
    assert_eq!(
        c.screen(),
        &Screen::Updating {
            brand: text_truncated("Acme"),
            progress: 40
        }
    );
    let _ = c.on_message(
        2,
        Message::Status(Status::AgentError {
            detail: text_truncated("no camera"),
        }),
    );
    assert_eq!(
        c.screen(),
        &Screen::AgentError {
            detail: text_truncated("no camera")
        }
    );
    let _ = c.on_message(3, Message::Status(Status::Idle));
    assert_eq!(c.screen(), &Screen::Idle);
    // the same screen again is not a redraw
    assert!(!c.on_message(4, Message::Status(Status::Idle)).redraw);
}

#[test]
fn next_deadline_names_the_earliest_pending_event() {
    let mut c = online();
    assert_eq!(c.next_deadline(), 1_000); // heartbeat
    let _ = c.on_message(
        500,
        Message::Reject(Reject {
            item_id: 1,
            pulse_ms: 200,
        }),
    );
    assert_eq!(c.next_deadline(), 700);
}

/// A conveyor controller counting encoder pulses, reporting the count every 20 ms.
const BELT: Config = Config {
    gate: Some(hallmark_ui::GateConfig {
        counts: hallmark_ui::CountSource::Encoder,
        report_every_ms: 20,
    }),
    ..CFG
};

fn entry(item_id: u32, arrives_at: u64) -> Message {
    Message::GateEntry(GateEntry {
        item_id,
        arrives_at,
        pulse_ms: 300,
        on_late: OnLate::Reject,
    })
}

fn reports(fx: &hallmark_ui::Effects) -> Vec<(u32, GateOutcome, u64)> {
    fx.send
        .iter()
        .filter_map(|m| match m {
            Message::GateReport(r) => Some((r.item_id, r.outcome, r.count)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_gate_fires_each_pack_at_its_count_and_reports_it() {
    let (mut c, _) = Controller::new(BELT, "t", 0);
    let _ = c.on_message(0, entry(1, 500));
    let _ = c.on_message(0, entry(2, 900));
    let _ = c.on_message(
        10,
        Message::GateDecision(GateDecision {
            item_id: 1,
            reject: true,
        }),
    );
    let _ = c.on_message(
        10,
        Message::GateDecision(GateDecision {
            item_id: 2,
            reject: false,
        }),
    );
    let (mut fired, mut got) = (Vec::new(), Vec::new());
    for count in 0..=1000u64 {
        let now = 20 + count;
        let fx = c.on_count(now, count);
        if fx.actuator == Some(Actuator::On) {
            fired.push(count);
        }
        got.extend(reports(&fx));
        let _ = c.on_tick(now);
    }
    assert_eq!(
        fired,
        [500],
        "the reject fired at its count, the pass never"
    );
    assert_eq!(
        got,
        [
            (1, GateOutcome::Rejected, 500),
            (2, GateOutcome::Passed, 900)
        ]
    );
}

#[test]
fn a_pack_whose_decision_never_came_is_diverted_and_the_link_loss_changes_nothing() {
    let (mut c, _) = Controller::new(BELT, "t", 0);
    let _ = c.on_message(0, entry(5, 100));
    // The agent goes silent: offline after 3 s; the pack arrives at count 100 at 4 s.
    let _ = c.on_tick(3_500);
    assert_eq!(c.screen(), &Screen::Offline);
    let fx = c.on_count(4_000, 100);
    assert_eq!(fx.actuator, Some(Actuator::On), "fail-safe: diverted");
    assert_eq!(reports(&fx), [(5, GateOutcome::LateRejected, 100)]);
    // Back online: a decision for the pack gone by never fires.
    let fx = c.on_message(
        5_000,
        Message::GateDecision(GateDecision {
            item_id: 5,
            reject: true,
        }),
    );
    assert_eq!(reports(&fx), [(5, GateOutcome::Unknown, 100)]);
}

#[test]
fn the_belt_count_is_reported_to_the_agent_every_report_period() {
    let (mut c, _) = Controller::new(BELT, "t", 0);
    let _ = c.on_count(0, 0);
    let mut counts = Vec::new();
    for t in 0..=100u64 {
        let _ = c.on_count(t, t * 3);
        for m in c.on_tick(t).send {
            if let Message::BeltCount(b) = m {
                counts.push((t, b.count));
            }
        }
    }
    assert_eq!(
        counts,
        [
            (0, 0),
            (20, 60),
            (40, 120),
            (60, 180),
            (80, 240),
            (100, 300)
        ]
    );
}

#[test]
fn counting_in_milliseconds_fires_on_time_from_ticks_alone() {
    let cfg = Config {
        gate: Some(hallmark_ui::GateConfig {
            counts: hallmark_ui::CountSource::Clock,
            report_every_ms: 50,
        }),
        ..CFG
    };
    let (mut c, _) = Controller::new(cfg, "t", 0);
    let _ = c.on_message(0, entry(1, 1_234));
    let _ = c.on_message(
        0,
        Message::GateDecision(GateDecision {
            item_id: 1,
            reject: true,
        }),
    );
    let mut now = 0;
    let mut fired = None;
    while now < 2_000 && fired.is_none() {
        now = c.next_deadline().min(now + 100);
        if c.on_tick(now).actuator == Some(Actuator::On) {
            fired = Some(now);
        }
    }
    assert_eq!(
        fired,
        Some(1_234),
        "a board sleeping until the next deadline wakes for the pack"
    );
}

#[test]
fn belt_the_agent_never_inspected_is_diverted_until_inspection_catches_up() {
    let (mut c, _) = Controller::new(BELT, "t", 0);
    // An agent that never speaks of coverage (an older one): nothing diverted for it.
    for count in 0..=200u64 {
        let fx = c.on_count(count, count);
        assert_ne!(fx.actuator, Some(Actuator::On), "count {count}");
        let _ = c.on_tick(count);
    }
    // Inspected through 300: belt up to it passes; past it (the agent stalled) everything is diverted.
    let _ = c.on_message(
        200,
        Message::Inspected(hallmark_link::Inspected { through: 300 }),
    );
    let mut fired = Vec::new();
    for count in 201..=400u64 {
        if c.on_count(count, count).actuator == Some(Actuator::On) {
            fired.push(count);
        }
        let _ = c.on_tick(count);
    }
    assert_eq!(
        fired.first(),
        Some(&301),
        "the first uninspected count: {fired:?}"
    );
    assert_eq!(c.gate().stats().uninspected, 1);
    // Inspection catches up: diverting stops once the pulse under way ends.
    let _ = c.on_message(
        400,
        Message::Inspected(hallmark_link::Inspected { through: 2_000 }),
    );
    let mut later = Vec::new();
    for count in 401..=1_500u64 {
        if c.on_count(count, count).actuator == Some(Actuator::On) {
            later.push(count);
        }
        let _ = c.on_tick(count);
    }
    assert!(later.is_empty(), "{later:?}");
}
