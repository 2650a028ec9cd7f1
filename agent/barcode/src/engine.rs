//! The barcode-reading libraries behind [`crate::decode`]: each engine takes an 8-bit luma image and
//! returns the symbols it found, as plain values ([`Symbol`]). `zxing-cpp` is the default (see the
//! crate's README for the measurement that chose it); `rxing` stays behind its feature so the
//! measurement can be reproduced.

use crate::decode::Format;

/// One symbol as an engine reads it, before GS1 interpretation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Symbol {
    pub format: Format,
    /// EAN-13: 13 digits; UPC-A: 12; DataMatrix: the content, FNC1 separators as ASCII 29, led by the
    /// symbology identifier (`]d2` for GS1) when the engine gives one.
    pub text: String,
    /// Corners in the luma image's pixels (for a linear symbol, the ends of the rows it was read on).
    pub corners: [[f32; 2]; 4],
}

/// Which formats a pass looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    All,
    Linear,
    /// Linear, the symbol known to lie along the rows: no quarter-turned scan.
    LinearAlongRows,
}

/// A barcode-reading library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The zxing-cpp C++ library (through the `zxing-cpp` crate): returns EAN-13s with a wrong check
    /// digit when asked (`ReturnErrors`), read on at least two rows.
    #[cfg(feature = "zxing-cpp")]
    ZxingCpp,
    /// rxing, the pure-Rust port of ZXing: rejects an EAN-13 whose check digit is wrong.
    #[cfg(feature = "rxing")]
    Rxing,
}

impl Engine {
    /// Every engine compiled in.
    pub const ALL: &'static [Engine] = &[
        #[cfg(feature = "zxing-cpp")]
        Engine::ZxingCpp,
        #[cfg(feature = "rxing")]
        Engine::Rxing,
    ];

    /// The engine `decode_crop` uses: zxing-cpp when compiled in.
    pub fn default_engine() -> Option<Engine> {
        Engine::ALL.first().copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "zxing-cpp")]
            Engine::ZxingCpp => "zxing-cpp",
            #[cfg(feature = "rxing")]
            Engine::Rxing => "rxing",
        }
    }

    /// Whether the engine itself returns EAN-13s whose check digit is wrong.
    pub fn returns_bad_check_digits(self) -> bool {
        match self {
            #[cfg(feature = "zxing-cpp")]
            Engine::ZxingCpp => true,
            #[cfg(feature = "rxing")]
            Engine::Rxing => false,
        }
    }

    /// The symbols in a luma picture. `errors`: also return EAN-13/UPC-A symbols whose check digit is
    /// wrong, where the engine can (zxing-cpp); rxing never returns them.
    pub(crate) fn read(
        self,
        luma: &[u8],
        width: usize,
        height: usize,
        wanted: Wanted,
        errors: bool,
    ) -> Vec<Symbol> {
        match self {
            #[cfg(feature = "zxing-cpp")]
            Engine::ZxingCpp => zxing::read(luma, width, height, wanted, errors),
            #[cfg(feature = "rxing")]
            Engine::Rxing => {
                let _ = errors;
                rx::read(luma, width, height, wanted)
            }
        }
    }
}

#[cfg(feature = "zxing-cpp")]
mod zxing {
    use super::{Symbol, Wanted};
    use crate::decode::Format;
    use zxingcpp::{BarcodeFormat, BarcodeReader, ImageFormat, ImageView, TextMode};

    pub(super) fn read(
        luma: &[u8],
        width: usize,
        height: usize,
        wanted: Wanted,
        errors: bool,
    ) -> Vec<Symbol> {
        let view = match ImageView::from_slice(luma, width, height, ImageFormat::Lum) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, width, height, "zxing-cpp refused the image");
                return Vec::new();
            }
        };
        let formats: &[BarcodeFormat] = match wanted {
            Wanted::All => &[
                BarcodeFormat::EAN13,
                BarcodeFormat::UPCA,
                BarcodeFormat::DataMatrix,
            ],
            Wanted::Linear | Wanted::LinearAlongRows => {
                &[BarcodeFormat::EAN13, BarcodeFormat::UPCA]
            }
        };
        // Design: ReturnErrors makes zxing-cpp keep an EAN-13 whose check digit is wrong (a counterfeit's)
        // instead of dropping it; it still has to be read alike on MinLineCount (2) rows. That alone does
        // not make such a read trustworthy: `decode` confirms it. TryRotate reads the picture turned a
        // quarter as well: linear symbols in columns, and the DataMatrix detector, which misses a symbol
        // turned more than about 30° without it.
        let reader = BarcodeReader::new()
            .formats(formats)
            .try_harder(true)
            .try_rotate(wanted != Wanted::LinearAlongRows)
            .try_invert(false)
            .try_downscale(true)
            .return_errors(errors)
            .min_line_count(2)
            .text_mode(TextMode::Plain);
        let t0 = std::time::Instant::now();
        let found = match reader.from(view) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "zxing-cpp failed");
                return Vec::new();
            }
        };
        tracing::trace!(
            width,
            height,
            ?wanted,
            errors,
            found = found.len(),
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "zxing-cpp read"
        );
        found
            .iter()
            .filter_map(|b| {
                let format = match b.format() {
                    BarcodeFormat::EAN13 => Format::Ean13,
                    BarcodeFormat::UPCA => Format::UpcA,
                    BarcodeFormat::DataMatrix => Format::DataMatrix,
                    _ => return None,
                };
                // Only the check digit may be wrong: a symbol with any other error (format, unsupported)
                // carries nothing trustworthy.
                if !b.is_valid() && !matches!(b.error(), zxingcpp::BarcodeError::Checksum(_)) {
                    return None;
                }
                if format == Format::DataMatrix && !b.is_valid() {
                    return None;
                }
                let text = match format {
                    Format::DataMatrix => format!("{}{}", b.symbology_identifier(), b.text()),
                    _ => b.text(),
                };
                let p = b.position();
                let corners = [p.top_left, p.top_right, p.bottom_right, p.bottom_left]
                    .map(|q| [q.x as f32, q.y as f32]);
                Some(Symbol {
                    format,
                    text,
                    corners,
                })
            })
            .collect()
    }
}

#[cfg(feature = "rxing")]
mod rx {
    use std::collections::HashSet;

    use super::{Symbol, Wanted};
    use crate::decode::Format;
    use rxing::{BarcodeFormat, DecodeHints};

    pub(super) fn read(luma: &[u8], width: usize, height: usize, wanted: Wanted) -> Vec<Symbol> {
        let mut formats: HashSet<BarcodeFormat> = [BarcodeFormat::EAN_13, BarcodeFormat::UPC_A]
            .into_iter()
            .collect();
        if wanted == Wanted::All {
            formats.insert(BarcodeFormat::DATA_MATRIX);
        }
        let mut hints = DecodeHints {
            PossibleFormats: Some(formats),
            TryHarder: Some(true),
            ..Default::default()
        };
        let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
            return Vec::new();
        };
        let found = match rxing::helpers::detect_multiple_in_luma_with_hints(
            luma.to_vec(),
            w,
            h,
            &mut hints,
        ) {
            Ok(found) => found,
            Err(e) => {
                tracing::trace!(error = %e, "rxing found nothing");
                return Vec::new();
            }
        };
        found
            .iter()
            .filter_map(|r| {
                let format = match r.getBarcodeFormat() {
                    BarcodeFormat::EAN_13 => Format::Ean13,
                    BarcodeFormat::UPC_A => Format::UpcA,
                    BarcodeFormat::DATA_MATRIX => Format::DataMatrix,
                    _ => return None,
                };
                let pts: Vec<[f32; 2]> = r.getPoints().iter().map(|p| [p.x, p.y]).collect();
                let corners = match pts.as_slice() {
                    [] => return None,
                    [a] => [*a; 4],
                    [a, b] => [*a, *b, *b, *a],
                    [a, b, c] => [*a, *b, *c, *c],
                    [a, b, c, d, ..] => [*a, *b, *c, *d],
                };
                Some(Symbol {
                    format,
                    text: r.getText().to_string(),
                    corners,
                })
            })
            .collect()
    }
}
