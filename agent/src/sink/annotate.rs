//! Annotated copies of scanned images: each item's box coloured by its verdict (the primary item's drawn
//! thicker), labelled with verdict, confidence and the product it shows, and a banner above the image
//! (which is left whole) with the primary item's verdict and reason, so a person sees at a glance what
//! was found. A label names the product, never a model class: an inconclusive item whose best box was a
//! counterfeit class must not read as an accusation. Text uses DejaVu Sans Bold (Bitstream Vera
//! licence, `assets/DejaVuSans-LICENSE.txt`), built into the binary.

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size};
use imageproc::rect::Rect;

use hallmark_core::verdict::{FrameVerdict, ItemVerdict, VerdictKind};

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-Bold.ttf");

const GREEN: Rgb<u8> = Rgb([22, 163, 74]);
const RED: Rgb<u8> = Rgb([220, 38, 38]);
const AMBER: Rgb<u8> = Rgb([217, 119, 6]);
const GREY: Rgb<u8> = Rgb([82, 82, 91]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

fn verdict_colour(kind: VerdictKind) -> Rgb<u8> {
    match kind {
        VerdictKind::Genuine => GREEN,
        VerdictKind::Counterfeit => RED,
        VerdictKind::Inconclusive => AMBER,
        VerdictKind::NoProduct => GREY,
    }
}

/// An item's label: its number, verdict, confidence and the product it shows.
fn label(item: &ItemVerdict) -> String {
    let product = match item.decision.product.as_str() {
        "" => "?",
        p => p,
    };
    format!(
        "#{} {} {:.2} ({product})",
        item.index,
        item.decision.verdict.as_str().to_uppercase(),
        item.decision.confidence
    )
}

/// Draws each item's box, coloured by its verdict and labelled with it, onto `img`, and returns it
/// below a banner with the primary item's verdict and reason.
pub fn annotate(mut img: RgbImage, judged: &FrameVerdict) -> RgbImage {
    // Design: the font is a compile-time constant known to parse; a failure here is a build defect.
    let font = FontRef::try_from_slice(FONT).expect("embedded DejaVu Sans parses");
    let (w, h) = img.dimensions();
    let unit = (w.min(h) as f32 / 40.0).clamp(10.0, 48.0);
    let thickness = ((unit / 6.0).round() as i32).max(2);
    let label_scale = PxScale::from(unit);

    // Last item first, so the primary item's label ends up on top when labels overlap.
    let mut order: Vec<&ItemVerdict> = judged.items.iter().collect();
    order.sort_by_key(|it| Some(it.index) == judged.primary);
    for item in order {
        let colour = verdict_colour(item.decision.verdict);
        let [x1, y1, x2, y2] = item.bbox.map(|v| v.round() as i32);
        let t = if Some(item.index) == judged.primary {
            thickness * 2
        } else {
            thickness
        };
        for k in 0..t {
            let (bw, bh) = (
                (x2 - x1 - 2 * k).max(1) as u32,
                (y2 - y1 - 2 * k).max(1) as u32,
            );
            draw_hollow_rect_mut(&mut img, Rect::at(x1 + k, y1 + k).of_size(bw, bh), colour);
        }
        let label = label(item);
        let (tw, th) = text_size(label_scale, &font, &label);
        let pad = (unit / 5.0) as i32;
        // Keep the label inside the picture when the box touches its right edge.
        let lx = x1.min(w as i32 - tw as i32 - 2 * pad).max(0);
        let ly = if y1 - th as i32 - 2 * pad >= 0 {
            y1 - th as i32 - 2 * pad
        } else {
            y1
        };
        draw_filled_rect_mut(
            &mut img,
            Rect::at(lx, ly).of_size(tw + 2 * pad as u32, th + 2 * pad as u32),
            colour,
        );
        draw_text_mut(
            &mut img,
            WHITE,
            lx + pad,
            ly + pad,
            label_scale,
            &font,
            &label,
        );
    }
    let verdict = &judged.verdict;

    let banner_scale = PxScale::from(unit * 1.3);
    let title = format!(
        "{}  {:.2}",
        verdict.verdict.as_str().replace('_', " ").to_uppercase(),
        verdict.confidence
    );
    let (_, th) = text_size(banner_scale, &font, &title);
    let reason_scale = PxScale::from(unit * 0.8);
    let (_, rh) = text_size(reason_scale, &font, &verdict.reason);
    let pad = (unit / 2.0) as i32;
    let banner_h = (th as i32 + rh as i32 + 3 * pad) as u32;
    let mut out = RgbImage::from_pixel(w, h + banner_h, verdict_colour(verdict.verdict));
    image::imageops::replace(&mut out, &img, 0, banner_h as i64);
    draw_text_mut(&mut out, WHITE, pad, pad, banner_scale, &font, &title);
    draw_text_mut(
        &mut out,
        WHITE,
        pad,
        2 * pad + th as i32,
        reason_scale,
        &font,
        &verdict.reason,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_core::verdict::{decide, Evidence};

    fn item(evidence: Evidence) -> ItemVerdict {
        let m = hallmark_core::verdict::test_manifest();
        ItemVerdict {
            index: 2,
            bbox: [0.0, 0.0, 10.0, 10.0],
            members: vec![0],
            evidence,
            decision: decide(&evidence, &[], &m),
            codes: Vec::new(),
        }
    }

    #[test]
    fn a_weak_counterfeit_box_labels_its_item_by_product_not_by_the_counterfeit_class() {
        // "tea-fake" (class 1) at 0.3: under the counterfeit threshold 0.5, so inconclusive.
        let weak = item(Evidence {
            genuine: None,
            counterfeit: Some((1, 0.3)),
            anchor_class: 1,
        });
        assert_eq!(label(&weak), "#2 INCONCLUSIVE 0.30 (Tea)");
        let called = item(Evidence {
            genuine: Some((0, 0.1)),
            counterfeit: Some((1, 0.9)),
            anchor_class: 1,
        });
        assert_eq!(label(&called), "#2 COUNTERFEIT 0.90 (Tea)");
    }
}
