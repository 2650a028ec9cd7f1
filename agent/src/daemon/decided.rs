//! What the modes hand to the sinks: one decided item (a pack's one verdict), with the frame it was
//! seen best in, for the evidence picture.

use std::sync::Arc;

use hallmark_detect::Detection;

use crate::capture::OwnedFrame;
use crate::verdict::{Code, Decision};

/// A sighting of an item (the best one, for a tracked item): the frame, its box there, and its
/// detections there.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub frame: Arc<OwnedFrame>,
    pub bbox: [f32; 4],
    pub detections: Vec<Detection>,
}

/// A pack's verdict, decided once.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The track (conveyor, triggered kiosk scan) or per-frame item number this verdict belongs to.
    pub track: u64,
    /// Frames the verdict was aggregated over (0 for `no_product`).
    pub frames: u32,
    pub decision: Decision,
    pub codes: Vec<Code>,
    /// `None` for `no_product` (nothing was seen).
    pub last: Option<Sighting>,
    /// The item a kiosk scan is about (shown on the screen).
    pub primary: bool,
}

impl Decided {
    /// Serials this verdict's codes carry (remembered to spot cloned codes).
    pub fn serials(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().filter_map(|c| c.serial.as_deref())
    }
}
