//! Property tests of the controller's safety rules over random sequences of messages, presses and
//! time: the actuator is never on without a recent reject, the commands it emits match its state, the
//! offline screen (or a counterfeit kept with its "link lost" marker) shows exactly when the agent has
//! been silent too long, a counterfeit never leaves the screen through time alone, and the next
//! deadline always lies ahead.

use hallmark_link::*;
use hallmark_ui::{Actuator, Config, Controller, Screen};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Msg(Message),
    Button,
    Tick,
}

fn step() -> impl Strategy<Value = Step> {
    let verdict = prop_oneof![
        Just(Verdict::Genuine),
        Just(Verdict::Counterfeit),
        Just(Verdict::Inconclusive),
        Just(Verdict::NoProduct)
    ];
    prop_oneof![
        3 => Just(Step::Tick),
        1 => Just(Step::Button),
        2 => any::<u32>().prop_map(|seq| Step::Msg(Message::Heartbeat(Heartbeat { seq }))),
        1 => (any::<u32>(), any::<u16>()).prop_map(|(item_id, pulse_ms)| Step::Msg(Message::Reject(Reject { item_id, pulse_ms }))),
        1 => verdict.prop_map(|v| Step::Msg(Message::ShowVerdict(ShowVerdict {
            item_id: 1,
            verdict: v,
            brand: text_truncated("Acme"),
            product: text_truncated("Watch"),
            confidence: Confidence(500),
        }))),
        1 => prop_oneof![
            Just(Status::Idle),
            Just(Status::Scanning),
            Just(Status::AgentError { detail: text_truncated("x") }),
            (0u8..=100).prop_map(|p| Status::ModelUpdating { brand: text_truncated("Acme"), progress: Progress(p) }),
        ].prop_map(|s| Step::Msg(Message::Status(s))),
    ]
}

fn is_counterfeit(s: &Screen) -> bool {
    matches!(s, Screen::Verdict(v) if v.verdict == Verdict::Counterfeit)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn safety_rules_hold_for_any_sequence(
        steps in prop::collection::vec((0u64..1_500, step()), 1..200),
    ) {
        let cfg = Config::default();
        let (mut c, fx) = Controller::new(cfg, "prop", 0);
        prop_assert_eq!(fx.actuator, Some(Actuator::Off));
        let mut now = 0u64;
        let mut on = false;
        let mut last_reject: Option<u64> = None;
        let mut last_heard: Option<u64> = None;
        for (dt, s) in steps {
            now += dt;
            let was_counterfeit = is_counterfeit(c.screen());
            // Steps that may replace a counterfeit: a new scan or verdict, a status that takes the
            // screen, or a press while the link is down (the clerk's acknowledgement).
            let may_replace = match &s {
                Step::Msg(Message::ShowVerdict(v)) => v.verdict != Verdict::Counterfeit,
                Step::Msg(Message::Status(st)) => !matches!(st, Status::Idle),
                Step::Button => matches!(c.screen(), Screen::Verdict(v) if v.link_lost),
                _ => false,
            };
            let fx = match s {
                Step::Msg(m) => {
                    if let Message::Reject(r) = &m {
                        if r.pulse_ms > 0 {
                            last_reject = Some(now);
                        }
                    }
                    last_heard = Some(now);
                    c.on_message(now, m)
                }
                Step::Button => c.on_button(now),
                Step::Tick => c.on_tick(now),
            };
            // Commands only ever change the state, and match what the controller reports.
            match fx.actuator {
                Some(Actuator::On) => { prop_assert!(!on, "on while already on"); on = true; }
                Some(Actuator::Off) => { prop_assert!(on, "off while already off"); on = false; }
                None => {}
            }
            prop_assert_eq!(on, c.actuator_on());

            let fx = c.on_tick(now);
            if fx.actuator == Some(Actuator::Off) { on = false; }
            prop_assert_eq!(on, c.actuator_on());
            // Never on without a reject within the cap.
            if on {
                let since = now - last_reject.expect("on without any reject");
                prop_assert!(since < u64::from(cfg.max_pulse_ms), "on {since} ms after the last reject");
            }
            // Offline (or a counterfeit marked "link lost") exactly when silent for the timeout.
            let silent = last_heard.is_none_or(|h| now - h >= cfg.offline_after_ms);
            let link_lost = matches!(c.screen(), Screen::Verdict(v) if v.link_lost);
            prop_assert_eq!(c.screen() == &Screen::Offline || link_lost, silent, "at {} ms, screen {:?}", now, c.screen());
            prop_assert!(!link_lost || is_counterfeit(c.screen()), "link-lost marker on {:?}", c.screen());
            // A counterfeit never disappears by itself.
            if was_counterfeit && !may_replace {
                prop_assert!(is_counterfeit(c.screen()), "counterfeit wiped at {} ms, now {:?}", now, c.screen());
            }
            prop_assert!(c.next_deadline() > now, "deadline {} not after {}", c.next_deadline(), now);
        }
    }
}
