//! Frame sources: where the daemon's frames come from.
//!
//! - [`replay`]: a folder of images (or one image), paced at a frame rate, optionally looped — for demos,
//!   tests and recorded conveyor runs.
//! - [`video`]: the same for a video file (a belt or kiosk recording), decoded by ffmpeg.
//! - [`camera`]: a V4L2 camera through nokhwa, read on its own thread under a stall watchdog
//!   ([`watchdog`]) that reopens it with backoff when frames stop.
//!
//! A source hands out [`OwnedFrame`]s that keep the capture buffer's own layout (stride, pixel format),
//! so the detector converts at most once. [`Source::next`] never blocks for long: it returns within
//! about [`POLL`] even when a camera is wedged, so the daemon can always shut down.

pub mod camera;
pub mod replay;
pub mod video;
pub mod watchdog;

use std::time::Duration;

use thiserror::Error;

pub use replay::Replay;

/// Longest a [`Source::next`] call may block before it returns [`Next::Idle`].
pub const POLL: Duration = Duration::from_millis(200);

/// The frame every source hands out (`hallmark_core::frame`).
pub use hallmark_core::frame::OwnedFrame;

/// The state a camera is in, for status, metrics and health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Opening (first time or after a loss).
    Opening,
    /// Frames are arriving.
    Streaming,
    /// Frames stopped or the device failed; waiting to reopen.
    Reconnecting,
    /// A replay reached its end.
    Ended,
}

impl SourceState {
    /// The label in metrics and telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Opening => "opening",
            SourceState::Streaming => "streaming",
            SourceState::Reconnecting => "reopening",
            SourceState::Ended => "ended",
        }
    }
}

/// What one call to [`Source::next`] produced.
#[derive(Debug)]
pub enum Next {
    Frame(OwnedFrame),
    /// No frame within the poll interval (a camera between frames, a paced replay, a reopening camera).
    Idle,
    /// One input could not be used (a corrupt image in a replay, a frame the camera garbled); the
    /// source goes on.
    Skipped {
        origin: String,
        reason: String,
    },
    /// The source changed state.
    State(SourceState),
    /// No more frames will come (a replay that does not loop).
    End,
}

#[derive(Debug, Error)]
pub enum SourceError {
    /// The source cannot start at all (no such camera, an empty replay folder): fatal at start-up.
    #[error("{0}")]
    Open(String),
}

/// A stream of frames.
pub trait Source: Send {
    /// A short description for logs and events (`replay:models/samples/northwind`, `camera:/dev/video0`).
    fn name(&self) -> String;
    /// The next frame or event; returns within about [`POLL`].
    fn next(&mut self) -> Next;
}
