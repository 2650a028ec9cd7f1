//! The frame every source hands out: it owns its bytes and keeps the capture buffer's own layout
//! (stride, pixel format), so the detector converts at most once; [`OwnedFrame::view`] lends it to the
//! detector's pure stages (`hallmark_detect::Frame`).

use std::time::Instant;

use hallmark_detect::{Frame, PixelFormat};

/// A frame that owns its bytes.
#[derive(Debug, Clone)]
pub struct OwnedFrame {
    /// Counts frames from this source, from 0.
    pub seq: u64,
    /// When the source got it.
    pub captured: Instant,
    /// What it came from: a file name, or the camera's name.
    pub origin: String,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub format: PixelFormat,
    pub data: Vec<u8>,
}

impl OwnedFrame {
    /// The detector's borrowed view.
    pub fn view(&self) -> Frame<'_> {
        Frame {
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
            data: &self.data,
        }
    }
}
