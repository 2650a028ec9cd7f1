//! The pure stages of Hallmark's YOLOv5 detector: everything between a camera frame and boxes in that
//! frame's pixels except the ONNX Runtime call itself (which lives in the agent).
//!
//! Stages, each in its own file, in the order a frame meets them:
//! [`frame`] (a borrowed frame with its stride and pixel format) → [`letterbox`] (geometry) →
//! [`preprocess`] (convert, resize, pad, normalise into the caller's input tensor) → *the model* →
//! [`decode`] (either output layout, confidence filter) → [`nms`] (class-aware, at most
//! [`MAX_DETECTIONS`]) → [`postprocess`] (scale back to the frame and clip). [`check`] verifies at load
//! time that a graph's ports are the model its manifest describes.
//!
//! Nothing here allocates per frame once the buffers have grown to a frame size seen before.

pub mod check;
pub mod decode;
pub mod frame;
pub mod letterbox;
pub mod nms;
pub mod preprocess;

pub use check::{check_model, Expected, InputLayout, ModelMismatch, Port, TensorType};
pub use decode::{Candidate, Layout, LayoutError};
pub use frame::{Frame, PixelFormat};
pub use letterbox::Letterbox;
pub use preprocess::{PreprocessError, Preprocessor};

/// Most boxes kept per frame (the reference's `max_det` default).
pub const MAX_DETECTIONS: usize = 300;

/// One detected object, in the original frame's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: u32,
    pub score: f32,
    /// `[x1, y1, x2, y2]`, clipped to the frame.
    pub bbox: [f32; 4],
}

/// Post-processing settings (from the manifest unless overridden).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub confidence: f32,
    pub iou: f32,
    pub max_detections: usize,
}

/// Non-maximum suppression on decoded candidates, then boxes back to the original frame. `order` and
/// `keep` are scratch buffers the caller reuses across frames.
pub fn postprocess(
    candidates: &[Candidate],
    lb: &Letterbox,
    settings: Settings,
    order: &mut Vec<usize>,
    keep: &mut Vec<usize>,
    out: &mut Vec<Detection>,
) {
    nms::nms(
        candidates,
        settings.iou,
        settings.max_detections,
        order,
        keep,
    );
    out.clear();
    out.extend(keep.iter().map(|&i| {
        let c = &candidates[i];
        Detection {
            class: c.class,
            score: c.score,
            bbox: lb.to_original(c.bbox),
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postprocess_suppresses_then_scales_boxes_to_the_frame() {
        let lb = Letterbox::new(1920, 1080, 320, 320);
        let c = [
            Candidate {
                bbox: [100.0, 100.0, 110.0, 120.0],
                score: 0.9,
                class: 2,
            },
            Candidate {
                bbox: [101.0, 100.0, 111.0, 120.0],
                score: 0.8,
                class: 2,
            },
            Candidate {
                bbox: [300.0, 200.0, 330.0, 260.0],
                score: 0.7,
                class: 0,
            },
        ];
        let settings = Settings {
            confidence: 0.25,
            iou: 0.45,
            max_detections: 300,
        };
        let (mut o, mut k, mut out) = (Vec::new(), Vec::new(), Vec::new());
        postprocess(&c, &lb, settings, &mut o, &mut k, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].class, out[0].score), (2, 0.9));
        assert!((out[0].bbox[0] - 600.0).abs() < 1e-3, "{:?}", out[0].bbox);
        // The second box ran off the frame's right and bottom edges: clipped.
        assert_eq!((out[1].bbox[2], out[1].bbox[3]), (1920.0, 1080.0));
    }
}
