//! The simulator's loop.
//!
//! Three helper threads turn blocking I/O into one stream of [`Input`]s: link bytes, console lines,
//! and a writer that drains outgoing frames. The loop itself is single-threaded: it feeds bytes to the
//! decoder and messages to the controller, ticks the controller at least every 20 ms, and carries out
//! the controller's effects. After every received message the screen is saved to `screen.png`.
//!
//! Event lines on stderr (one per event, stable words, for people and tests):
//! `link PATH`, `rx KIND`, `tx KIND`, `dropped REASON`, `screen NAME`, `actuator on|off`, `button`.

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
    };
    out.apply(&ctrl, fx)?;
    let mut decoder = Decoder::new();

    loop {
        let wait = Duration::from_millis(ctrl.next_deadline().saturating_sub(now())).min(TICK);
        match rx.recv_timeout(wait) {
            Ok(Input::Bytes(bytes)) => {
                for r in decoder.feed(&bytes) {
                    match r {
                        Ok(msg) => {
                            event(format_args!("rx {}", msg.kind()));
                            let fx = ctrl.on_message(now(), msg);
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
        out.apply(&ctrl, fx)?;
    }
}

struct Outputs<'a> {
    fb: &'a mut Framebuffer,
    png: &'a std::path::Path,
    outgoing: &'a SyncSender<Vec<u8>>,
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
        if let Some(msg) = fx.send {
            self.send(&msg);
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
