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
    match fx.send {
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
        fx.send,
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
    assert!(matches!(fx.send, Some(Message::Trigger(_))));
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
        c.on_button(1_000).send,
        Some(Message::Trigger(Trigger { seq: 1 }))
    );
    assert_eq!(c.on_button(1_100).send, None, "bounce");
    assert_eq!(
        c.on_button(1_300).send,
        Some(Message::Trigger(Trigger { seq: 2 }))
    );
}

#[test]
fn heartbeats_go_out_on_schedule() {
    let mut c = online();
    let mut beats = Vec::new();
    for t in (0..=5_000).step_by(100) {
        if let Some(Message::Heartbeat(h)) = c.on_tick(t).send {
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
