//! Barcode facts as verdict signals. A code read inside an item is checked against the brand's
//! manifest: a wrong check digit, a GTIN outside the brand's GS1 company prefixes, another product's
//! GTIN on this pack, or a serial printed on another pack in the same view are counterfeit signals; a
//! GTIN the brand never registered, a date past expiry, or a serial seen on an earlier pack make a
//! genuine-looking pack inconclusive. Each signal carries a reason a clerk can act on.
//!
//! Design: a serial seen before cannot tell a cloned code from the same pack brought back (a customer
//! returning, a clerk checking again after the re-scan window), so it sends the pack to a person rather
//! than accusing anyone; only two packs in view at once with one serial prove a clone.

use serde::Serialize;

use crate::bundle::Manifest;

/// A barcode read in a frame, as the verdict rule needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Code {
    /// `ean13`, `upca` or `datamatrix`.
    pub format: String,
    pub text: String,
    /// 14 digits, when the code carries a GTIN.
    pub gtin: Option<String>,
    pub serial: Option<String>,
    /// `YYYY-MM-DD`.
    pub expiry: Option<String>,
    /// The GTIN's check digit is right.
    #[serde(rename = "valid")]
    pub check_digit_ok: bool,
    /// `[x1, y1, x2, y2]` in frame pixels.
    #[serde(skip)]
    pub bbox: [f32; 4],
}

/// What is known about serials besides this code: `seen` — on a pack decided before; `in_view` — on
/// another pack in the same view now.
pub struct Serials<'a> {
    pub seen: &'a dyn Fn(&str) -> bool,
    pub in_view: &'a dyn Fn(&str) -> bool,
}

/// What a code says about its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Counterfeit(String),
    Inconclusive(String),
}

impl Code {
    /// Whether the code's centre lies inside `bbox` (edges included).
    pub fn inside(&self, bbox: &[f32; 4]) -> bool {
        let (cx, cy) = (
            (self.bbox[0] + self.bbox[2]) / 2.0,
            (self.bbox[1] + self.bbox[3]) / 2.0,
        );
        cx >= bbox[0] && cx <= bbox[2] && cy >= bbox[1] && cy <= bbox[3]
    }

    /// The signals of this code on an item that looks like `product`. `serials` says whether a serial
    /// was seen before or is on another pack in view; `today` is `YYYY-MM-DD` (ISO dates compare as
    /// strings).
    pub fn signals(
        &self,
        product: &str,
        m: &Manifest,
        today: &str,
        serials: &Serials<'_>,
    ) -> Vec<Signal> {
        let mut out = Vec::new();
        if let Some(gtin) = &self.gtin {
            let short = gtin.get(1..).unwrap_or("");
            if !self.check_digit_ok {
                out.push(Signal::Counterfeit(format!(
                    "the barcode {} has a wrong check digit: no genuine pack prints that",
                    self.text
                )));
            } else if !m.gs1_prefixes.iter().any(|p| short.starts_with(p.as_str())) {
                out.push(Signal::Counterfeit(format!(
                    "the barcode's GTIN {gtin} is outside {}'s GS1 company prefix{} {}",
                    m.brand,
                    if m.gs1_prefixes.len() == 1 { "" } else { "es" },
                    m.gs1_prefixes.join(", ")
                )));
            } else if let Some(other) = m
                .classes
                .iter()
                .find(|c| &c.gtin == gtin && c.product != product)
            {
                out.push(Signal::Counterfeit(format!(
                    "the barcode belongs to {}; the pack looks like {product}",
                    other.product
                )));
            } else if !m.classes.iter().any(|c| &c.gtin == gtin) {
                out.push(Signal::Inconclusive(format!(
                    "the barcode's GTIN {gtin} is not a registered {} product",
                    m.brand
                )));
            }
        }
        if let Some(serial) = &self.serial {
            if (serials.in_view)(serial) {
                out.push(Signal::Counterfeit(format!(
                    "the code's serial {serial} is also printed on another pack in view: a cloned code"
                )));
            } else if (serials.seen)(serial) {
                out.push(Signal::Inconclusive(format!(
                    "the code's serial {serial} was seen on a pack before: a cloned code, or this pack scanned again; check it by hand"
                )));
            }
        }
        if let Some(expiry) = &self.expiry {
            if expiry.as_str() < today {
                out.push(Signal::Inconclusive(format!("expired on {expiry}")));
            }
        }
        out
    }
}
