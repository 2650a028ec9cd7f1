//! Which encoding of a bundle's detector a device runs: the main model or one of the manifest's
//! `variants` (their types and checks are the manifest's, `hallmark_proto::manifest`). A device picks
//! one with `model.variant` (by name, for every brand or per brand: [`variant_for`]) or
//! `model.precision`; [`choose`] is that choice, pure.

use thiserror::Error;

use hallmark_proto::manifest::{InputDtype, Manifest, Precision};

/// `model.precision`: which precision to run; `auto` is the main model on the CPU and an `fp16` variant,
/// where the bundle has one, on a GPU provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrecisionChoice {
    #[default]
    Auto,
    Exactly(Precision),
}

impl std::str::FromStr for PrecisionChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "auto" | "" => PrecisionChoice::Auto,
            "fp32" => PrecisionChoice::Exactly(Precision::Fp32),
            "fp16" => PrecisionChoice::Exactly(Precision::Fp16),
            "int8" => PrecisionChoice::Exactly(Precision::Int8),
            other => return Err(format!("{other:?} is not one of auto, fp32, fp16, int8")),
        })
    }
}

/// Which encoding a device runs: `model.variant` (a name or per-brand names, see [`variant_for`]; `main`
/// for the main model; none: the bundle's default for `mode`, else the main model) and
/// `model.precision`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodingChoice {
    pub variant: Option<String>,
    pub precision: PrecisionChoice,
    /// `kiosk` or `conveyor`: the mode whose default variant a bundle may name (`default_variants`).
    pub mode: Option<String>,
}

/// The name `model.variant` may use for the main model (to run it where a bundle names a default).
pub const MAIN: &str = "main";

#[derive(Debug, Error, PartialEq)]
pub enum VariantError {
    #[error("model.variant {0}")]
    Setting(String),
    #[error("has no variant {name:?} (it has: {available})")]
    Unknown { name: String, available: String },
    #[error("variant {name:?} is {has}, but model.precision asks for {wanted}")]
    PrecisionMismatch {
        name: String,
        has: Precision,
        wanted: Precision,
    },
    #[error("has no {wanted} encoding (it has: {available}); set model.precision = \"auto\" or name a variant")]
    NoPrecision {
        wanted: Precision,
        available: String,
    },
}

/// The variant `model.variant` names for `brand`. The setting is one name for every bundle
/// (`fast-224`) or comma-separated `brand=name` pairs (`northwind=quarter-turns, aurora=fast-224`), with
/// at most one bare name among them for the brands not named. A brand neither named nor covered by a
/// bare name runs its bundle's default for the mode ([`choose`]), else its main model: brands ship
/// different variants, so a multi-brand device names each.
pub fn variant_for<'a>(setting: &'a str, brand: &str) -> Result<Option<&'a str>, String> {
    let (mut every, mut mine) = (None, None);
    let mut named = std::collections::BTreeSet::new();
    for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once('=') {
            None if every.is_none() => every = Some(entry),
            None => {
                return Err(format!(
                    "{setting:?}: two names for every brand ({:?} and {entry:?})",
                    every.unwrap_or_default()
                ))
            }
            Some((b, name)) => {
                let (b, name) = (b.trim(), name.trim());
                if b.is_empty() || name.is_empty() || name.contains('=') {
                    return Err(format!("{setting:?}: {entry:?} is not brand=variant"));
                }
                if !named.insert(b) {
                    return Err(format!("{setting:?}: brand {b:?} is named twice"));
                }
                if b == brand {
                    mine = Some(name);
                }
            }
        }
    }
    Ok(mine.or(every))
}

/// Which encoding of `manifest` to run: `None` is the main model, `Some(i)` is `variants[i]`. `gpu`: the
/// preferred execution provider is a GPU one.
pub fn choose(
    manifest: &Manifest,
    choice: &EncodingChoice,
    gpu: bool,
) -> Result<Option<usize>, VariantError> {
    let variants = &manifest.variants;
    let available = || {
        std::iter::once("the main model (fp32)".to_string())
            .chain(
                variants
                    .iter()
                    .map(|v| format!("{} ({})", v.name, v.precision)),
            )
            .collect::<Vec<_>>()
            .join(", ")
    };
    let named = match &choice.variant {
        Some(setting) => variant_for(setting, &manifest.brand).map_err(VariantError::Setting)?,
        None => None,
    };
    if named == Some(MAIN) {
        return Ok(None);
    }
    // Design: the bundle's default for the mode stands for a variant named in the configuration, but
    // not against an explicit precision it does not have (model.precision then decides as before).
    let named = named.or_else(|| {
        let default = choice
            .mode
            .as_deref()
            .and_then(|m| manifest.default_variants.get(m))?;
        let v = variants.iter().find(|v| &v.name == default)?;
        match choice.precision {
            PrecisionChoice::Exactly(p) if p != v.precision => None,
            _ => Some(default.as_str()),
        }
    });
    if let Some(name) = named {
        let i = variants
            .iter()
            .position(|v| v.name == name)
            .ok_or_else(|| VariantError::Unknown {
                name: name.to_string(),
                available: available(),
            })?;
        if let PrecisionChoice::Exactly(wanted) = choice.precision {
            if variants[i].precision != wanted {
                return Err(VariantError::PrecisionMismatch {
                    name: name.to_string(),
                    has: variants[i].precision,
                    wanted,
                });
            }
        }
        return Ok(Some(i));
    }
    let first = |p: Precision, d: InputDtype| {
        variants
            .iter()
            .position(|v| v.precision == p && v.input.dtype == d)
    };
    match choice.precision {
        PrecisionChoice::Exactly(Precision::Fp32) => Ok(None),
        PrecisionChoice::Auto if !gpu => Ok(None),
        // On a GPU: FP16 first (it only pays there), then bytes in (the GPU normalises and the
        // frame crosses the bus at a quarter of the size); a bundle with neither runs its main model.
        PrecisionChoice::Auto => Ok(first(Precision::Fp16, InputDtype::Uint8)
            .or_else(|| first(Precision::Fp16, InputDtype::Float32))
            .or_else(|| first(Precision::Fp32, InputDtype::Uint8))),
        PrecisionChoice::Exactly(wanted) => {
            match variants.iter().position(|v| v.precision == wanted) {
                Some(i) => Ok(Some(i)),
                None => Err(VariantError::NoPrecision {
                    wanted,
                    available: available(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_proto::manifest::fixtures::sample_json;

    fn with_variants(variants: serde_json::Value) -> Result<Manifest, String> {
        let mut v = sample_json();
        v["variants"] = variants;
        Manifest::parse(&serde_json::to_vec(&v).unwrap()).map_err(|e| e.to_string())
    }

    fn variant(name: &str, file: &str, precision: &str, dtype: &str) -> serde_json::Value {
        serde_json::json!({
            "name": name, "file": file, "sha256": "cd".repeat(32), "precision": precision,
            "input": {"name": "images", "dtype": dtype, "width": 224, "height": 224},
            "thresholds": {"confidence": 0.25, "iou": 0.45, "genuine": 0.6, "counterfeit": 0.8}
        })
    }

    fn three() -> Manifest {
        with_variants(serde_json::json!([
            variant("fast-224", "model-224.onnx", "fp32", "float32"),
            variant("half", "model-fp16.onnx", "fp16", "float32"),
            variant("gpu-u8", "model-u8.onnx", "fp16", "uint8"),
        ]))
        .unwrap()
    }

    fn pick(
        m: &Manifest,
        variant: Option<&str>,
        precision: &str,
        gpu: bool,
    ) -> Result<Option<usize>, VariantError> {
        let choice = EncodingChoice {
            variant: variant.map(str::to_string),
            precision: precision.parse().unwrap(),
            mode: None,
        };
        choose(m, &choice, gpu)
    }

    #[test]
    fn a_bundle_names_the_variant_each_mode_runs_by_default_and_the_configuration_wins() {
        let mut m = three();
        m.default_variants
            .insert("conveyor".into(), "fast-224".into());
        let run = |m: &Manifest, variant: Option<&str>, precision: &str, mode: &str| {
            let choice = EncodingChoice {
                variant: variant.map(str::to_string),
                precision: precision.parse().unwrap(),
                mode: Some(mode.into()),
            };
            choose(m, &choice, false)
        };
        assert_eq!(run(&m, None, "auto", "conveyor"), Ok(Some(0)));
        assert_eq!(
            run(&m, None, "auto", "kiosk"),
            Ok(None),
            "a mode not named: main"
        );
        assert_eq!(run(&m, Some("half"), "auto", "conveyor"), Ok(Some(1)));
        assert_eq!(run(&m, Some("main"), "auto", "conveyor"), Ok(None));
        assert_eq!(
            run(&m, None, "fp16", "conveyor"),
            Ok(Some(1)),
            "an explicit precision the default lacks decides"
        );
        let mut v = serde_json::to_value(&m).unwrap();
        v["default_variants"] = serde_json::json!({"conveyor": "nope"});
        let err = Manifest::parse(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("default_variants") && err.contains("nope"),
            "{err}"
        );
        v["default_variants"] = serde_json::json!({"belt": "fast-224"});
        let err = Manifest::parse(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a mode"), "{err}");
    }

    #[test]
    fn a_manifest_without_variants_runs_its_main_model_whatever_the_device() {
        let m = with_variants(serde_json::json!([])).unwrap();
        for gpu in [false, true] {
            assert_eq!(pick(&m, None, "auto", gpu), Ok(None));
            assert_eq!(pick(&m, None, "fp32", gpu), Ok(None));
        }
        let err = pick(&m, None, "int8", false).unwrap_err().to_string();
        assert!(
            err.contains("no int8 encoding") && err.contains("main model"),
            "{err}"
        );
    }

    #[test]
    fn a_named_variant_is_taken_and_an_unknown_name_lists_what_there_is() {
        let m = three();
        assert_eq!(pick(&m, Some("fast-224"), "auto", false), Ok(Some(0)));
        assert_eq!(pick(&m, Some("fast-224"), "fp32", true), Ok(Some(0)));
        let err = pick(&m, Some("fast"), "auto", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fast-224 (fp32)") && err.contains("half (fp16)"),
            "{err}"
        );
        assert!(matches!(
            pick(&m, Some("fast-224"), "fp16", false),
            Err(VariantError::PrecisionMismatch { .. })
        ));
    }

    #[test]
    fn a_variant_is_named_for_every_brand_or_per_brand() {
        assert_eq!(variant_for("fast-224", "aurora"), Ok(Some("fast-224")));
        let per = "northwind=quarter-turns";
        assert_eq!(variant_for(per, "northwind"), Ok(Some("quarter-turns")));
        assert_eq!(
            variant_for(per, "aurora"),
            Ok(None),
            "not named: the main model"
        );
        let mixed = " fast-224 , northwind = quarter-turns ";
        assert_eq!(variant_for(mixed, "northwind"), Ok(Some("quarter-turns")));
        assert_eq!(variant_for(mixed, "aurora"), Ok(Some("fast-224")));
        for bad in ["a, b", "=x", "northwind=", "n=a=b", "n=a, n=b"] {
            assert!(variant_for(bad, "n").is_err(), "{bad}");
        }
        // Through choose: the manifest's brand picks its entry; a bad setting is one clear error.
        let m = three();
        let brand = m.brand.clone();
        let other = format!("someone-else=half, {brand}=fast-224");
        assert_eq!(pick(&m, Some(&other), "auto", false), Ok(Some(0)));
        assert_eq!(pick(&m, Some("someone-else=half"), "auto", false), Ok(None));
        let err = pick(&m, Some("x, y"), "auto", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("model.variant ") && err.contains("two names"),
            "{err}"
        );
    }

    #[test]
    fn auto_keeps_the_cpu_on_the_main_model_and_gives_a_gpu_fp16_then_bytes_in() {
        let m = three();
        assert_eq!(pick(&m, None, "auto", false), Ok(None));
        assert_eq!(pick(&m, None, "auto", true), Ok(Some(2)));
        assert_eq!(pick(&m, None, "fp16", false), Ok(Some(1)));
        assert_eq!(pick(&m, Some("gpu-u8"), "auto", false), Ok(Some(2)));
        // Without the fp16 uint8 variant: the fp16 float one; without any fp16: fp32 bytes in.
        let two = with_variants(serde_json::json!([
            variant("u8", "model-u8.onnx", "fp32", "uint8"),
            variant("half", "model-fp16.onnx", "fp16", "float32"),
        ]))
        .unwrap();
        assert_eq!(pick(&two, None, "auto", true), Ok(Some(1)));
        let bytes = with_variants(serde_json::json!([variant(
            "u8",
            "model-u8.onnx",
            "fp32",
            "uint8"
        ),]))
        .unwrap();
        assert_eq!(pick(&bytes, None, "auto", true), Ok(Some(0)));
        assert_eq!(pick(&bytes, None, "auto", false), Ok(None));
        assert_eq!(pick(&bytes, None, "fp32", true), Ok(None));
    }

    #[test]
    fn bad_variants_are_refused_naming_the_field() {
        let cases = [
            (
                serde_json::json!([variant("Fast", "m.onnx", "fp32", "float32")]),
                "variants[0].name",
            ),
            (
                serde_json::json!([
                    variant("a", "m.onnx", "fp32", "float32"),
                    variant("a", "n.onnx", "fp32", "float32")
                ]),
                "variants[1].name",
            ),
            (
                serde_json::json!([variant("a", "model.onnx", "fp32", "float32")]),
                "variants[0].file",
            ),
            (
                serde_json::json!([variant("a", "../m.onnx", "fp32", "float32")]),
                "variants[0].file",
            ),
            (
                serde_json::json!([variant("a", "manifest.sig", "fp32", "float32")]),
                "variants[0].file",
            ),
        ];
        for (variants, field) in cases {
            let err = with_variants(variants.clone()).unwrap_err();
            assert!(err.contains(field), "{variants}: {err}");
        }
        let mut odd = variant("a", "m.onnx", "fp32", "float32");
        odd["input"]["width"] = 230.into();
        assert!(with_variants(serde_json::json!([odd]))
            .unwrap_err()
            .contains("variants[0].input"));
        let mut blind = variant("a", "m.onnx", "fp32", "float32");
        blind["thresholds"]["counterfeit"] = 0.2.into();
        let err = with_variants(serde_json::json!([blind])).unwrap_err();
        assert!(err.contains("variants[0].thresholds.counterfeit"), "{err}");
        let mut unknown = variant("a", "m.onnx", "fp64", "float32");
        unknown["precision"] = "fp64".into();
        assert!(with_variants(serde_json::json!([unknown])).is_err());
    }
}
