//! Preprocessing: a decoded RGB frame into the model's input, in place: NCHW float32 (the main model)
//! or NHWC uint8 (a variant that normalises inside its graph).
//!
//! Letterbox resize with bilinear interpolation of fixed kernel size (what OpenCV's `INTER_LINEAR`, used
//! by the reference, computes; SIMD via `fast_image_resize`), pad 114, RGB, /255, planar. The resize
//! buffer, the resizer and the tensor are owned by the caller and reused, so a frame of a size seen
//! before allocates nothing.

use fast_image_resize::{
    images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
};
use thiserror::Error;

use crate::frame::{Frame, FrameError};
use crate::letterbox::Letterbox;

#[derive(Debug, Error)]
pub enum PreprocessError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("resize failed: {0}")]
    Resize(String),
}

/// Reusable state of the preprocessing stage.
pub struct Preprocessor {
    scratch: Scratch,
    /// `v / 255` for every byte, computed as the reference does (f32 division).
    lut: [f32; 256],
}

impl Default for Preprocessor {
    fn default() -> Self {
        Self::new()
    }
}

impl Preprocessor {
    pub fn new() -> Self {
        let mut lut = [0f32; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = i as f32 / 255.0;
        }
        Preprocessor {
            scratch: Scratch {
                resizer: Resizer::new(),
                options: ResizeOptions::new()
                    .resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear)),
                resized: Vec::new(),
                packed: Vec::new(),
            },
            lut,
        }
    }

    /// Letterboxes `frame` into `tensor` (`3 × dst_height × dst_width` floats, planar RGB /255): the
    /// input of the main model.
    pub fn run(
        &mut self,
        frame: Frame<'_>,
        dst_width: u32,
        dst_height: u32,
        tensor: &mut [f32],
    ) -> Result<Letterbox, PreprocessError> {
        let plane = dst_width as usize * dst_height as usize;
        assert_eq!(
            tensor.len(),
            3 * plane,
            "tensor sized by the caller from the model input"
        );
        let lut = &self.lut;
        let (lb, src) = resize(&mut self.scratch, frame, dst_width, dst_height)?;
        let (rw, rh) = (lb.resized_width as usize, lb.resized_height as usize);
        let pad = lut[114];
        let (r_plane, rest) = tensor.split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        let (left, top) = (lb.left as usize, lb.top as usize);
        let dw = dst_width as usize;
        for y in 0..dst_height as usize {
            let row = y * dw..(y + 1) * dw;
            let (r, g, b) = (
                &mut r_plane[row.clone()],
                &mut g_plane[row.clone()],
                &mut b_plane[row],
            );
            if y < top || y >= top + rh {
                r.fill(pad);
                g.fill(pad);
                b.fill(pad);
                continue;
            }
            r[..left].fill(pad);
            g[..left].fill(pad);
            b[..left].fill(pad);
            r[left + rw..].fill(pad);
            g[left + rw..].fill(pad);
            b[left + rw..].fill(pad);
            let src_row = &src[(y - top) * rw * 3..(y - top + 1) * rw * 3];
            for (((px, r), g), b) in src_row
                .chunks_exact(3)
                .zip(&mut r[left..left + rw])
                .zip(&mut g[left..left + rw])
                .zip(&mut b[left..left + rw])
            {
                *r = lut[px[0] as usize];
                *g = lut[px[1] as usize];
                *b = lut[px[2] as usize];
            }
        }
        Ok(lb)
    }

    /// Letterboxes `frame` into `pixels` (`dst_height × dst_width × 3` bytes, packed RGB): the input of
    /// a `uint8` NHWC variant, whose graph does the /255 and the transpose. The same resize as
    /// [`Preprocessor::run`], so the variant sees exactly the bytes the main model's floats come from.
    pub fn run_u8(
        &mut self,
        frame: Frame<'_>,
        dst_width: u32,
        dst_height: u32,
        pixels: &mut [u8],
    ) -> Result<Letterbox, PreprocessError> {
        let row_bytes = dst_width as usize * 3;
        assert_eq!(
            pixels.len(),
            row_bytes * dst_height as usize,
            "buffer sized by the caller from the model input"
        );
        let (lb, src) = resize(&mut self.scratch, frame, dst_width, dst_height)?;
        let (rw, rh) = (lb.resized_width as usize, lb.resized_height as usize);
        let (left, top) = (lb.left as usize * 3, lb.top as usize);
        for (y, row) in pixels.chunks_exact_mut(row_bytes).enumerate() {
            if y < top || y >= top + rh {
                row.fill(PAD);
                continue;
            }
            row[..left].fill(PAD);
            row[left..left + rw * 3]
                .copy_from_slice(&src[(y - top) * rw * 3..(y - top + 1) * rw * 3]);
            row[left + rw * 3..].fill(PAD);
        }
        Ok(lb)
    }
}

/// The letterbox padding value (the reference's grey).
const PAD: u8 = 114;

/// The buffers the resize reuses.
struct Scratch {
    resizer: Resizer,
    options: ResizeOptions,
    resized: Vec<u8>,
    /// The frame as packed RGB, when it arrives in another layout (converted once, reused).
    packed: Vec<u8>,
}

/// Validates `frame` and resizes it to its letterbox inside `dst_width × dst_height`; returns the
/// letterbox and the resized packed RGB pixels (the frame itself when no resize is needed).
fn resize<'a>(
    s: &'a mut Scratch,
    frame: Frame<'a>,
    dst_width: u32,
    dst_height: u32,
) -> Result<(Letterbox, &'a [u8]), PreprocessError> {
    frame.validate()?;
    let (w, h) = (frame.width, frame.height);
    let rgb: &[u8] = if frame.is_packed_rgb() {
        &frame.data[..w as usize * h as usize * 3]
    } else {
        frame.to_packed_rgb(&mut s.packed);
        &s.packed
    };
    let lb = Letterbox::new(w, h, dst_width, dst_height);
    if lb.is_identity_resize() {
        return Ok((lb, rgb));
    }
    let (rw, rh) = (lb.resized_width as usize, lb.resized_height as usize);
    s.resized.resize(rw * rh * 3, 0);
    let src = ImageRef::new(w, h, rgb, PixelType::U8x3)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    let mut dst = Image::from_slice_u8(
        lb.resized_width,
        lb.resized_height,
        &mut s.resized,
        PixelType::U8x3,
    )
    .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    s.resizer
        .resize(&src, &mut dst, &s.options)
        .map_err(|e| PreprocessError::Resize(e.to_string()))?;
    Ok((lb, &s.resized))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_frame_is_copied_exactly_as_rgb_planes() {
        let (w, h) = (4u32, 4u32);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| [i as u8, 100 + i as u8, 200 + i as u8])
            .collect();
        let mut t = vec![0f32; 3 * 16];
        let lb = Preprocessor::new()
            .run(Frame::rgb(w, h, &rgb), 4, 4, &mut t)
            .unwrap();
        assert_eq!((lb.left, lb.top), (0, 0));
        assert_eq!(t[5], 5.0 / 255.0);
        assert_eq!(t[16 + 5], 105.0 / 255.0);
        assert_eq!(t[32 + 5], 205.0 / 255.0);
    }

    #[test]
    fn wide_frame_is_padded_with_114_above_and_below() {
        let (w, h) = (8u32, 4u32);
        let rgb = vec![255u8; (w * h * 3) as usize];
        let mut t = vec![0f32; 3 * 64];
        let lb = Preprocessor::new()
            .run(Frame::rgb(w, h, &rgb), 8, 8, &mut t)
            .unwrap();
        assert_eq!((lb.top, lb.resized_height), (2, 4));
        let pad = 114.0 / 255.0;
        for plane in 0..3 {
            let p = &t[plane * 64..(plane + 1) * 64];
            assert!(p[..16].iter().all(|&v| v == pad));
            assert!(p[16..48].iter().all(|&v| v == 1.0));
            assert!(p[48..].iter().all(|&v| v == pad));
        }
    }

    #[test]
    fn a_uniform_frame_stays_uniform_through_the_resize() {
        let (w, h) = (1920u32, 1080u32);
        let rgb: Vec<u8> = std::iter::repeat_n([10u8, 20, 30], (w * h) as usize)
            .flatten()
            .collect();
        let mut t = vec![0f32; 3 * 320 * 320];
        Preprocessor::new()
            .run(Frame::rgb(w, h, &rgb), 320, 320, &mut t)
            .unwrap();
        let centre = 160 * 320 + 160;
        assert_eq!(t[centre], 10.0 / 255.0);
        assert_eq!(t[320 * 320 + centre], 20.0 / 255.0);
        assert_eq!(t[2 * 320 * 320 + centre], 30.0 / 255.0);
    }

    #[test]
    fn the_u8_input_holds_the_bytes_the_float_input_is_made_of() {
        // A frame that needs a resize and padding on the left and right.
        let (w, h) = (97u32, 61u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let (dw, dh) = (64u32, 64u32);
        let mut p = Preprocessor::new();
        let mut t = vec![0f32; 3 * 64 * 64];
        let mut u = vec![0u8; 64 * 64 * 3];
        let lb_f = p.run(Frame::rgb(w, h, &rgb), dw, dh, &mut t).unwrap();
        let lb_u = p.run_u8(Frame::rgb(w, h, &rgb), dw, dh, &mut u).unwrap();
        assert_eq!(lb_f, lb_u);
        assert!(lb_u.top > 0, "{lb_u:?}");
        for i in 0..64 * 64 {
            for c in 0..3 {
                assert_eq!(
                    t[c * 64 * 64 + i],
                    u[i * 3 + c] as f32 / 255.0,
                    "pixel {i} channel {c}"
                );
            }
        }
        assert!(u[..3].iter().all(|&v| v == 114));
    }

    #[test]
    fn a_short_buffer_is_an_error() {
        let mut t = vec![0f32; 3 * 16];
        let err = Preprocessor::new()
            .run(Frame::rgb(4, 4, &[0; 10]), 4, 4, &mut t)
            .unwrap_err();
        assert!(matches!(
            err,
            PreprocessError::Frame(FrameError::Size { .. })
        ));
    }
}
