//! The conveyor's reject gate, as the agent plans it: where each pack is on the belt, in encoder
//! counts, and when it reaches the gate downstream of the camera.
//!
//! - [`belt`]: the belt clock (a frame's capture instant → the belt's count then, from the
//!   controller's reports).
//! - [`plan`]: the gate plan (each tracked pack → its target count, the controller's commands, the
//!   margin each decision had).
//!
//! The controller keeps the queue and fires at the count (`hallmark-ui::gate`); a pack still pending
//! when it reaches the gate is handled by `on_late` there, so a stalled agent or a cut link diverts
//! packs instead of letting them pass unchecked.

pub mod belt;
pub mod plan;

pub use belt::BeltClock;
pub use hallmark_proto::event::GateTiming;
pub use plan::{Decision, GatePlan};

/// Which way the belt carries packs across the camera's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    LeftToRight,
    RightToLeft,
    TopToBottom,
    BottomToTop,
}

impl Direction {
    /// Whether a box in a frame of `size` reaches the view's exit edge (its leading edge is cut by
    /// it): the pack is leaving the view.
    pub fn at_exit(self, bbox: [f32; 4], size: (u32, u32)) -> bool {
        plan::along(self, bbox, size).cut_exit
    }
}

/// What the gate does with a pack whose decision has not come when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLate {
    /// Divert it (the default): an unchecked pack never passes.
    Reject,
    Pass,
}

/// Where the gate is and how the camera sees the belt (`[conveyor]` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// From the view's exit edge to the gate, along the belt.
    pub distance_mm: f64,
    /// Encoder counts per millimetre of belt.
    pub counts_per_mm: f64,
    /// The camera's calibration: pixels per millimetre of belt, at the belt's surface.
    pub px_per_mm: f64,
    pub direction: Direction,
    pub on_late: OnLate,
    /// How long the actuator is held on for a pack.
    pub pulse_ms: u16,
    /// Frames a pack is seen in before it is announced (the tracker's `min_frames`).
    pub min_frames: u32,
}

/// What the controller is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateCommand {
    /// A pack to expect (pending) at `arrives_at`, or a moved target for one expected.
    Expect { item: u32, arrives_at: u64 },
    /// The decision for an expected pack.
    Decide { item: u32, reject: bool },
}
