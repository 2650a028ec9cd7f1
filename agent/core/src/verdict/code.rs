//! Barcode facts as verdict signals. A code read inside an item is checked against the brand's
//! manifest: a wrong check digit, a GTIN outside the brand's GS1 company prefixes or another product's
//! GTIN on this pack are counterfeit signals; a GTIN the brand never registered or a date past expiry
//! make a genuine-looking pack inconclusive. Each signal carries a reason a clerk can act on.
//!
//! Serialised codes (a GTIN with its serial, a GS1 SGTIN) have their own rule, in [`super::serial`]:
//! a serial alone identifies nothing, since two products may print the same one.

use hallmark_proto::event::Barcode;
use hallmark_proto::manifest::Manifest;

/// A barcode read in a frame, as the verdict rule needs it (its wire form: [`Code::barcode`]).
#[derive(Debug, Clone, PartialEq)]
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
    pub check_digit_ok: bool,
    /// `[x1, y1, x2, y2]` in frame pixels.
    pub bbox: [f32; 4],
}

/// A serialised item's identity: its GTIN and its serial (GS1 SGTIN, AI (01) + AI (21)). Unique per
/// pack; the serial alone is not (pharmacy lines often number each product's packs from 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sgtin {
    pub gtin: String,
    pub serial: String,
}

impl std::fmt::Display for Sgtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GTIN {} serial {}", self.gtin, self.serial)
    }
}

/// The code a verdict record shows for its item: the one that identifies the pack best (with a GTIN and
/// a serial), else the first read.
pub fn shown(codes: &[Code]) -> Option<&Code> {
    codes
        .iter()
        .find(|c| c.sgtin().is_some())
        .or_else(|| codes.first())
}

/// What a code says about its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Counterfeit(String),
    Inconclusive(String),
}

impl Code {
    /// The code as the verdict event and the scan record carry it (no box).
    pub fn barcode(&self) -> Barcode {
        Barcode {
            format: self.format.clone(),
            text: self.text.clone(),
            gtin: self.gtin.clone(),
            serial: self.serial.clone(),
            expiry: self.expiry.clone(),
            valid: self.check_digit_ok,
        }
    }

    /// Whether the code's centre lies inside `bbox` (edges included).
    pub fn inside(&self, bbox: &[f32; 4]) -> bool {
        let (cx, cy) = (
            (self.bbox[0] + self.bbox[2]) / 2.0,
            (self.bbox[1] + self.bbox[3]) / 2.0,
        );
        cx >= bbox[0] && cx <= bbox[2] && cy >= bbox[1] && cy <= bbox[3]
    }

    /// The pack's SGTIN, when the code carries both a GTIN and a serial. A serial without its GTIN
    /// cannot prove a clone.
    pub fn sgtin(&self) -> Option<Sgtin> {
        Some(Sgtin {
            gtin: self.gtin.clone()?,
            serial: self.serial.clone()?,
        })
    }

    /// The signals of this code's GTIN and expiry date on an item that looks like `product`; `today` is
    /// `YYYY-MM-DD` (ISO dates compare as strings). Serials are [`super::serial`]'s.
    pub fn signals(&self, product: &str, m: &Manifest, today: &str) -> Vec<Signal> {
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
        if let Some(expiry) = &self.expiry {
            if expiry.as_str() < today {
                out.push(Signal::Inconclusive(format!("expired on {expiry}")));
            }
        }
        out
    }
}
