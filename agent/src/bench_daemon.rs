//! `hallmark bench --daemon SECONDS [--rounds N]`: the whole daemon (capture, pre-processing overlapped
//! with inference, barcodes, verdicts) on a preloaded, unthrottled replay with its sinks off, against a
//! bare ONNX Runtime `run` of the same model in the same process. The goal: frames per second ≥ 0.95 ×
//! 1 / bare run time.
//!
//! Design: a shared machine's load shifts over seconds, so one bare measurement before and one after a
//! long daemon window can judge the same build 0.86 one time and 2.0 the next. The time is cut into
//! `rounds` daemon windows, each between two short bare windows; each round's ratio is taken against the
//! bare windows on both sides of it, and the report gives the median round and the spread.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Config, Mode, SourceKind, Trigger};
use crate::detector::Frame;
use crate::pipeline::Pipeline;

/// One daemon window and the bare runs around it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Round {
    /// The mean of the bare medians before and after the window.
    pub bare_run_ms: f64,
    pub daemon_fps: f64,
    pub ratio: f64,
    pub frames: u64,
}

#[derive(Debug, Serialize)]
pub struct DaemonReport {
    /// The median round's figures.
    pub bare_run_ms: f64,
    pub target_fps: f64,
    pub daemon_fps: f64,
    /// daemon fps × bare run time (1.0 = as fast as bare inference back to back): the median round.
    pub ratio: f64,
    /// The lowest and highest round's ratio.
    pub ratio_min: f64,
    pub ratio_max: f64,
    pub rounds: Vec<Round>,
    pub frames: u64,
    pub dropped: u64,
    pub intra_threads: usize,
    /// Whether barcodes were read in every item of every frame (`verdict.barcodes`).
    pub barcodes: bool,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
}

impl DaemonReport {
    pub fn human(&self) -> String {
        format!(
            "bare ONNX Runtime run      {:>8.3} ms  (→ {:.1} fps)\n\
             daemon, whole pipeline     {:>8.1} fps  over {} frames, {} dropped\n\
             ratio (fps × bare run)     {:>8.3}  (goal ≥ 0.95; median of {} rounds, {:.3}–{:.3})\n\
             intra-op threads           {:>8}\n\
             barcodes read              {:>8}\n\
             RSS now / peak             {:>8.1} / {:.1} MiB",
            self.bare_run_ms,
            self.target_fps,
            self.daemon_fps,
            self.frames,
            self.dropped,
            self.ratio,
            self.rounds.len(),
            self.ratio_min,
            self.ratio_max,
            self.intra_threads,
            self.barcodes,
            self.rss_mib,
            self.peak_rss_mib
        )
    }
}

/// Median bare `run` time over `n` runs on a prepared input.
fn bare_median(pipeline: &mut Pipeline, n: usize) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        pipeline.detector.run_bare()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Bare runs per bare window (a median).
const BARE_RUNS: usize = 100;

/// Runs the comparison for `seconds` of daemon time, cut into `rounds` windows.
pub fn run(
    config: &Config,
    images: &std::path::Path,
    seconds: f64,
    rounds: usize,
) -> anyhow::Result<DaemonReport> {
    anyhow::ensure!(rounds >= 1, "--rounds must be at least 1");
    let barcodes = config.verdict.barcodes;
    let mut pipeline =
        Pipeline::open(config.runtime.clone(), config.bundle(), &config.public_keys)?;
    let first = crate::imageio::inputs::collect_inputs(&[images.to_path_buf()])?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no images in {}", images.display()))?;
    let img = crate::imageio::load(&first, config.image)?.rgb;
    pipeline
        .detector
        .preprocess(Frame::rgb(img.width(), img.height(), img.as_raw()))?;
    bare_median(&mut pipeline, 20)?;
    let mut bare_before = bare_median(&mut pipeline, BARE_RUNS)?;

    let mut c = config.clone();
    c.agent.mode = Mode::Kiosk;
    c.kiosk.trigger = Trigger::Frame;
    c.source.kind = SourceKind::Replay;
    c.source.path = images.to_path_buf();
    c.source.fps = 0.0;
    c.source.looping = true;
    c.source.preload = true;
    c.source.drop_when_busy = false;
    c.output.stdout = false;
    c.evidence.enabled = false;
    c.link.port = None;
    let state = std::env::temp_dir().join(format!("hallmark-bench-{}", std::process::id()));
    c.agent.state_dir = state.clone();
    let window = Duration::from_secs_f64(seconds / rounds as f64);
    let mut out = Vec::with_capacity(rounds);
    let (mut frames, mut dropped) = (0, 0);
    for _ in 0..rounds {
        let summary =
            crate::daemon::run(c.clone(), async move { tokio::time::sleep(window).await })?;
        let _ = std::fs::remove_dir_all(&state);
        let bare_after = bare_median(&mut pipeline, BARE_RUNS)?;
        let bare = (bare_before + bare_after) / 2;
        bare_before = bare_after;
        let fps = if summary.busy.is_zero() {
            0.0
        } else {
            summary.frames.saturating_sub(1) as f64 / summary.busy.as_secs_f64()
        };
        frames += summary.frames;
        dropped += summary.dropped;
        out.push(Round {
            bare_run_ms: bare.as_secs_f64() * 1e3,
            daemon_fps: fps,
            ratio: fps * bare.as_secs_f64(),
            frames: summary.frames,
        });
    }
    let mut by_ratio = out.clone();
    by_ratio.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
    let median = by_ratio[by_ratio.len() / 2];
    let (rss, peak) = rss_mib();
    Ok(DaemonReport {
        bare_run_ms: median.bare_run_ms,
        target_fps: 1e3 / median.bare_run_ms,
        daemon_fps: median.daemon_fps,
        ratio: median.ratio,
        ratio_min: by_ratio[0].ratio,
        ratio_max: by_ratio[by_ratio.len() - 1].ratio,
        rounds: out,
        frames,
        dropped,
        intra_threads: pipeline.runtime.threads(),
        barcodes,
        rss_mib: rss,
        peak_rss_mib: peak,
    })
}

/// Resident and peak resident memory of this process, from `/proc/self/status` (0 elsewhere).
pub fn rss_mib() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
