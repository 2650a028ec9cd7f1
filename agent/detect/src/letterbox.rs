//! Letterbox geometry: how an original frame maps into the model's fixed square input and back.
//!
//! Pure arithmetic, exactly as the YOLOv5 reference (`utils.augmentations.letterbox` with `auto=False`,
//! `scaleup=True`, and `utils.general.scale_boxes`) does it, so that boxes agree with the reference to
//! the pixel: the image is scaled by `gain = min(W/w, H/h)` to `round(w*gain) × round(h*gain)`, centred,
//! and padded (value 114) with `round(pad - 0.1)` pixels on the left/top. Mapping back subtracts the
//! unrounded pad `(W - w*gain) / 2` (as `scale_boxes` does) and divides by the gain, then clips to the
//! original image.

/// Where the resized image sits inside the model input, and how to map boxes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Original image size.
    pub src_width: u32,
    pub src_height: u32,
    /// Model input size.
    pub dst_width: u32,
    pub dst_height: u32,
    /// Size of the resized (unpadded) image inside the input.
    pub resized_width: u32,
    pub resized_height: u32,
    /// Left and top padding in input pixels (the resized image's offset).
    pub left: u32,
    pub top: u32,
    /// Scale from original to input pixels.
    pub gain: f32,
}

impl Letterbox {
    /// The geometry for an image of `src` size letterboxed into `dst`. Sizes must be non-zero.
    pub fn new(src_width: u32, src_height: u32, dst_width: u32, dst_height: u32) -> Self {
        // Design: the reference computes in Python floats (f64); so do we, then store the gain as f32
        // like the torch tensors it is applied to.
        let gain = f64::min(
            dst_height as f64 / src_height as f64,
            dst_width as f64 / src_width as f64,
        );
        let resized_width = (round_half_even(src_width as f64 * gain) as u32).clamp(1, dst_width);
        let resized_height =
            (round_half_even(src_height as f64 * gain) as u32).clamp(1, dst_height);
        let dw = (dst_width - resized_width) as f64 / 2.0;
        let dh = (dst_height - resized_height) as f64 / 2.0;
        Letterbox {
            src_width,
            src_height,
            dst_width,
            dst_height,
            resized_width,
            resized_height,
            left: round_half_even(dw - 0.1) as u32,
            top: round_half_even(dh - 0.1) as u32,
            gain: gain as f32,
        }
    }

    /// True when the reference would skip the resize (the image already has the resized size).
    pub fn is_identity_resize(&self) -> bool {
        self.resized_width == self.src_width && self.resized_height == self.src_height
    }

    /// Maps a box `[x1, y1, x2, y2]` in input pixels back to the original image, clipped to it.
    pub fn to_original(&self, b: [f32; 4]) -> [f32; 4] {
        let gain = f64::min(
            self.dst_height as f64 / self.src_height as f64,
            self.dst_width as f64 / self.src_width as f64,
        );
        let pad_x = ((self.dst_width as f64 - self.src_width as f64 * gain) / 2.0) as f32;
        let pad_y = ((self.dst_height as f64 - self.src_height as f64 * gain) / 2.0) as f32;
        let g = gain as f32;
        let (w, h) = (self.src_width as f32, self.src_height as f32);
        [
            ((b[0] - pad_x) / g).clamp(0.0, w),
            ((b[1] - pad_y) / g).clamp(0.0, h),
            ((b[2] - pad_x) / g).clamp(0.0, w),
            ((b[3] - pad_y) / g).clamp(0.0, h),
        ]
    }
}

/// Python's `round()`: halves go to the even neighbour.
fn round_half_even(v: f64) -> f64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 {
        2.0 * (v / 2.0).round()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landscape_full_hd_is_scaled_by_a_sixth_and_padded_top_and_bottom() {
        let lb = Letterbox::new(1920, 1080, 320, 320);
        assert_eq!((lb.resized_width, lb.resized_height), (320, 180));
        assert_eq!((lb.left, lb.top), (0, 70));
        assert!((lb.gain - 1.0 / 6.0).abs() < 1e-7);
    }

    #[test]
    fn portrait_image_is_padded_left_and_right() {
        let lb = Letterbox::new(480, 640, 320, 320);
        assert_eq!((lb.resized_width, lb.resized_height), (240, 320));
        assert_eq!((lb.left, lb.top), (40, 0));
    }

    #[test]
    fn odd_padding_puts_the_extra_pixel_after_the_image_like_the_reference() {
        // 320 - 317 = 3 → dw = 1.5: left = round(1.4) = 1, right = round(1.6) = 2.
        let lb = Letterbox::new(317, 320, 320, 320);
        assert_eq!(lb.resized_width, 317);
        assert_eq!(lb.left, 1);
    }

    #[test]
    fn small_images_are_scaled_up() {
        let lb = Letterbox::new(160, 80, 320, 320);
        assert_eq!((lb.resized_width, lb.resized_height), (320, 160));
        assert_eq!(lb.top, 80);
    }

    #[test]
    fn input_size_image_is_not_resized() {
        assert!(Letterbox::new(320, 320, 320, 320).is_identity_resize());
        assert!(!Letterbox::new(640, 640, 320, 320).is_identity_resize());
    }

    #[test]
    fn boxes_map_back_to_original_pixels() {
        let lb = Letterbox::new(1920, 1080, 320, 320);
        // A box covering the whole resized image maps to (about) the whole frame.
        let b = lb.to_original([0.0, 70.0, 320.0, 250.0]);
        assert!((b[0] - 0.0).abs() < 1e-3, "{b:?}");
        assert!((b[1] - 0.0).abs() < 1e-3, "{b:?}");
        assert!((b[2] - 1920.0).abs() < 1e-3);
        assert!((b[3] - 1080.0).abs() < 1e-3);
        let mid = lb.to_original([100.0, 100.0, 110.0, 120.0]);
        assert!(
            (mid[0] - 600.0).abs() < 1e-3 && (mid[3] - 300.0).abs() < 1e-2,
            "{mid:?}"
        );
    }

    #[test]
    fn boxes_outside_the_image_are_clipped() {
        let lb = Letterbox::new(1920, 1080, 320, 320);
        let b = lb.to_original([-20.0, 10.0, 400.0, 319.0]);
        assert_eq!(b, [0.0, 0.0, 1920.0, 1080.0]);
    }

    #[test]
    fn python_rounding_sends_halves_to_even() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(1.4), 1.0);
    }
}
