//! Barcodes in a frame: each item's box (a little enlarged, since a detector's box may clip the label's
//! edge) is cropped without a copy (the crop is a window of the frame's rows) and handed to
//! `hallmark-barcode`; what it reads becomes a [`Code`] in frame pixels for the verdict rule.
//! [`Barcodes`] is the frame step's reader (`hallmark_core::step::CodeReader`).

use hallmark_core::step::CodeReader;
use hallmark_core::verdict::Code;
use hallmark_detect::Frame;

/// The frame step's barcode reader; keeps a scratch buffer across frames.
#[derive(Debug, Default)]
pub struct Barcodes {
    scratch: Vec<u8>,
}

impl CodeReader for Barcodes {
    fn read(&mut self, frame: Frame<'_>, boxes: &[[f32; 4]]) -> Vec<Code> {
        read(frame, boxes, &mut self.scratch)
    }
}

/// The GTINs of the barcodes anywhere in a frame, for routing it to a brand. The frame is read as four
/// overlapping quarters (55% of each side): measured on the samples, that finds every code the whole
/// frame gives and one more (a small EAN-13 the whole 960×720 frame misses), at 26–46 ms against
/// 13–34 ms for the whole frame (release build, 2 busy cores). It runs on the pre-processing thread,
/// beside inference, and only when more than one brand is served.
pub fn frame_gtins(frame: hallmark_detect::Frame<'_>, scratch: &mut Vec<u8>) -> Vec<String> {
    let (w, h) = (frame.width as f32, frame.height as f32);
    let quarters = [(0.0, 0.0), (0.45, 0.0), (0.0, 0.45), (0.45, 0.45)]
        .map(|(x, y)| [x * w, y * h, (x + 0.55) * w, (y + 0.55) * h]);
    read(frame, &quarters, scratch)
        .into_iter()
        .filter_map(|c| c.gtin)
        .collect()
}

/// How much each side of an item's box is widened before looking for codes, as a share of its size.
const MARGIN: f32 = 0.04;

/// Reads the codes inside each of `boxes`. `scratch` holds the frame as packed RGB when it arrives in
/// another layout (reused across frames).
pub fn read(frame: Frame<'_>, boxes: &[[f32; 4]], scratch: &mut Vec<u8>) -> Vec<Code> {
    if boxes.is_empty() || frame.validate().is_err() {
        return Vec::new();
    }
    let (data, stride): (&[u8], usize) = if frame.format == hallmark_detect::PixelFormat::Rgb8 {
        (frame.data, frame.stride)
    } else {
        frame.to_packed_rgb(scratch);
        (scratch.as_slice(), frame.width as usize * 3)
    };
    let (fw, fh) = (frame.width as f32, frame.height as f32);
    let mut out: Vec<Code> = Vec::new();
    for b in boxes {
        let (mx, my) = ((b[2] - b[0]) * MARGIN, (b[3] - b[1]) * MARGIN);
        let x1 = (b[0] - mx).clamp(0.0, fw) as usize;
        let y1 = (b[1] - my).clamp(0.0, fh) as usize;
        let x2 = (b[2] + mx).clamp(0.0, fw) as usize;
        let y2 = (b[3] + my).clamp(0.0, fh) as usize;
        if x2 <= x1 + 8 || y2 <= y1 + 8 {
            continue;
        }
        let start = y1 * stride + x1 * 3;
        let end = (y2 - 1) * stride + x2 * 3;
        let Some(window) = data.get(start..end) else {
            continue;
        };
        for bc in hallmark_barcode::decode_crop(window, (x2 - x1) as u32, (y2 - y1) as u32, stride)
        {
            let bbox = [
                bc.bbox[0] + x1 as f32,
                bc.bbox[1] + y1 as f32,
                bc.bbox[2] + x1 as f32,
                bc.bbox[3] + y1 as f32,
            ];
            let code = Code {
                format: serde_json::to_value(bc.format)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                text: bc.text,
                gtin: bc.gtin,
                serial: bc.serial,
                expiry: bc.expiry.map(|d| d.to_string()),
                check_digit_ok: bc.check_digit_ok,
                bbox,
            };
            push_unique(&mut out, code);
        }
    }
    out
}

/// Adds `code` unless it is a symbol already read: overlapping item boxes may see one symbol twice (at
/// boxes a pixel apart), and one symbol read twice would look like a cloned serial. The same text at
/// another place is another symbol (two packs carrying one code: the clone the verdict rule looks for).
fn push_unique(out: &mut Vec<Code>, code: Code) {
    let same_symbol = |c: &Code| {
        c.text == code.text
            && c.format == code.format
            && hallmark_detect::nms::iou(&c.bbox, &code.bbox) >= 0.5
    };
    if !out.iter().any(same_symbol) {
        out.push(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str, bbox: [f32; 4]) -> Code {
        Code {
            format: "datamatrix".into(),
            text: text.into(),
            gtin: None,
            serial: None,
            expiry: None,
            check_digit_ok: true,
            bbox,
        }
    }

    #[test]
    fn one_symbol_seen_through_two_boxes_is_one_code_the_same_text_elsewhere_is_another() {
        let mut out = Vec::new();
        push_unique(&mut out, code("(21)SN1", [100.0, 100.0, 140.0, 140.0]));
        push_unique(&mut out, code("(21)SN1", [101.0, 100.0, 141.0, 140.0]));
        assert_eq!(out.len(), 1, "the same symbol a pixel apart");
        push_unique(&mut out, code("(21)SN1", [600.0, 100.0, 640.0, 140.0]));
        assert_eq!(out.len(), 2, "one text on two packs is two codes");
        push_unique(&mut out, code("(21)SN2", [100.0, 100.0, 140.0, 140.0]));
        assert_eq!(out.len(), 3);
    }
}
