//! Verdicts: what a frame's detections say about the product in front of the camera.
//!
//! The verdict kinds and their serialised form live here; the rule that picks one lives in
//! [`simple`] alone, so a fuller verdict engine (barcodes, tracking) replaces that one file.

mod simple;

use serde::Serialize;

pub use simple::decide;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Genuine,
    Counterfeit,
    Inconclusive,
    NoProduct,
}

impl VerdictKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            VerdictKind::Genuine => "genuine",
            VerdictKind::Counterfeit => "counterfeit",
            VerdictKind::Inconclusive => "inconclusive",
            VerdictKind::NoProduct => "no_product",
        }
    }
}

/// A verdict with its confidence and a reason a person can read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub reason: String,
}
