//! `hallmark evidence export`: what a device was unsure of, as a COCO dataset for labelling and the
//! brand's next upload. Reads the device configuration only for `agent.state_dir` when `--state` is not
//! given.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Counterfeit and inconclusive verdicts whose evidence pictures are still in STATE/evidence/, as a
    /// COCO dataset (OUT/annotations.json, OUT/images/) pre-labelled with the model's boxes. Events come
    /// from STATE/spool.redb (stop the agent first) and from --events files (JSON lines, as `hallmark run`
    /// prints them or the fleet's store keeps them).
    Export {
        /// The agent's state folder (default: agent.state_dir).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Verdict events, JSON lines (repeat for several files).
        #[arg(long, value_name = "FILE")]
        events: Vec<PathBuf>,
        /// The folder the frames of --events files are read from (a replay's or a capture's): a frame
        /// an --events line names elsewhere gets its evidence picture instead. The spool's own events
        /// may name any frame.
        #[arg(long, value_name = "DIR")]
        frames: Option<PathBuf>,
        /// Where the dataset is written.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `state_dir`: the configured state folder, asked for only when `--state` is not given.
pub fn run(
    command: EvidenceCommand,
    state_dir: impl FnOnce() -> anyhow::Result<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let EvidenceCommand::Export {
        state,
        events,
        frames,
        out,
    } = command;
    let state = match state {
        Some(s) => s,
        None => state_dir()?,
    };
    let s = crate::evidence_export::export(&state, &events, frames.as_deref(), &out)?;
    println!(
        "{}: {} images ({} raw frames) from {} counterfeit and inconclusive verdicts; {} named a picture no longer there, {} unreadable",
        out.display(),
        s.images,
        s.raw_frames,
        s.events,
        s.no_picture,
        s.unreadable
    );
    Ok(ExitCode::SUCCESS)
}
