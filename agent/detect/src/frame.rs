//! A borrowed camera or image frame: its size, row stride and pixel format, so a frame goes from the
//! capture buffer to the detector without first being copied into a packed RGB image.
//!
//! Packed RGB with no row padding (what image files decode to) is used as it is; any other layout is
//! converted once, straight into the preprocessor's reused buffer ([`Frame::to_packed_rgb`]).

use thiserror::Error;

/// How the bytes of a frame encode its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 3 bytes per pixel: R, G, B.
    Rgb8,
    /// 3 bytes per pixel: B, G, R (OpenCV's and some cameras' order).
    Bgr8,
    /// YUV 4:2:2, 2 bytes per pixel, `Y0 U Y1 V` for each pair of pixels (the common webcam format).
    Yuyv,
}

impl PixelFormat {
    /// Bytes one row of `width` pixels needs at least.
    pub fn row_bytes(self, width: u32) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => width as usize * 3,
            // Design: a YUYV row holds whole pixel pairs; an odd width still stores the pair.
            PixelFormat::Yuyv => (width as usize).div_ceil(2) * 4,
        }
    }
}

/// A frame borrowed from its owner (a decoded image, a camera buffer).
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the start of the next (≥ the format's row bytes).
    pub stride: usize,
    pub format: PixelFormat,
    pub data: &'a [u8],
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame has no pixels ({width}×{height})")]
    Empty { width: u32, height: u32 },
    #[error(
        "frame stride {stride} is shorter than a row of {width} {format:?} pixels ({row} bytes)"
    )]
    Stride {
        width: u32,
        stride: usize,
        row: usize,
        format: PixelFormat,
    },
    #[error("frame of {width}×{height} ({format:?}, stride {stride}) needs {expected} bytes, got {actual}")]
    Size {
        width: u32,
        height: u32,
        format: PixelFormat,
        stride: usize,
        expected: usize,
        actual: usize,
    },
}

impl<'a> Frame<'a> {
    /// Packed RGB8 with no row padding.
    pub fn rgb(width: u32, height: u32, data: &'a [u8]) -> Frame<'a> {
        Frame {
            width,
            height,
            stride: width as usize * 3,
            format: PixelFormat::Rgb8,
            data,
        }
    }

    /// Checks that the buffer holds every row the size, stride and format promise.
    pub fn validate(&self) -> Result<(), FrameError> {
        let (width, height) = (self.width, self.height);
        if width == 0 || height == 0 {
            return Err(FrameError::Empty { width, height });
        }
        let row = self.format.row_bytes(width);
        if self.stride < row {
            return Err(FrameError::Stride {
                width,
                stride: self.stride,
                row,
                format: self.format,
            });
        }
        // The last row needs only its own bytes, not a whole stride.
        let expected = self.stride * (height as usize - 1) + row;
        if self.data.len() < expected {
            return Err(FrameError::Size {
                width,
                height,
                format: self.format,
                stride: self.stride,
                expected,
                actual: self.data.len(),
            });
        }
        Ok(())
    }

    /// True when the bytes already are packed RGB8 with no padding (no conversion needed).
    pub fn is_packed_rgb(&self) -> bool {
        self.format == PixelFormat::Rgb8 && self.stride == self.width as usize * 3
    }

    /// Writes the frame as packed RGB8 into `out` (resized to fit; reused across frames).
    /// Call [`validate`](Self::validate) first.
    pub fn to_packed_rgb(&self, out: &mut Vec<u8>) {
        let (w, h) = (self.width as usize, self.height as usize);
        out.resize(w * h * 3, 0);
        for (y, dst) in out.chunks_exact_mut(w * 3).enumerate().take(h) {
            let src = &self.data[y * self.stride..];
            match self.format {
                PixelFormat::Rgb8 => dst.copy_from_slice(&src[..w * 3]),
                PixelFormat::Bgr8 => {
                    for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
                        d.copy_from_slice(&[s[2], s[1], s[0]]);
                    }
                }
                PixelFormat::Yuyv => {
                    yuyv_row_to_rgb(&src[..self.format.row_bytes(self.width)], dst)
                }
            }
        }
    }
}

/// One YUYV row to RGB8 with the BT.601 coefficients OpenCV's `COLOR_YUV2RGB_YUYV` uses, in 14-bit
/// fixed point (no float per pixel).
fn yuyv_row_to_rgb(src: &[u8], dst: &mut [u8]) {
    const fn fix(v: f64) -> i32 {
        (v * (1 << 14) as f64 + 0.5) as i32
    }
    const RV: i32 = fix(1.403);
    const GU: i32 = fix(0.344);
    const GV: i32 = fix(0.714);
    const BU: i32 = fix(1.773);
    let clamp = |v: i32| (v >> 14).clamp(0, 255) as u8;
    for (pair, px) in src.chunks_exact(4).zip(dst.chunks_mut(6)) {
        let (u, v) = (pair[1] as i32 - 128, pair[3] as i32 - 128);
        let (r, g, b) = (
            RV * v + (1 << 13),
            -GU * u - GV * v + (1 << 13),
            BU * u + (1 << 13),
        );
        for (i, y) in [pair[0], pair[2]].into_iter().enumerate() {
            if let Some(out) = px.get_mut(i * 3..i * 3 + 3) {
                let y = (y as i32) << 14;
                out.copy_from_slice(&[clamp(y + r), clamp(y + g), clamp(y + b)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_bgr_frame_becomes_packed_rgb() {
        // 2×2 BGR with 2 bytes of padding per row.
        let data = [3, 2, 1, 6, 5, 4, 0, 0, 9, 8, 7, 12, 11, 10, 0, 0];
        let f = Frame {
            width: 2,
            height: 2,
            stride: 8,
            format: PixelFormat::Bgr8,
            data: &data,
        };
        f.validate().unwrap();
        let mut out = Vec::new();
        f.to_packed_rgb(&mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn yuyv_grey_and_colour_convert_as_bt601() {
        // Y=128 with neutral chroma is mid grey; V high pushes red up and green down.
        let data = [128, 128, 128, 128, 76, 85, 76, 255];
        let f = Frame {
            width: 2,
            height: 2,
            stride: 4,
            format: PixelFormat::Yuyv,
            data: &data,
        };
        f.validate().unwrap();
        let mut out = Vec::new();
        f.to_packed_rgb(&mut out);
        assert_eq!(&out[..6], &[128, 128, 128, 128, 128, 128]);
        let (r, g, b) = (out[6], out[7], out[8]);
        assert!(r > 240 && g < 40 && b < 40, "pure-red YUV gave {r} {g} {b}");
    }

    #[test]
    fn short_buffers_and_strides_are_named() {
        let data = [0u8; 10];
        let f = Frame {
            width: 2,
            height: 2,
            stride: 5,
            format: PixelFormat::Rgb8,
            data: &data,
        };
        assert!(matches!(
            f.validate(),
            Err(FrameError::Stride { row: 6, .. })
        ));
        let f = Frame::rgb(2, 2, &data);
        assert!(matches!(
            f.validate(),
            Err(FrameError::Size {
                expected: 12,
                actual: 10,
                ..
            })
        ));
        assert!(matches!(
            Frame::rgb(0, 2, &data).validate(),
            Err(FrameError::Empty { .. })
        ));
    }

    #[test]
    fn the_last_row_needs_no_padding() {
        let data = [0u8; 8 + 6];
        let f = Frame {
            width: 2,
            height: 2,
            stride: 8,
            format: PixelFormat::Rgb8,
            data: &data,
        };
        assert!(f.validate().is_ok());
        assert!(!f.is_packed_rgb());
    }
}
