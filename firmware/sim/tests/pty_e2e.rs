//! End to end over a pseudo-terminal: the real `hallmark-sim` binary on one side, the agent's real
//! link client (`hallmark-host-link`, via `serialport`) on the other.
//!
//! Every wait is bounded (deadline per step); the simulator is killed when a test ends, pass or fail.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use hallmark_host_link::link::*;
use hallmark_host_link::{Event, LinkClient, Options};

const STEP: Duration = Duration::from_secs(10);

/// A running simulator: its event lines, its console, its link path and output folder.
struct Sim {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<String>,
    path: PathBuf,
    out: PathBuf,
}

impl Sim {
    fn start(name: &str) -> Sim {
        let out =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut child = Command::new(env!("CARGO_BIN_EXE_hallmark-sim"))
            .args([
                "--out",
                out.to_str().unwrap(),
                "--offline-after-ms",
                "1500",
                "--heartbeat-ms",
                "300",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hallmark-sim");
        let stdin = child.stdin.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sim = Sim {
            child,
            stdin,
            events,
            path: PathBuf::new(),
            out,
        };
        let link = sim.wait_for(|l| l.starts_with("link "));
        sim.path = PathBuf::from(link.trim_start_matches("link "));
        sim
    }

    /// Waits for an event line matching `pred`; panics with the lines seen if none comes in time.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("simulator event not seen within {STEP:?}; saw: {seen:#?}");
    }

    fn press(&mut self) {
        writeln!(self.stdin, "press").expect("console");
        self.stdin.flush().unwrap();
    }

    fn screen_rgb(&self) -> Vec<u8> {
        read_png(&self.out.join("screen.png"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_png(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    buf
}

fn golden(name: &str) -> Vec<u8> {
    read_png(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../ui/tests/golden")
            .join(format!("{name}.png")),
    )
}

fn client(path: &Path) -> LinkClient {
    LinkClient::spawn(
        path,
        Options {
            heartbeat_every: Duration::from_millis(200),
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(200),
            ..Options::default()
        },
    )
}

/// Waits for a client event matching `pred`.
fn expect_event(c: &LinkClient, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + STEP;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match c.recv_timeout(left) {
            Ok(e) if pred(&e) => return e,
            Ok(e) => seen.push(e),
            Err(_) => break,
        }
    }
    panic!("no {what} within {STEP:?}; client saw: {seen:#?}");
}

/// The same verdict the `counterfeit` golden screenshot shows.
fn counterfeit_verdict() -> Message {
    Message::ShowVerdict(ShowVerdict {
        item_id: 1042,
        verdict: Verdict::Counterfeit,
        brand: text_truncated("Acme"),
        product: text_truncated("Acme Classic Watch"),
        confidence: Confidence(912),
    })
}

#[test]
fn counterfeit_reject_button_and_lost_heartbeat_over_a_pty() {
    let mut sim = Sim::start("e2e");
    let c = client(&sim.path);
    expect_event(&c, "connection", |e| *e == Event::Connected);

    // The agent's hello brings the kiosk online, and the kiosk answers with its own.
    sim.wait_for(|l| l == "screen idle");
    expect_event(
        &c,
        "controller hello",
        |e| matches!(e, Event::Message(Message::Hello(h)) if h.role == Role::Controller && h.protocol == PROTOCOL_VERSION),
    );

    // A counterfeit verdict: the simulator's panel is exactly the golden counterfeit screen.
    c.send(counterfeit_verdict()).unwrap();
    sim.wait_for(|l| l == "screen counterfeit");
    assert!(
        sim.screen_rgb() == golden("counterfeit"),
        "screen.png differs from the counterfeit golden"
    );

    // A reject pulse reaches the actuator and ends on time.
    c.send(Message::Reject(Reject {
        item_id: 1042,
        pulse_ms: 300,
    }))
    .unwrap();
    sim.wait_for(|l| l == "actuator on");
    let on = Instant::now();
    sim.wait_for(|l| l == "actuator off");
    let held = on.elapsed();
    assert!(
        held >= Duration::from_millis(250),
        "pulse ended after only {held:?}"
    );

    // The kiosk button comes back to the agent as a trigger.
    sim.press();
    expect_event(&c, "trigger", |e| {
        matches!(e, Event::Message(Message::Trigger(Trigger { seq: 1 })))
    });

    // The agent goes away: no more heartbeats. The counterfeit stays up, marked "link lost", so the
    // clerk still sees it; a press acknowledges it and the screen says what is true now.
    drop(c);
    sim.wait_for(|l| l == "screen counterfeit_link_lost");
    assert!(
        sim.screen_rgb() == golden("counterfeit_link_lost"),
        "screen.png differs from the counterfeit_link_lost golden"
    );
    sim.press();
    sim.wait_for(|l| l == "screen offline");
    assert!(
        sim.screen_rgb() == golden("offline"),
        "screen.png differs from the offline golden"
    );
}

#[test]
fn the_client_reconnects_when_the_port_disappears_and_comes_back() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("reconnect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = dir.join("ttyKIOSK");
    let _ = std::fs::remove_file(&port);

    let mut first = Sim::start("reconnect-a");
    std::os::unix::fs::symlink(&first.path, &port).unwrap();
    let c = client(&port);
    expect_event(&c, "first connection", |e| *e == Event::Connected);
    first.wait_for(|l| l == "rx hello");

    // Unplug: the simulator (and with it the pty) goes away; the symlink now leads nowhere.
    drop(first);
    expect_event(&c, "disconnection", |e| {
        matches!(e, Event::Disconnected { .. })
    });

    // Plug a new controller in at the same path.
    let mut second = Sim::start("reconnect-b");
    std::fs::remove_file(&port).unwrap();
    std::os::unix::fs::symlink(&second.path, &port).unwrap();
    expect_event(&c, "second connection", |e| *e == Event::Connected);
    second.wait_for(|l| l == "rx hello");
    second.wait_for(|l| l == "screen idle");

    // And the link works: a verdict shows on the new controller.
    c.send(counterfeit_verdict()).unwrap();
    second.wait_for(|l| l == "screen counterfeit");
    let _ = std::fs::remove_dir_all(&dir);
}
