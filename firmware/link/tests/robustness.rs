//! Property tests of the link codec: round trips, and every kind of damage a serial line does (bit
//! flips, truncation, oversize runs, garbage between frames) is detected, costs only the damaged
//! frame, and never panics.

use hallmark_link::*;
use proptest::prelude::*;

fn text<const N: usize>() -> impl Strategy<Value = Text<N>> {
    "\\PC{0,60}".prop_map(|s| text_truncated::<N>(&s))
}

fn message() -> impl Strategy<Value = Message> {
    let verdict = prop_oneof![
        Just(Verdict::Genuine),
        Just(Verdict::Counterfeit),
        Just(Verdict::Inconclusive),
        Just(Verdict::NoProduct)
    ];
    prop_oneof![
        (any::<bool>(), any::<u8>(), text::<VERSION_LEN>()).prop_map(
            |(agent, protocol, software)| {
                Message::Hello(Hello {
                    role: if agent { Role::Agent } else { Role::Controller },
                    protocol,
                    software,
                })
            }
        ),
        (
            any::<u32>(),
            verdict,
            text::<BRAND_LEN>(),
            text::<PRODUCT_LEN>(),
            0u16..=1000
        )
            .prop_map(
                |(item_id, verdict, brand, product, c)| Message::ShowVerdict(ShowVerdict {
                    item_id,
                    verdict,
                    brand,
                    product,
                    confidence: Confidence(c),
                })
            ),
        Just(Message::Status(Status::Idle)),
        Just(Message::Status(Status::Scanning)),
        (text::<BRAND_LEN>(), 0u8..=100).prop_map(|(brand, p)| Message::Status(
            Status::ModelUpdating {
                brand,
                progress: Progress(p)
            }
        )),
        text::<DETAIL_LEN>().prop_map(|detail| Message::Status(Status::AgentError { detail })),
        (any::<u32>(), any::<u16>())
            .prop_map(|(item_id, pulse_ms)| Message::Reject(Reject { item_id, pulse_ms })),
        any::<u32>().prop_map(|seq| Message::Trigger(Trigger { seq })),
        any::<u32>().prop_map(|seq| Message::Heartbeat(Heartbeat { seq })),
        (any::<u32>(), any::<u64>())
            .prop_map(|(seq, count)| Message::BeltCount(BeltCount { seq, count })),
        (any::<u32>(), any::<u64>(), any::<u16>(), any::<bool>()).prop_map(
            |(item_id, arrives_at, pulse_ms, reject)| Message::GateEntry(GateEntry {
                item_id,
                arrives_at,
                pulse_ms,
                on_late: if reject { OnLate::Reject } else { OnLate::Pass },
            })
        ),
        (any::<u32>(), any::<bool>())
            .prop_map(|(item_id, reject)| Message::GateDecision(GateDecision { item_id, reject })),
        (any::<u32>(), 0usize..6, any::<u64>()).prop_map(|(item_id, o, count)| {
            let outcome = [
                GateOutcome::Rejected,
                GateOutcome::Passed,
                GateOutcome::LateRejected,
                GateOutcome::LatePassed,
                GateOutcome::Refused,
                GateOutcome::Unknown,
            ][o];
            Message::GateReport(GateReport {
                item_id,
                outcome,
                count,
            })
        }),
    ]
}

fn wire(m: &Message) -> Vec<u8> {
    let mut out = [0u8; MAX_WIRE_LEN];
    let n = encode(m, &mut out).expect("valid messages encode");
    out[..n].to_vec()
}

/// The stream of several messages, and where each one's bytes start and end.
fn stream(msgs: &[Message]) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
    let mut bytes = Vec::new();
    let mut spans = Vec::new();
    for m in msgs {
        let start = bytes.len();
        bytes.extend(wire(m));
        spans.push(start..bytes.len());
    }
    (bytes, spans)
}

fn decode_all(bytes: &[u8]) -> (Vec<Message>, Vec<FrameError>) {
    let mut ok = Vec::new();
    let mut err = Vec::new();
    for r in Decoder::new().feed(bytes) {
        match r {
            Ok(m) => ok.push(m),
            Err(e) => err.push(e),
        }
    }
    (ok, err)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips(m in message()) {
        let (ok, err) = decode_all(&wire(&m));
        prop_assert_eq!(ok, vec![m]);
        prop_assert!(err.is_empty());
    }

    #[test]
    fn a_message_split_anywhere_across_reads_round_trips(m in message(), cut in any::<prop::sample::Index>()) {
        let w = wire(&m);
        let cut = cut.index(w.len());
        let mut d = Decoder::new();
        let mut got: Vec<_> = d.feed(&w[..cut]).collect();
        got.extend(d.feed(&w[cut..]));
        prop_assert_eq!(got, vec![Ok(m)]);
    }

    #[test]
    fn a_single_bit_flip_loses_only_the_hit_frame(
        msgs in prop::collection::vec(message(), 1..6),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (mut bytes, spans) = stream(&msgs);
        let p = pos.index(bytes.len());
        bytes[p] ^= 1 << bit;
        let hit = spans.iter().position(|s| s.contains(&p)).unwrap();
        // What follows on a live line: the next frame's leading delimiter. Without it a flipped
        // closing delimiter is, correctly, still "need more bytes".
        bytes.push(0);
        let mut expected = msgs.clone();
        expected.remove(hit);
        let (ok, err) = decode_all(&bytes);
        prop_assert_eq!(ok, expected);
        prop_assert!(!err.is_empty(), "the damage must be reported");
    }

    #[test]
    fn a_truncated_frame_loses_only_itself(
        msgs in prop::collection::vec(message(), 2..6),
        which in any::<prop::sample::Index>(),
        keep in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        let k = which.index(msgs.len() - 1); // not the last: the next frame's delimiter ends it
        for (i, m) in msgs.iter().enumerate() {
            let w = wire(m);
            if i == k {
                // keep the leading delimiter and at least one body byte, drop the closing delimiter
                let keep = 2 + keep.index(w.len() - 3);
                bytes.extend_from_slice(&w[..keep]);
            } else {
                bytes.extend(w);
            }
        }
        let mut expected = msgs.clone();
        expected.remove(k);
        let (ok, err) = decode_all(&bytes);
        prop_assert_eq!(ok, expected);
        prop_assert_eq!(err.len(), 1);
    }

    #[test]
    fn garbage_between_frames_is_skipped(
        msgs in prop::collection::vec(message(), 1..5),
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 5),
    ) {
        let mut bytes = Vec::new();
        for (m, g) in msgs.iter().zip(&garbage) {
            bytes.extend_from_slice(g);
            bytes.extend(wire(m));
        }
        bytes.extend_from_slice(&garbage[4]);
        let (ok, _err) = decode_all(&bytes);
        prop_assert_eq!(ok, msgs);
    }

    #[test]
    fn random_bytes_never_panic_and_yield_no_message(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let (ok, _err) = decode_all(&bytes);
        // A random run passing COBS, CRC-32, version and payload checks has odds far below 2^-32.
        prop_assert!(ok.is_empty(), "random bytes decoded as {:?}", ok);
    }

    #[test]
    fn decode_frame_on_arbitrary_bodies_never_panics(mut body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_frame(&mut body);
    }
}

#[test]
fn an_oversize_run_between_frames_is_reported_and_skipped() {
    let a = Message::Trigger(Trigger { seq: 1 });
    let b = Message::Heartbeat(Heartbeat { seq: 2 });
    let mut bytes = wire(&a);
    bytes.extend(std::iter::repeat_n(0xA5, MAX_FRAME_LEN + 50));
    bytes.extend(wire(&b));
    let got: Vec<_> = Decoder::new().feed(&bytes).collect();
    assert_eq!(got, vec![Ok(a), Err(FrameError::Oversize), Ok(b)]);
}

/// A peer built before the conveyor messages knew six variants. It must refuse the new ones as
/// unknown payloads, never read them as something else (postcard tags a variant by its index, and
/// the new ones were appended after the old).
mod older_peers {
    use hallmark_link::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    enum MessageV1 {
        Hello(Hello),
        ShowVerdict(ShowVerdict),
        Status(Status),
        Reject(Reject),
        Trigger(Trigger),
        Heartbeat(Heartbeat),
    }

    #[test]
    fn an_older_peer_refuses_every_conveyor_message_and_still_reads_the_old_ones() {
        let new = [
            Message::BeltCount(BeltCount { seq: 1, count: 5 }),
            Message::GateEntry(GateEntry {
                item_id: 3,
                arrives_at: 12_000,
                pulse_ms: 300,
                on_late: OnLate::Reject,
            }),
            Message::GateDecision(GateDecision {
                item_id: 3,
                reject: true,
            }),
            Message::GateReport(GateReport {
                item_id: 3,
                outcome: GateOutcome::LateRejected,
                count: 12_001,
            }),
        ];
        for m in new {
            let mut buf = [0u8; 64];
            let payload = postcard::to_slice(&m, &mut buf).unwrap();
            assert!(
                postcard::from_bytes::<MessageV1>(payload).is_err(),
                "an older peer would misread {m:?}"
            );
        }
        let mut buf = [0u8; 64];
        let old = Message::Reject(Reject {
            item_id: 9,
            pulse_ms: 300,
        });
        let payload = postcard::to_slice(&old, &mut buf).unwrap();
        assert!(matches!(
            postcard::from_bytes::<MessageV1>(payload),
            Ok(MessageV1::Reject(Reject { item_id: 9, .. }))
        ));
    }
}
