//! The frame step: a frame's detections and the codes read in it → items → one verdict per item, and
//! the primary item's as the frame's. `hallmark scan`, the daemon (`hallmark run`), a bundle's
//! self-test and `hallmark bench` all judge a frame through [`judge_frame`], so an image gets the same
//! verdicts whichever of them looks at it; what differs between them is only what they do with the
//! verdicts (a scan record, the modes, a self-test's expectation, a timing).
//!
//! Reading barcodes is not pure (a C++ decoder over the frame's pixels): the caller hands in a
//! [`CodeReader`], asked once per frame for the codes inside the items' boxes.

use hallmark_detect::{Detection, Frame};
use hallmark_proto::manifest::Manifest;

use crate::verdict::{group, judge_items, Code, Context, FrameVerdict};

/// Reads the barcodes inside item boxes of a frame.
pub trait CodeReader {
    /// The codes found inside `boxes` (frame pixels) of `frame`, in frame pixels, each symbol once.
    fn read(&mut self, frame: Frame<'_>, boxes: &[[f32; 4]]) -> Vec<Code>;
}

/// No barcodes: the detector alone decides (`verdict.barcodes = false`; the bench's verdict stage).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCodes;

impl CodeReader for NoCodes {
    fn read(&mut self, _: Frame<'_>, _: &[[f32; 4]]) -> Vec<Code> {
        Vec::new()
    }
}

/// Judges one frame: its detections grouped into items (once), the codes `codes` reads inside the
/// items' boxes, every item's verdict by the rule, and the primary item. `ctx` has today's date and the
/// memory of SGTINs seen before.
pub fn judge_frame(
    frame: Frame<'_>,
    detections: &[Detection],
    codes: &mut dyn CodeReader,
    manifest: &Manifest,
    ctx: &Context<'_>,
) -> FrameVerdict {
    let items = group(detections);
    let codes = if items.is_empty() {
        Vec::new()
    } else {
        let boxes: Vec<[f32; 4]> = items.iter().map(|i| i.bbox).collect();
        codes.read(frame, &boxes)
    };
    judge_items(
        detections,
        items,
        &codes,
        manifest,
        (frame.width, frame.height),
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{judge, test_manifest, VerdictKind};

    /// Hands out fixed codes and records the boxes it was asked about.
    struct Fixed(Vec<Code>, Vec<Vec<[f32; 4]>>);

    impl CodeReader for Fixed {
        fn read(&mut self, _: Frame<'_>, boxes: &[[f32; 4]]) -> Vec<Code> {
            self.1.push(boxes.to_vec());
            self.0.clone()
        }
    }

    #[test]
    fn the_step_asks_for_codes_in_the_item_boxes_and_judges_as_the_rule_does() {
        let m = test_manifest();
        let pixels = vec![0u8; 960 * 720 * 3];
        let frame = Frame::rgb(960, 720, &pixels);
        let dets = [
            Detection {
                class: 0,
                score: 0.9,
                bbox: [0.0, 200.0, 200.0, 500.0],
            },
            Detection {
                class: 1,
                score: 0.4,
                bbox: [2.0, 200.0, 202.0, 500.0],
            },
        ];
        let wrong_digit = Code {
            format: "ean13".into(),
            text: "5012345000014".into(),
            gtin: Some("05012345000014".into()),
            serial: None,
            expiry: None,
            check_digit_ok: false,
            bbox: [50.0, 300.0, 90.0, 340.0],
        };
        let ctx = Context {
            today: "2026-01-01",
            seen: &|_| false,
        };
        let mut reader = Fixed(vec![wrong_digit.clone()], Vec::new());
        let got = judge_frame(frame, &dets, &mut reader, &m, &ctx);
        assert_eq!(
            reader.1,
            vec![vec![[0.0, 200.0, 200.0, 500.0]]],
            "one item, asked once"
        );
        assert_eq!(got, judge(&dets, &[wrong_digit], &m, (960, 720), &ctx));
        assert_eq!(got.verdict.verdict, VerdictKind::Counterfeit);
        let none = judge_frame(frame, &[], &mut reader, &m, &ctx);
        assert_eq!(none.verdict.verdict, VerdictKind::NoProduct);
        assert_eq!(reader.1.len(), 1, "no item, no codes asked for");
    }
}
