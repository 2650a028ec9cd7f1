//! Barcode facts as verdict signals. A code read inside an item is checked against the brand's
//! manifest: a wrong check digit, a GTIN outside the brand's GS1 company prefixes, another product's
//! GTIN on this pack, or a serial already seen on another item are counterfeit signals; a GTIN the
//! brand never registered, or a date past expiry, make a genuine-looking pack inconclusive. Each signal
//! carries a reason a clerk can act on.

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

    /// The signals of this code on an item that looks like `product`. `seen` says whether a serial was
    /// already seen on another item; `today` is `YYYY-MM-DD` (ISO dates compare as strings).
    pub fn signals(
        &self,
        product: &str,
        m: &Manifest,
        today: &str,
        seen: &dyn Fn(&str) -> bool,
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
            if seen(serial) {
                out.push(Signal::Counterfeit(format!(
                    "the code's serial {serial} was already seen on another pack: a cloned code"
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
