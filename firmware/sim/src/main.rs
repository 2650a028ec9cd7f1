//! `hallmark-sim`: the kiosk controller on a PC. See the library docs for what it does.

use std::path::PathBuf;

use clap::Parser;
use hallmark_sim::{run, LinkMode, SimOptions};
use hallmark_ui::Config;

/// Simulates the Hallmark kiosk controller: prints `link /dev/pts/N` (open that as the serial port),
/// writes the screen to OUT/screen.png after each message, logs events on stderr. Type `press` on
/// stdin to press the button, `quit` to stop.
#[derive(Parser)]
#[command(name = "hallmark-sim", version)]
struct Args {
    /// Speak the link on stdin/stdout instead of a new pseudo-terminal.
    #[arg(long)]
    stdio: bool,
    /// Folder for screen.png.
    #[arg(long, default_value = "out/sim")]
    out: PathBuf,
    /// Show "agent offline" after this long without a message from the agent.
    #[arg(long, default_value_t = 3000)]
    offline_after_ms: u64,
    /// Send a heartbeat this often.
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    /// Return from a genuine/inconclusive verdict to idle after this long.
    #[arg(long, default_value_t = 8000)]
    verdict_hold_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.heartbeat_ms > 0, "--heartbeat-ms must be above 0");
    anyhow::ensure!(a.offline_after_ms > 0, "--offline-after-ms must be above 0");
    run(SimOptions {
        link: if a.stdio {
            LinkMode::Stdio
        } else {
            LinkMode::Pty
        },
        out_dir: a.out,
        controller: Config {
            heartbeat_every_ms: a.heartbeat_ms,
            offline_after_ms: a.offline_after_ms,
            verdict_hold_ms: a.verdict_hold_ms,
            ..Config::default()
        },
    })
}
