//! Finding and reading the barcodes in one item's crop: an RGB8 picture of a single pack, as the
//! detector boxed it (axis-aligned, the pack at any rotation inside). The crop goes to luma; the engine
//! reads it as is (rows and columns), then turned by 45° while no EAN-13/UPC-A has been found; every
//! EAN-13 reading is checked by resampling and by a strict reader of our own before it is returned;
//! each symbol is interpreted as GS1 (GTIN, check digit, expiry, batch, serial) and placed back in the
//! crop's pixels.

use std::borrow::Cow;

use serde::Serialize;

use crate::ean13::{self, Opinion};
use crate::engine::{Engine, Symbol, Wanted};
use crate::gs1::{self, Date, Gtin};

/// A barcode symbology Hallmark reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Ean13,
    UpcA,
    DataMatrix,
}

impl Format {
    pub fn is_linear(self) -> bool {
        matches!(self, Format::Ean13 | Format::UpcA)
    }
}

/// One barcode read in a crop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Barcode {
    pub format: Format,
    /// EAN-13: the 13 digits; UPC-A: the 12 digits; GS1 DataMatrix: the element string in its
    /// human-readable form `(01)…(17)…(10)…(21)…` (any other DataMatrix: its text as read).
    pub text: String,
    /// The GTIN in its 14-digit form, as printed (its check digit may be wrong: see `check_digit_ok`).
    pub gtin: Option<String>,
    /// True when a GTIN was read and its check digit is right.
    pub check_digit_ok: bool,
    pub serial: Option<String>,
    pub batch: Option<String>,
    pub expiry: Option<Date>,
    /// `[x1, y1, x2, y2]` around the symbol, in the crop's pixels.
    pub bbox: [f32; 4],
}

/// Reads the barcodes in an RGB8 crop (`stride` bytes per row, at least `3 * width`) with the default
/// engine. A buffer too small for its dimensions gives no barcode.
pub fn decode_crop(rgb: &[u8], width: u32, height: u32, stride: usize) -> Vec<Barcode> {
    match Engine::default_engine() {
        Some(engine) => decode_crop_with(engine, rgb, width, height, stride),
        None => Vec::new(),
    }
}

/// [`decode_crop`] with a chosen engine (to compare them).
pub fn decode_crop_with(
    engine: Engine,
    rgb: &[u8],
    width: u32,
    height: u32,
    stride: usize,
) -> Vec<Barcode> {
    let (w, h) = (width as usize, height as usize);
    let Some(luma) = to_luma(rgb, w, h, stride) else {
        tracing::debug!(
            width,
            height,
            stride,
            len = rgb.len(),
            "crop buffer does not match its dimensions"
        );
        return Vec::new();
    };
    read_views(engine, &luma, w, h)
        .iter()
        .map(|s| interpret(s, width as f32, height as f32))
        .collect()
}

/// The turns of the crop tried, in order, until an EAN-13/UPC-A is read.
///
/// Design: a pack turns on a conveyor, so the symbol can lie at any angle. A row scan reads an EAN-13
/// up to about ±20° off its axis (its bars are a third as tall as it is wide); the engine scans rows
/// and columns (TryRotate), each both ways, so the crop as it is covers 0°, 90°, 180° and 270°, and
/// the crop turned 45° covers the diagonals. The DataMatrix detector is rotation-invariant with
/// TryRotate: only linear symbols are looked for in the turned view.
const VIEWS: [f32; 2] = [0.0, 45.0];

/// Crops larger than this (an item crop is up to ~600×600) are only read as they are: a turned view
/// of a whole 4K frame would cost hundreds of milliseconds and ~25 MB.
const TURN_MAX_PIXELS: usize = 1_500_000;

/// How far the two resampled views of a read symbol are turned from the view that found it.
const RESAMPLE_DEGREES: f32 = 6.0;

/// Reads the symbols of a luma crop; corners in the crop's pixels.
///
/// Design: a wrong check digit is exactly what a misread looks like, and a false COUNTERFEIT is the
/// worst outcome, so an EAN-13 reading has to pass two checks before it is returned (a single valid
/// reading that the strict reader confirms skips the first):
/// 1. two of three samplings agree on all 13 digits: the view that found it and the symbol's
///    neighbourhood turned -6° and +6°, which puts every bar edge on other pixels. Each is read with
///    the engine's errors allowed and again without (the first view only when it gave no valid
///    reading): allowed, a misread can out-count the right reading on the same rows and hide it. Where two readings both
///    get two votes, a valid one wins over a wrong check digit.
/// 2. the strict reader (`ean13`) must not read other digits on lines across the symbol, and must
///    agree where the check digit is wrong. Resampling alone is not enough: on a blurred symbol at a
///    half-pixel phase the engine's bar-width bias survives it (the Earl Grey counterfeit's
///    9501101010218 read as 0567161010212, a valid number, in two of three samplings).
///
/// Anything less means no EAN-13 (the verdict falls back to the detector) rather than a guess.
///
/// When no view gave a linear symbol, the crop as it is gets a second look a few pixels over
/// (`SECOND_LOOK_SHIFT`): the engine's finder can miss a clean symbol at one sampling phase of one
/// crop (the Paracetamol counterfeit's EAN-13 was missed at exactly one of 49 crops a few pixels
/// apart, and that crop is where a detector's box fell). The same checks hold on what it reads. It
/// costs one more unturned read, only on crops where nothing linear was read.
fn read_views(engine: Engine, luma: &[u8], w: usize, h: usize) -> Vec<Symbol> {
    let mut out = read_views_once(engine, luma, w, h, &VIEWS, Wanted::All);
    let s = SECOND_LOOK_SHIFT;
    if !out.iter().any(|x| x.format.is_linear()) && w > 4 * s && h > 4 * s {
        let (sw, sh) = (w - s, h - s);
        let shifted: Vec<u8> = (s..h)
            .flat_map(|y| &luma[y * w + s..y * w + w])
            .copied()
            .collect();
        let again = read_views_once(engine, &shifted, sw, sh, &VIEWS[..1], Wanted::Linear);
        out.extend(again.into_iter().map(|mut x| {
            for c in &mut x.corners {
                *c = [c[0] + s as f32, c[1] + s as f32];
            }
            x
        }));
    }
    out
}

/// How far (pixels, right and down) the second look at a crop moves.
const SECOND_LOOK_SHIFT: usize = 2;

/// One pass of [`read_views`] over `views`; the first view looks for `first_wanted`.
fn read_views_once(
    engine: Engine,
    luma: &[u8],
    w: usize,
    h: usize,
    views: &[f32],
    first_wanted: Wanted,
) -> Vec<Symbol> {
    let mut out = Vec::new();
    for (i, &degrees) in views.iter().enumerate() {
        if i > 0 && w * h > TURN_MAX_PIXELS {
            tracing::debug!(w, h, "crop too large to turn: only read as it is");
            break;
        }
        let view = View::new(luma, w, h, degrees);
        let wanted = if i == 0 { first_wanted } else { Wanted::Linear };
        let mut first = view.read(engine, wanted, true);
        if i == 0 {
            out.extend(first.iter().filter(|s| !s.format.is_linear()).cloned());
        }
        first.retain(|s| s.format.is_linear());
        if first.is_empty() {
            continue;
        }
        if let Some(agreed) = agree(engine, luma, w, h, degrees, first) {
            out.push(agreed);
            break;
        }
    }
    out
}

/// The linear symbol that two of three samplings agree on (see `read_views`), given what the first
/// sampling (a whole view turned by `degrees`) read.
fn agree(
    engine: Engine,
    luma: &[u8],
    w: usize,
    h: usize,
    degrees: f32,
    first: Vec<Symbol>,
) -> Option<Symbol> {
    // Design: the common case, a genuine label read cleanly, takes a shortcut: one valid reading, and
    // the strict reader, a different algorithm on its own lines, reads the same 13 digits. A wrong
    // check digit, or any doubt, goes through the resampled views.
    if let [only] = &first[..] {
        if Gtin::parse(&only.text).is_ok() && strict_agrees(luma, w, h, only) {
            return Some(only.clone());
        }
    }
    // The neighbourhood of what was read: the box around every read, grown by a quarter of its size
    // (the quiet zones, and the rows above and below the ones that were read).
    let xs = first.iter().flat_map(|s| s.corners.map(|c| c[0]));
    let ys = first.iter().flat_map(|s| s.corners.map(|c| c[1]));
    let (x1, x2) = xs.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (y1, y2) = ys.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let grow = 0.25 * (x2 - x1).max(y2 - y1) + 8.0;
    let clamp = |v: f32, hi: usize| (v.max(0.0) as usize).min(hi);
    let (rx1, ry1) = (clamp(x1 - grow, w), clamp(y1 - grow, h));
    let (rx2, ry2) = (clamp(x2 + grow + 1.0, w), clamp(y2 + grow + 1.0, h));
    let (rw, rh) = (rx2.saturating_sub(rx1), ry2.saturating_sub(ry1));
    if rw < 2 || rh < 2 {
        return None;
    }
    let mut region = Vec::with_capacity(rw * rh);
    for y in ry1..ry2 {
        region.extend_from_slice(&luma[y * w + rx1..y * w + rx2]);
    }
    // Design: the resampled views are turned so that the symbol lies along their rows (its reading
    // direction, from the first corner to the second, made horizontal), so they need no column scan.
    let [tl, tr, _, _] = first[0].corners;
    let along = -(tr[1] - tl[1]).atan2(tr[0] - tl[0]).to_degrees().round();
    let first_valid = first.iter().any(|s| Gtin::parse(&s.text).is_ok());
    let mut samplings = vec![first];
    if !first_valid {
        // The first sampling read once more, errors not allowed, on the neighbourhood alone.
        let view = View::new(&region, rw, rh, along);
        samplings[0].extend(
            view.read(engine, Wanted::LinearAlongRows, false)
                .into_iter()
                .map(|mut s| {
                    for c in &mut s.corners {
                        *c = [c[0] + rx1 as f32, c[1] + ry1 as f32];
                    }
                    s
                }),
        );
    }
    for offset in [-RESAMPLE_DEGREES, RESAMPLE_DEGREES] {
        let view = View::new(&region, rw, rh, along + offset);
        let mut read = view.read(engine, Wanted::LinearAlongRows, true);
        read.extend(view.read(engine, Wanted::LinearAlongRows, false));
        for s in &mut read {
            for c in &mut s.corners {
                *c = [c[0] + rx1 as f32, c[1] + ry1 as f32];
            }
        }
        samplings.push(read);
    }
    // Every text with the number of samplings that read it; valid ones first, then the best supported.
    let mut votes: Vec<(&Symbol, usize)> = Vec::new();
    for s in samplings.iter().flatten() {
        if votes.iter().any(|(v, _)| v.text == s.text) {
            continue;
        }
        let n = samplings
            .iter()
            .filter(|read| read.iter().any(|r| r.text == s.text))
            .count();
        votes.push((s, n));
    }
    votes.retain(|&(_, n)| n >= 2);
    // A valid reading before one with a wrong check digit (the safe side), then the better supported.
    let key = |&(s, n): &(&Symbol, usize)| (Gtin::parse(&s.text).is_err(), std::cmp::Reverse(n));
    votes.sort_by_key(key);
    if let [a, b, ..] = votes[..] {
        if key(&a) == key(&b) {
            tracing::debug!(a = %a.0.text, b = %b.0.text, "two readings of one symbol as well supported: neither returned");
            return None;
        }
    }
    let Some(&(chosen, _)) = votes.first() else {
        tracing::debug!(
            degrees,
            "no two samplings agree on a linear symbol: none returned"
        );
        return None;
    };
    second_opinion(luma, w, h, chosen, &samplings)
}

fn strict_agrees(luma: &[u8], w: usize, h: usize, s: &Symbol) -> bool {
    let as_ean13 = if s.text.len() == 12 {
        format!("0{}", s.text)
    } else {
        s.text.clone()
    };
    ean13::check(luma, w, h, &s.corners, &as_ean13) == Opinion::Agrees
}

/// The strict reader's word on the engine's chosen reading (see `ean13`): it must not read other
/// digits, and a wrong check digit needs its agreement. Where it reads, on several lines, digits that
/// one of the samplings also read, those win (the engine's bar-width bias on a blurred symbol).
fn second_opinion(
    luma: &[u8],
    w: usize,
    h: usize,
    chosen: &Symbol,
    samplings: &[Vec<Symbol>],
) -> Option<Symbol> {
    let check_ok = Gtin::parse(&chosen.text).is_ok();
    // The engine gives UPC-A as 12 digits: the strict reader reads the EAN-13 with its leading 0.
    let as_ean13 = if chosen.text.len() == 12 {
        format!("0{}", chosen.text)
    } else {
        chosen.text.clone()
    };
    match ean13::check(luma, w, h, &chosen.corners, &as_ean13) {
        Opinion::Agrees => Some(chosen.clone()),
        Opinion::Unsure if check_ok => Some(chosen.clone()),
        Opinion::Unsure => {
            tracing::debug!(text = %chosen.text, "wrong check digit not confirmed by the strict reader: none returned");
            None
        }
        Opinion::ReadsOther(other) => {
            let seen = samplings
                .iter()
                .flatten()
                .find(|s| s.text == other || format!("0{}", s.text) == other);
            tracing::debug!(engine = %chosen.text, strict = %other, seen = seen.is_some(), "the strict reader reads other digits");
            seen.map(|s| Symbol {
                corners: chosen.corners,
                ..s.clone()
            })
        }
    }
}

/// BT.601 luma of an RGB8 picture, in a tight `w * h` buffer; `None` if the buffer is too small.
fn to_luma(rgb: &[u8], w: usize, h: usize, stride: usize) -> Option<Vec<u8>> {
    if w == 0 || h == 0 || stride < w.checked_mul(3)? {
        return None;
    }
    let needed = stride.checked_mul(h - 1)?.checked_add(w * 3)?;
    if rgb.len() < needed {
        return None;
    }
    let mut out = Vec::with_capacity(w * h);
    for row in rgb.chunks(stride).take(h) {
        out.extend(row[..w * 3].chunks_exact(3).map(|p| {
            ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]) + 128) >> 8) as u8
        }));
    }
    Some(out)
}

/// The crop turned clockwise by some angle about its centre, on a canvas that holds all of it.
struct View<'a> {
    pixels: Cow<'a, [u8]>,
    width: usize,
    height: usize,
    /// The crop's size and the turn, to map points back.
    crop: (usize, usize),
    radians: f32,
}

impl<'a> View<'a> {
    fn new(luma: &'a [u8], w: usize, h: usize, degrees: f32) -> View<'a> {
        let degrees = degrees.rem_euclid(360.0);
        let radians = degrees.to_radians();
        let (pixels, width, height) = if degrees == 0.0 {
            (Cow::Borrowed(luma), w, h)
        } else if degrees == 90.0 {
            // Exact: R(x', y') = L(y', h - 1 - x'), h wide and w tall.
            let mut out = vec![0u8; w * h];
            for (yr, row) in out.chunks_exact_mut(h).enumerate() {
                for (xr, px) in row.iter_mut().enumerate() {
                    *px = luma[(h - 1 - xr) * w + yr];
                }
            }
            (Cow::Owned(out), h, w)
        } else {
            let (out, tw, th) = rotate_bilinear(luma, w, h, radians);
            (Cow::Owned(out), tw, th)
        };
        View {
            pixels,
            width,
            height,
            crop: (w, h),
            radians,
        }
    }

    /// The engine's symbols, corners mapped back to the crop.
    fn read(&self, engine: Engine, wanted: Wanted, errors: bool) -> Vec<Symbol> {
        let mut found = engine.read(&self.pixels, self.width, self.height, wanted, errors);
        for s in &mut found {
            for c in &mut s.corners {
                *c = self.back(*c);
            }
        }
        found
    }

    /// Where a pixel of the view lies in the crop (the inverse of the turn in `rotate_bilinear`).
    fn back(&self, p: [f32; 2]) -> [f32; 2] {
        let (w, h) = (self.crop.0 as f32, self.crop.1 as f32);
        let (s, c) = self.radians.sin_cos();
        let (dx, dy) = (
            p[0] + 0.5 - self.width as f32 / 2.0,
            p[1] + 0.5 - self.height as f32 / 2.0,
        );
        [
            w / 2.0 + c * dx + s * dy - 0.5,
            h / 2.0 - s * dx + c * dy - 0.5,
        ]
    }
}

fn rotated_size(w: usize, h: usize, angle: f32) -> (usize, usize) {
    let (s, c) = (angle.sin().abs(), angle.cos().abs());
    let (w, h) = (w as f32, h as f32);
    // Design: the epsilon keeps a turn by a multiple of 90° from gaining a pixel to rounding.
    (
        ((w * c + h * s) - 1e-3).ceil() as usize,
        ((w * s + h * c) - 1e-3).ceil() as usize,
    )
}

/// The picture turned clockwise by `angle` (radians) about its centre, bilinear, white outside the
/// crop (a quiet zone rather than a dark edge that could look like a bar).
///
/// Design: fixed point (16.16 coordinates, 8-bit weights), stepping the source position along each
/// row, so a turn costs a few nanoseconds a pixel; the view's geometry is the same as `View::back`'s.
fn rotate_bilinear(luma: &[u8], w: usize, h: usize, angle: f32) -> (Vec<u8>, usize, usize) {
    const ONE: f64 = 65536.0;
    let (tw, th) = rotated_size(w, h, angle);
    let (s, c) = (f64::from(angle).sin(), f64::from(angle).cos());
    let mut out = vec![255u8; tw * th];
    if w < 2 || h < 2 {
        return (out, tw, th);
    }
    let (cx, cy, tcx, tcy) = (
        w as f64 / 2.0,
        h as f64 / 2.0,
        tw as f64 / 2.0,
        th as f64 / 2.0,
    );
    let (max_x, max_y) = (((w - 1) as i64) << 16, ((h - 1) as i64) << 16);
    let (step_x, step_y) = ((c * ONE).round() as i64, (-s * ONE).round() as i64);
    for (yr, row) in out.chunks_exact_mut(tw).enumerate() {
        let dy = yr as f64 + 0.5 - tcy;
        let dx = 0.5 - tcx;
        let mut sx = ((cx + c * dx + s * dy - 0.5) * ONE).round() as i64;
        let mut sy = ((cy - s * dx + c * dy - 0.5) * ONE).round() as i64;
        for px in row.iter_mut() {
            if sx >= 0 && sy >= 0 && sx < max_x && sy < max_y {
                let (x0, y0) = ((sx >> 16) as usize, (sy >> 16) as usize);
                let (fx, fy) = (((sx >> 8) & 0xff) as u32, ((sy >> 8) & 0xff) as u32);
                let i = y0 * w + x0;
                let (p00, p01) = (u32::from(luma[i]), u32::from(luma[i + 1]));
                let (p10, p11) = (u32::from(luma[i + w]), u32::from(luma[i + w + 1]));
                let top = p00 * (256 - fx) + p01 * fx;
                let bottom = p10 * (256 - fx) + p11 * fx;
                *px = ((top * (256 - fy) + bottom * fy + 32768) >> 16) as u8;
            }
            sx += step_x;
            sy += step_y;
        }
    }
    (out, tw, th)
}

/// A symbol read by an engine, as GS1 data placed in a `w`×`h` crop.
fn interpret(s: &Symbol, w: f32, h: f32) -> Barcode {
    let xs = s.corners.map(|c| c[0]);
    let ys = s.corners.map(|c| c[1]);
    let bbox = [
        xs.iter()
            .copied()
            .fold(f32::INFINITY, f32::min)
            .clamp(0.0, w),
        ys.iter()
            .copied()
            .fold(f32::INFINITY, f32::min)
            .clamp(0.0, h),
        xs.iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
            .clamp(0.0, w),
        ys.iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
            .clamp(0.0, h),
    ];
    let mut b = Barcode {
        format: s.format,
        text: s.text.clone(),
        gtin: None,
        check_digit_ok: false,
        serial: None,
        batch: None,
        expiry: None,
        bbox,
    };
    match s.format {
        Format::Ean13 | Format::UpcA => {
            b.gtin = gs1::to_gtin14(&s.text).ok();
            b.check_digit_ok = Gtin::parse(&s.text).is_ok();
        }
        Format::DataMatrix => match gs1::parse_element_string(&s.text) {
            Ok(es) => {
                b.text = es.to_hri();
                b.check_digit_ok = es.gtin.as_deref().is_some_and(|g| Gtin::parse(g).is_ok());
                b.gtin = es.gtin;
                b.serial = es.serial;
                b.batch = es.batch;
                b.expiry = es.expiry;
            }
            Err(e) => {
                tracing::debug!(error = %e, "DataMatrix is not a GS1 element string");
                b.text = s.text.trim_start_matches(gs1::GS).to_string();
            }
        },
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(format: Format, text: &str) -> Symbol {
        Symbol {
            format,
            text: text.to_string(),
            corners: [[10.0, 20.0], [110.0, 22.0], [111.0, 60.0], [9.0, 58.0]],
        }
    }

    #[test]
    fn an_ean13_gives_its_gtin14_and_whether_its_check_digit_is_right() {
        for (format, text, gtin, ok) in [
            (Format::Ean13, "9501101010215", "09501101010215", true),
            (Format::Ean13, "9501101010218", "09501101010218", false), // Earl Grey counterfeit
            (Format::UpcA, "614141200115", "00614141200115", true),
            (Format::UpcA, "614141200116", "00614141200116", false),
        ] {
            let b = interpret(&symbol(format, text), 200.0, 100.0);
            assert_eq!(
                (b.gtin.as_deref(), b.check_digit_ok, b.text.as_str()),
                (Some(gtin), ok, text)
            );
            assert_eq!(b.bbox, [9.0, 20.0, 111.0, 60.0]);
        }
    }

    #[test]
    fn a_gs1_datamatrix_gives_its_fields_and_its_human_readable_text() {
        let b = interpret(
            &symbol(
                Format::DataMatrix,
                "]d2010061414120011517281130\u{1d}10B1001\u{1d}21SN00000001",
            ),
            200.0,
            100.0,
        );
        assert_eq!(
            b.text,
            "(01)00614141200115(17)281130(10)B1001(21)SN00000001"
        );
        assert_eq!(b.gtin.as_deref(), Some("00614141200115"));
        assert!(b.check_digit_ok);
        assert_eq!(b.serial.as_deref(), Some("SN00000001"));
        assert_eq!(b.batch.as_deref(), Some("B1001"));
        assert_eq!(
            b.expiry,
            Some(Date {
                year: 2028,
                month: 11,
                day: 30
            })
        );
        let plain = interpret(&symbol(Format::DataMatrix, "]d1hello"), 200.0, 100.0);
        assert_eq!(
            (plain.text.as_str(), plain.gtin, plain.check_digit_ok),
            ("]d1hello", None, false)
        );
    }

    #[test]
    fn barcodes_serialise_as_the_agent_prints_them() {
        let b = interpret(
            &symbol(
                Format::DataMatrix,
                "\u{1d}010061414120011517281100\u{1d}21X",
            ),
            50.0,
            50.0,
        );
        let json = serde_json::to_value(&b).unwrap_or_default();
        assert_eq!(json["format"], "datamatrix");
        assert_eq!(json["expiry"], "2028-11-30");
        assert_eq!(json["bbox"], serde_json::json!([9.0, 20.0, 50.0, 50.0]));
        assert_eq!(
            serde_json::to_value(Format::UpcA).unwrap_or_default(),
            "upca"
        );
        assert_eq!(
            serde_json::to_value(Format::Ean13).unwrap_or_default(),
            "ean13"
        );
    }

    #[test]
    fn luma_honours_the_stride_and_refuses_short_buffers() {
        // 2×2 crop, stride 8 (2 bytes of padding per row).
        let rgb = [255, 255, 255, 0, 0, 0, 9, 9, 255, 0, 0, 0, 255, 0, 9, 9];
        assert_eq!(to_luma(&rgb, 2, 2, 8), Some(vec![255, 0, 77, 149]));
        assert_eq!(to_luma(&rgb[..13], 2, 2, 8), None);
        assert_eq!(to_luma(&rgb, 2, 2, 5), None);
        assert_eq!(to_luma(&rgb, 0, 2, 8), None);
        assert!(decode_crop(&rgb[..3], 2, 2, 6).is_empty());
    }

    #[test]
    fn turned_points_map_back_to_the_crop() {
        let (w, h) = (7usize, 4usize);
        // A distinct value per pixel: find where pixel (5, 1) went in the exact quarter turn.
        let luma: Vec<u8> = (0..(w * h) as u8).map(|v| v * 9).collect();
        let q = View::new(&luma, w, h, 90.0);
        assert_eq!((q.width, q.height), (h, w));
        let at = q
            .pixels
            .iter()
            .position(|&v| v == luma[w + 5])
            .unwrap_or(usize::MAX);
        let back = q.back([(at % q.width) as f32, (at / q.width) as f32]);
        assert!(
            (back[0] - 5.0).abs() < 1e-4 && (back[1] - 1.0).abs() < 1e-4,
            "{back:?}"
        );
        for degrees in [45.0f32, 135.0, 39.0, -6.0] {
            let v = View::new(&luma, w, h, degrees);
            // Pixel (5, 1) goes to the turned picture and back.
            let (s, c) = degrees.rem_euclid(360.0).to_radians().sin_cos();
            let (dx, dy) = (5.5 - w as f32 / 2.0, 1.5 - h as f32 / 2.0);
            let fwd = [
                v.width as f32 / 2.0 + c * dx - s * dy - 0.5,
                v.height as f32 / 2.0 + s * dx + c * dy - 0.5,
            ];
            let back = v.back(fwd);
            assert!(
                (back[0] - 5.0).abs() < 1e-3 && (back[1] - 1.0).abs() < 1e-3,
                "{degrees}: {back:?}"
            );
        }
    }
}
