//! `hallmark-sim`: the kiosk controller on a PC. See the library docs for what it does.

use std::path::PathBuf;

use clap::Parser;
use hallmark_sim::{run, Belt, LinkMode, SimOptions};
use hallmark_ui::{Config, CountSource, GateConfig};

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
    /// A conveyor: the belt's speed under a simulated encoder (the reject gate counts its pulses).
    #[arg(long)]
    belt_speed_mm_s: Option<f64>,
    /// Encoder counts per millimetre of belt.
    #[arg(long, default_value_t = 1.0)]
    counts_per_mm: f64,
    /// Report the belt count to the agent this often.
    #[arg(long, default_value_t = 20)]
    belt_report_ms: u64,
    /// The gate log: one JSON line per pack the gate handled (default OUT/gate.jsonl).
    #[arg(long)]
    gate_log: Option<PathBuf>,
    /// Cut the link from START ms after start for LENGTH ms (START:LENGTH).
    #[arg(long, value_parser = parse_cut)]
    cut_link: Option<(u64, u64)>,
}

fn parse_cut(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not START:LENGTH (milliseconds)"))?;
    let n = |v: &str| v.trim().parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
    Ok((n(a)?, n(b)?))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.heartbeat_ms > 0, "--heartbeat-ms must be above 0");
    anyhow::ensure!(a.offline_after_ms > 0, "--offline-after-ms must be above 0");
    let belt = match a.belt_speed_mm_s {
        Some(speed) => {
            anyhow::ensure!(
                speed > 0.0 && a.counts_per_mm > 0.0,
                "--belt-speed-mm-s and --counts-per-mm must be above 0"
            );
            Some(Belt {
                speed_mm_s: speed,
                counts_per_mm: a.counts_per_mm,
                log: a.gate_log.unwrap_or_else(|| a.out.join("gate.jsonl")),
                cut: a.cut_link,
            })
        }
        None => None,
    };
    let gate = belt.as_ref().map(|_| GateConfig {
        counts: CountSource::Encoder,
        report_every_ms: a.belt_report_ms.max(1),
    });
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
            gate,
            ..Config::default()
        },
        belt,
    })
}
