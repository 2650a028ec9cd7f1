//! GS1 barcodes for Hallmark: what a pack's barcodes say, and whether it adds up.
//!
//! - [`gs1`]: pure GS1 arithmetic and parsing — check digits, GTIN-14 normalisation, the company-prefix
//!   test, element strings (`(01)…(17)…(10)…(21)…`) with their dates.
//! - [`decode`]: [`decode_crop`] finds and reads the EAN-13 / UPC-A / GS1 DataMatrix symbols in one
//!   item's RGB crop, at any rotation, and returns [`Barcode`]s with the GS1 fields and whether the
//!   check digit is right — a counterfeit's wrong check digit is reported, never silently dropped.
//! - `ean13`: a strict EAN-13 scanline reader (edge-to-similar-edge measures), the second opinion
//!   that every EAN-13 the engine reads must not contradict, and that a wrong check digit needs.
//! - `engine`: the barcode-reading library behind `decode` (zxing-cpp by default, rxing behind a
//!   feature for the measurement in the README).

//!
//! Decoding needs an engine (`zxing-cpp`, the default, or `rxing`); without either feature only [`gs1`]
//! is built, the pure rules a crate that reads no barcode uses (`hallmark-core`'s brand routing).

#[cfg(any(feature = "zxing-cpp", feature = "rxing"))]
pub mod decode;
#[cfg(any(feature = "zxing-cpp", feature = "rxing"))]
mod ean13;
#[cfg(any(feature = "zxing-cpp", feature = "rxing"))]
mod engine;
pub mod gs1;

#[cfg(any(feature = "zxing-cpp", feature = "rxing"))]
pub use decode::{decode_crop, decode_crop_with, Barcode, Format};
#[cfg(any(feature = "zxing-cpp", feature = "rxing"))]
pub use engine::Engine;
pub use gs1::{Date, Gs1Error, Gtin};
