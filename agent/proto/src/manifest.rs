//! The bundle manifest (`manifest.json`, schema `hallmark.model/1`): its types and the checks that make
//! a parsed manifest safe to use (see `models/BUNDLE.md`). Unknown keys are ignored, so newer pipelines
//! can add fields; missing or inconsistent ones are errors that name the field.
//!
//! Variants (`variants`) are other encodings of the same detector (a smaller input, another
//! precision), each with its own file, digest, input and thresholds; the signature covers them through
//! their digests. Which one a device runs is the agent's choice (`hallmark_agent::bundle::choose`).
//!
//! Design: a variant carries its own thresholds and metrics because another encoding gives other scores:
//! the pipeline chooses them on validation for that encoding, under the same false-alarm caps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const SCHEMA: &str = "hallmark.model/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: String,
    pub brand: String,
    pub revision: u64,
    #[serde(default)]
    pub created: Option<String>,
    pub model: ModelSpec,
    pub classes: Vec<ClassSpec>,
    #[serde(default)]
    pub gs1_prefixes: Vec<String>,
    pub thresholds: Thresholds,
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// Other encodings of the same detector (`variant.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantSpec>,
    /// Every file of the bundle but `manifest.json` and `manifest.sig`, by its path in the bundle
    /// (`model.onnx`, `selftest/expected.json`), with its SHA-256: the signature covers each file through
    /// it. Optional here (a manifest signed before lists still parses, for messages and the store's
    /// structural check); the agent's `Bundle::open` requires it and holds the folder to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    /// The variant a device runs by default in each mode (`kiosk`, `conveyor`), when its configuration
    /// names none: the encoding the pipeline measured as meeting the brand's goal there (a conveyor and
    /// a hand show packs at any angle: `quarter-turns`). A mode not named runs the main model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default_variants: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub file: String,
    pub sha256: String,
    pub format: String,
    pub input: InputSpec,
    pub output: OutputSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    /// `float32` NCHW for the main model (the only kind the format allows there; absent in manifests);
    /// a selected variant's own (the agent's `Bundle::select`).
    #[serde(default, skip_serializing_if = "InputDtype::is_float32")]
    pub dtype: InputDtype,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSpec {
    pub id: u32,
    pub name: String,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub gtin: String,
    pub role: Role,
}

/// What a detection of a class says about the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Genuine,
    Counterfeit,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Score filter: weaker detections are dropped before anything else.
    pub confidence: f32,
    /// NMS overlap (per class).
    pub iou: f32,
    /// An item's best genuine score must reach this to be called genuine.
    pub genuine: f32,
    /// An item's best counterfeit score must reach this (and beat genuine by `margin`) to be called
    /// counterfeit. Must lie above `confidence`, or it decides nothing.
    pub counterfeit: f32,
    /// How far counterfeit must beat genuine on one item; a closer call is inconclusive.
    #[serde(default = "default_margin")]
    pub margin: f32,
}

/// The margin of manifests that predate it.
pub const DEFAULT_MARGIN: f32 = 0.15;

fn default_margin() -> f32 {
    DEFAULT_MARGIN
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantSpec {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub precision: Precision,
    pub input: VariantInput,
    pub thresholds: Thresholds,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantInput {
    pub name: String,
    #[serde(default)]
    pub dtype: InputDtype,
    pub width: u32,
    pub height: u32,
}

/// The numeric precision of an encoding. The main model is `fp32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
    Int8,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        })
    }
}

/// What the graph takes: `float32` NCHW scaled to [0, 1], or `uint8` NHWC with the normalisation and
/// transpose inside the graph (a quarter of the bytes per frame, and no float conversion on the CPU).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputDtype {
    #[default]
    Float32,
    Uint8,
}

impl InputDtype {
    pub fn is_float32(&self) -> bool {
        *self == InputDtype::Float32
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ManifestError {
    #[error("manifest.json is not valid: {0}")]
    Parse(String),
    #[error("manifest schema is {found:?}, expected {SCHEMA:?}")]
    Schema { found: String },
    #[error("manifest field {field}: {problem}")]
    Field { field: String, problem: String },
}

impl Manifest {
    /// Parses and validates the exact bytes of `manifest.json`.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let bad = |field: &str, problem: String| {
            Err(ManifestError::Field {
                field: field.into(),
                problem,
            })
        };
        if self.schema != SCHEMA {
            return Err(ManifestError::Schema {
                found: self.schema.clone(),
            });
        }
        if self.brand.is_empty()
            || !self
                .brand
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad(
                "brand",
                format!(
                    "{:?} must be non-empty lowercase letters, digits and '-'",
                    self.brand
                ),
            );
        }
        if self.model.format != "yolov5" {
            return bad(
                "model.format",
                format!(
                    "{:?} is not supported (expected \"yolov5\")",
                    self.model.format
                ),
            );
        }
        if !self.model.input.dtype.is_float32() {
            return bad(
                "model.input.dtype",
                "the main model takes float32 NCHW; a uint8 encoding is a variant".into(),
            );
        }
        let file = &self.model.file;
        if !plain_file_name(file) {
            return bad(
                "model.file",
                format!("{file:?} must be a plain file name inside the bundle"),
            );
        }
        if !is_sha256(&self.model.sha256) {
            return bad("model.sha256", "must be 64 hex digits".into());
        }
        let input = &self.model.input;
        if input.width == 0 || input.height == 0 || input.width > 4096 || input.height > 4096 {
            return bad(
                "model.input",
                format!("size {}×{} is out of range", input.width, input.height),
            );
        }
        if self.classes.is_empty() {
            return bad("classes", "no classes".into());
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.id as usize != i {
                return bad(
                    "classes",
                    format!(
                        "ids must be 0..{} in order; entry {i} has id {}",
                        self.classes.len(),
                        c.id
                    ),
                );
            }
            if c.name.is_empty() {
                return bad("classes", format!("class {i} has an empty name"));
            }
        }
        // Design: a bundle that names no GS1 company prefix would call every barcoded pack
        // counterfeit ("outside the brand's prefixes"): the worst false alarm there is. Refuse it.
        if self.gs1_prefixes.is_empty() {
            return bad(
                "gs1_prefixes",
                "empty: every barcoded pack would be called counterfeit".into(),
            );
        }
        if let Some(p) = self
            .gs1_prefixes
            .iter()
            .find(|p| !(4..=12).contains(&p.len()) || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return bad(
                "gs1_prefixes",
                format!("{p:?} is not a GS1 company prefix (4 to 12 digits)"),
            );
        }
        check_thresholds("thresholds", &self.thresholds)
            .or_else(|(field, problem)| bad(&field, problem))?;
        for (mode, name) in &self.default_variants {
            if mode != "kiosk" && mode != "conveyor" {
                return bad(
                    "default_variants",
                    format!("{mode:?} is not a mode (kiosk, conveyor)"),
                );
            }
            if !self.variants.iter().any(|v| &v.name == name) {
                return bad(
                    "default_variants",
                    format!("{mode}: no variant named {name:?}"),
                );
            }
        }
        for (i, v) in self.variants.iter().enumerate() {
            check_thresholds(&format!("variants[{i}].thresholds"), &v.thresholds)
                .or_else(|(field, problem)| bad(&field, problem))?;
        }
        validate_variants(self).or_else(|(field, problem)| bad(&field, problem))?;
        if let Some(files) = &self.files {
            self.check_files(files)
                .or_else(|problem| bad("files", problem))?;
        }
        Ok(())
    }

    /// The list's names and digests, and that it gives the model and each variant the digest the
    /// manifest gives them (one file, one digest).
    fn check_files(&self, files: &BTreeMap<String, String>) -> Result<(), String> {
        if files.len() > MAX_FILES {
            return Err(format!(
                "{} entries, more than a bundle may hold ({MAX_FILES})",
                files.len()
            ));
        }
        for (name, digest) in files {
            if !listable_path(name) {
                return Err(format!(
                    "{name:?} is not a file a bundle may name (a plain, not hidden name at the root or one folder below; not the manifest or its signature)"
                ));
            }
            if !is_sha256(digest) {
                return Err(format!("{name}: sha256 must be 64 hex digits"));
            }
        }
        let named = std::iter::once((&self.model.file, &self.model.sha256))
            .chain(self.variants.iter().map(|v| (&v.file, &v.sha256)));
        for (file, sha256) in named {
            match files.get(file) {
                Some(d) if d.eq_ignore_ascii_case(sha256) => {}
                Some(_) => {
                    return Err(format!(
                        "{file} is listed with another SHA-256 than the manifest gives it"
                    ))
                }
                None => return Err(format!("{file} is not listed")),
            }
        }
        Ok(())
    }

    /// The class with id `id`, if any.
    pub fn class(&self, id: u32) -> Option<&ClassSpec> {
        self.classes.get(id as usize)
    }
}

/// A file name inside the bundle folder: no path, not hidden.
pub fn plain_file_name(file: &str) -> bool {
    !(file.is_empty() || file.contains('/') || file.contains('\\') || file.starts_with('.'))
}

/// The most files a manifest may list; a bundle archive holds at most as many entries.
pub const MAX_FILES: usize = 1000;

/// The files only the manifest itself may be: they cannot name themselves in it.
pub const SIGNATURE_FILES: [&str; 2] = ["manifest.json", "manifest.sig"];

/// A path the `files` list may hold: one plain, not hidden name, or a folder and one such name below it
/// (`selftest/a.jpg`); never the manifest or its signature. The same rule as `bundle.py`'s.
pub fn listable_path(path: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && !p.chars().any(|c| c == '\\' || c.is_control())
    };
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), None, None) => part(a) && !SIGNATURE_FILES.contains(&a),
        (Some(a), Some(b), None) => part(a) && part(b),
        _ => false,
    }
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Checks the `variants` of a manifest: names, files and sizes; their thresholds are checked by the
/// manifest like the main ones. Returns the field and the problem.
fn validate_variants(m: &Manifest) -> Result<(), (String, String)> {
    let mut names = std::collections::HashSet::new();
    let mut files = std::collections::HashSet::from([m.model.file.as_str()]);
    for (i, v) in m.variants.iter().enumerate() {
        let field = |f: &str| format!("variants[{i}].{f}");
        if v.name.is_empty()
            || !v
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err((
                field("name"),
                format!("{:?} must be lowercase letters, digits and '-'", v.name),
            ));
        }
        if !names.insert(v.name.as_str()) {
            return Err((field("name"), format!("{:?} appears twice", v.name)));
        }
        if !plain_file_name(&v.file) || v.file == "manifest.json" || v.file == "manifest.sig" {
            return Err((
                field("file"),
                format!("{:?} must be a plain file name inside the bundle", v.file),
            ));
        }
        if !files.insert(v.file.as_str()) {
            return Err((
                field("file"),
                format!("{:?} is already another encoding's file", v.file),
            ));
        }
        if !is_sha256(&v.sha256) {
            return Err((field("sha256"), "must be 64 hex digits".into()));
        }
        let (w, h) = (v.input.width, v.input.height);
        if w == 0 || h == 0 || w > 4096 || h > 4096 || w % 32 != 0 || h % 32 != 0 {
            return Err((
                field("input"),
                format!("size {w}×{h} must be positive multiples of 32 up to 4096"),
            ));
        }
        if v.input.name.is_empty() {
            return Err((field("input.name"), "is empty".into()));
        }
    }
    Ok(())
}

/// The thresholds' ranges, and `counterfeit` above `confidence` (at or below it, it decides nothing).
/// `at` names the object in messages (`thresholds`, `variants[0].thresholds`).
fn check_thresholds(at: &str, t: &Thresholds) -> Result<(), (String, String)> {
    for (name, v) in [
        ("confidence", t.confidence),
        ("iou", t.iou),
        ("genuine", t.genuine),
        ("counterfeit", t.counterfeit),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            return Err((format!("{at}.{name}"), format!("{v} is not in (0, 1]")));
        }
    }
    if !(t.margin >= 0.0 && t.margin < 1.0) {
        return Err((
            format!("{at}.margin"),
            format!("{} is not in [0, 1)", t.margin),
        ));
    }
    if t.counterfeit <= t.confidence {
        return Err((
            format!("{at}.counterfeit"),
            format!("{} must lie above {at}.confidence {} (at or below it, the counterfeit threshold decides nothing)", t.counterfeit, t.confidence),
        ));
    }
    Ok(())
}

/// Fixtures for tests here and in other crates (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures {
    /// The README's example manifest, as JSON (no `files` list).
    pub fn sample_json() -> serde_json::Value {
        serde_json::json!({
            "schema": "hallmark.model/1", "brand": "northwind", "revision": 3, "created": "2026-11-26T18:00:00Z",
            "model": {"file": "model.onnx", "sha256": "ab".repeat(32), "format": "yolov5",
                      "input": {"name": "images", "width": 320, "height": 320}, "output": {"name": "output0"}},
            "classes": [
                {"id": 0, "name": "earl-grey", "product": "Earl Grey", "gtin": "05012345000019", "role": "genuine"},
                {"id": 1, "name": "earl-grey-counterfeit", "product": "Earl Grey", "gtin": "05012345000019", "role": "counterfeit"}
            ],
            "gs1_prefixes": ["5012345"],
            "thresholds": {"confidence": 0.25, "iou": 0.45, "genuine": 0.5, "counterfeit": 0.35},
            "metrics": {"map50": 0.9, "something_new": 1}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::sample_json;
    use super::*;

    fn parse(v: &serde_json::Value) -> Result<Manifest, ManifestError> {
        Manifest::parse(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn the_documented_example_parses() {
        let m = parse(&sample_json()).unwrap();
        assert_eq!(m.brand, "northwind");
        assert_eq!(m.classes[1].role, Role::Counterfeit);
        assert_eq!(m.thresholds.iou, 0.45);
        assert_eq!(
            m.thresholds.margin, DEFAULT_MARGIN,
            "manifests without a margin get the default"
        );
    }

    #[test]
    fn a_counterfeit_threshold_at_the_score_filter_is_refused() {
        let mut v = sample_json();
        v["thresholds"]["counterfeit"] = 0.25.into();
        let err = parse(&v).unwrap_err();
        assert!(
            err.to_string()
                .contains("must lie above thresholds.confidence"),
            "{err}"
        );
    }

    #[test]
    fn a_manifest_without_a_usable_gs1_prefix_is_refused() {
        // No prefix would make every barcoded pack "outside the brand's prefixes": a false COUNTERFEIT.
        for prefixes in [
            serde_json::json!([]),
            serde_json::json!(["50-12"]),
            serde_json::json!(["123"]),
        ] {
            let mut v = sample_json();
            v["gs1_prefixes"] = prefixes.clone();
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains("gs1_prefixes"), "{prefixes}: {err}");
        }
    }

    #[test]
    fn wrong_schema_is_named() {
        let mut v = sample_json();
        v["schema"] = "hallmark.model/2".into();
        assert_eq!(
            parse(&v).unwrap_err(),
            ManifestError::Schema {
                found: "hallmark.model/2".into()
            }
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(&str, serde_json::Value); 6] = [
            ("brand", serde_json::json!("North Wind")),
            (
                "classes",
                serde_json::json!([{"id": 1, "name": "x", "role": "genuine"}]),
            ),
            ("model.file", serde_json::json!("../etc/passwd")),
            ("thresholds.iou", serde_json::json!(1.5)),
            ("model.sha256", serde_json::json!("abc")),
            ("thresholds.counterfeit", serde_json::json!(0.25)),
        ];
        for (field, value) in cases {
            let mut v = sample_json();
            let path: Vec<&str> = field.split('.').collect();
            let slot = path.iter().fold(&mut v, |acc, k| &mut acc[*k]);
            *slot = value;
            match parse(&v) {
                Err(ManifestError::Field { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_file_list_names_plain_paths_with_digests_and_agrees_with_the_model() {
        let sha = "ab".repeat(32);
        let with = |files: serde_json::Value| {
            let mut v = sample_json();
            v["files"] = files;
            parse(&v)
        };
        let m = with(serde_json::json!({"model.onnx": sha, "selftest/a.jpg": "cd".repeat(32)}))
            .unwrap();
        assert_eq!(m.files.as_ref().map(|f| f.len()), Some(2));
        assert_eq!(parse(&sample_json()).unwrap().files, None);
        for (files, problem) in [
            (serde_json::json!({}), "model.onnx is not listed"),
            (
                serde_json::json!({"model.onnx": "cd".repeat(32)}),
                "another SHA-256",
            ),
            (serde_json::json!({"model.onnx": sha, "x": "abc"}), "64 hex"),
            (
                serde_json::json!({"model.onnx": sha, "a/b/c": sha}),
                "\"a/b/c\"",
            ),
            (
                serde_json::json!({"model.onnx": sha, "../x": sha}),
                "\"../x\"",
            ),
            (
                serde_json::json!({"model.onnx": sha, ".hidden": sha}),
                "\".hidden\"",
            ),
            (
                serde_json::json!({"model.onnx": sha, "/abs": sha}),
                "\"/abs\"",
            ),
            (
                serde_json::json!({"model.onnx": sha, "manifest.sig": sha}),
                "\"manifest.sig\"",
            ),
            (
                serde_json::json!({"model.onnx": sha, "a\\b": sha}),
                "is not a file",
            ),
        ] {
            match with(files.clone()) {
                Err(ManifestError::Field { field, problem: p }) => {
                    assert_eq!(field, "files");
                    assert!(p.contains(problem), "{files}: {p}");
                }
                other => panic!("{files}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_role_and_missing_fields_are_parse_errors() {
        let mut v = sample_json();
        v["classes"][0]["role"] = "maybe".into();
        assert!(matches!(parse(&v), Err(ManifestError::Parse(_))));
        let mut v = sample_json();
        v.as_object_mut().unwrap().remove("thresholds");
        assert!(parse(&v).unwrap_err().to_string().contains("thresholds"));
    }
}
