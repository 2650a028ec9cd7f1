//! Barcode rules on real rendered labels: each class's reference artwork (`models/<brand>/reference/`,
//! drawn by the pipeline's own label renderer) placed on a plain background and scanned with the
//! shipped bundle. A counterfeit's barcode flaw (wrong check digit, another product's GTIN, a GTIN
//! outside the brand's GS1 prefix) makes it counterfeit with the reason a clerk can act on; a genuine
//! label's code matches its product and never turns it counterfeit.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The reference labels of `brand`, each centred on a 960×720 grey frame at 420 px.
fn composites(brand: &str, dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join(format!("models/{brand}/reference")))
        .unwrap()
        .flatten()
    {
        let path = entry.path();
        let class = path.file_stem().unwrap().to_string_lossy().into_owned();
        let label = image::open(&path).unwrap().to_rgb8();
        let scale = 420.0 / label.width().max(label.height()) as f32;
        let (w, h) = (
            (label.width() as f32 * scale) as u32,
            (label.height() as f32 * scale) as u32,
        );
        let label = image::imageops::resize(&label, w, h, image::imageops::FilterType::Triangle);
        let mut frame = image::RgbImage::from_pixel(960, 720, image::Rgb([128, 128, 128]));
        image::imageops::replace(
            &mut frame,
            &label,
            ((960 - w) / 2) as i64,
            ((720 - h) / 2) as i64,
        );
        let target = dir.join(format!("{class}.png"));
        frame.save(&target).unwrap();
        out.push((class, target));
    }
    out.sort();
    out
}

fn check(brand: &str) {
    let dir = tempfile::tempdir().unwrap();
    let files = composites(brand, dir.path());
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(repo().join(format!("models/{brand}/manifest.json"))).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hallmark"))
        .current_dir(repo())
        .env_remove("HALLMARK_MODEL_BUNDLE")
        .args(["scan", "--model"])
        .arg(repo().join(format!("models/{brand}")))
        .args(files.iter().map(|f| &f.1))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut genuine_called_genuine = 0;
    let mut genuine = 0;
    for ((class, _), r) in files.iter().zip(&records) {
        let items = r["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{class}: one pack, one item: {r}");
        let item = &items[0];
        let spec = manifest["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == class.as_str())
            .unwrap();
        let code = &item["barcode"];
        assert!(
            code["text"].is_string(),
            "{class}: the label's barcode was read: {item}"
        );
        let verdict = item["verdict"].as_str().unwrap();
        let reason = item["reason"].as_str().unwrap();
        if spec["role"] == "genuine" {
            genuine += 1;
            assert_eq!(code["gtin"], spec["gtin"], "{class}: {item}");
            assert_eq!(code["valid"], true);
            assert!(
                verdict == "genuine" || verdict == "inconclusive",
                "{class}: a genuine label called {verdict}: {reason}"
            );
            // Recognised as its own product even when too weak to call genuine (the thresholds are
            // chosen under the counterfeit -> genuine cap on real photos, so a flat label may fall short).
            assert_eq!(item["product"], spec["product"], "{class}: {item}");
            genuine_called_genuine += (verdict == "genuine") as usize;
        } else {
            assert_eq!(verdict, "counterfeit", "{class}: {item}");
            let expected = ["wrong check digit", "belongs to", "outside"];
            assert!(
                expected.iter().any(|e| reason.contains(e)),
                "{class}: the reason names the barcode's flaw: {reason}"
            );
        }
    }
    assert!(
        genuine_called_genuine >= 1 && genuine >= 2,
        "{genuine_called_genuine} of {genuine} genuine labels called genuine"
    );
    let reasons: String = records
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    for flaw in ["wrong check digit", "belongs to", "outside"] {
        assert!(
            reasons.contains(flaw),
            "no counterfeit of {brand} was caught by its '{flaw}' flaw:\n{reasons}"
        );
    }
}

#[test]
fn northwind_labels_barcode_flaws_are_caught_with_their_reason() {
    check("northwind");
}

#[test]
fn aurora_labels_barcode_flaws_are_caught_with_their_reason() {
    check("aurora");
}
