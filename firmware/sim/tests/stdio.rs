//! The simulator with the link on stdin/stdout: line noise then a verdict in, the verdict on screen,
//! the controller's hello out, and a clean exit when the agent's side closes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hallmark_link::*;

#[test]
fn noise_then_a_verdict_on_stdin_shows_the_verdict_and_exits_at_end_of_input() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("stdio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallmark-sim"))
        .args(["--stdio", "--out", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hallmark-sim");

    let mut input = vec![0x13, 0x37, 0x00, 0xff, 0xfe, 0x42]; // noise, with a stray delimiter
    let mut frame = [0u8; MAX_WIRE_LEN];
    let verdict = Message::ShowVerdict(ShowVerdict {
        item_id: 1042,
        verdict: Verdict::Inconclusive,
        brand: text_truncated("Acme"),
        product: text_truncated("Acme Classic Watch"),
        confidence: Confidence(541),
    });
    let n = encode(&verdict, &mut frame).unwrap();
    input.extend_from_slice(&frame[..n]);
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&input).unwrap();
    } // closed: end of input

    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("simulator did not exit at end of input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines().any(|l| l.starts_with("dropped ")),
        "noise must be reported: {log}"
    );
    assert!(log.lines().any(|l| l == "screen inconclusive"), "{log}");

    // What the controller said on stdout decodes: its hello comes first.
    let said: Vec<_> = Decoder::new().feed(&output.stdout).collect();
    assert!(
        matches!(
            said.first(),
            Some(Ok(Message::Hello(Hello {
                role: Role::Controller,
                ..
            })))
        ),
        "{said:?}"
    );

    let png = std::fs::read(out.join("screen.png")).unwrap();
    let golden = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/tests/golden/inconclusive.png"),
    )
    .unwrap();
    let decode = |bytes: &[u8]| {
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        buf
    };
    assert!(
        decode(&png) == decode(&golden),
        "screen.png differs from the inconclusive golden"
    );
}
