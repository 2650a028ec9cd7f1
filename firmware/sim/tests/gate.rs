//! The simulator as a conveyor controller (a belt at 1 m/s under a 1 count/mm encoder), driven over
//! stdin/stdout: three packs announced, two decided, one left pending; the gate log says each was
//! handled at its exact count, the pending one fail-safe, and the belt count was reported.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hallmark_link::*;

fn frame(m: &Message) -> Vec<u8> {
    let mut buf = [0u8; MAX_WIRE_LEN];
    let n = encode(m, &mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn packs_are_fired_at_their_counts_and_a_pending_one_fail_safe() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallmark-sim"))
        .args([
            "--stdio",
            "--out",
            out.to_str().unwrap(),
            "--belt-speed-mm-s",
            "1000",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hallmark-sim");
    let mut stdin = child.stdin.take().unwrap();
    let entry = |item_id, arrives_at| {
        Message::GateEntry(GateEntry {
            item_id,
            arrives_at,
            pulse_ms: 100,
            on_late: OnLate::Reject,
        })
    };
    let mut bytes = Vec::new();
    for m in [
        entry(1, 400),
        entry(2, 600),
        entry(3, 800),
        Message::GateDecision(GateDecision {
            item_id: 1,
            reject: true,
        }),
        Message::GateDecision(GateDecision {
            item_id: 2,
            reject: false,
        }),
    ] {
        bytes.extend(frame(&m));
    }
    stdin.write_all(&bytes).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "simulator did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let log = std::fs::read_to_string(out.join("gate.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(u64, &str, u64, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["item"].as_u64().unwrap(),
                l["outcome"].as_str().unwrap(),
                l["count"].as_u64().unwrap(),
                l["target"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "Rejected", 400, 400),
            (2, "Passed", 600, 600),
            (3, "LateRejected", 800, 800)
        ],
        "{log}"
    );
    assert!(
        lines[0]["margin"].as_u64().unwrap() > 300,
        "decided long before: {log}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().filter(|l| *l == "actuator on").count(),
        2,
        "{stderr}"
    );
    let said: Vec<Message> = Decoder::new()
        .feed(&output.stdout)
        .filter_map(Result::ok)
        .collect();
    let counts: Vec<u64> = said
        .iter()
        .filter_map(|m| match m {
            Message::BeltCount(b) => Some(b.count),
            _ => None,
        })
        .collect();
    assert!(
        counts.len() > 20 && counts.windows(2).all(|w| w[0] <= w[1]),
        "{counts:?}"
    );
    assert!(said.iter().any(|m| matches!(m, Message::GateReport(r) if r.item_id == 3 && r.outcome == GateOutcome::LateRejected)));
}
