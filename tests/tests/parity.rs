//! Parity with the reference YOLOv5 implementation: for every shipped bundle and every sample image,
//! Hallmark's boxes must lie within 1 px and its confidences within 0.01 of the goldens written by
//! `models/pipeline/parity_golden.py` (the yolov5 package's own letterbox, NMS and box scaling around the
//! same ONNX model), with the same number of boxes of the same classes — at the manifest's confidence
//! threshold and at a low one that exercises many more boxes.

use hallmark_agent::detector::Settings;
use hallmark_agent::imageio::{self, ImageLimits};
use hallmark_agent::{Detection, Frame, Pipeline, RuntimeOptions};
use hallmark_e2e::{demo_key, golden_dir, models_dir};
use serde_json::Value;

const BOX_TOLERANCE_PX: f32 = 1.0;
const CONFIDENCE_TOLERANCE: f32 = 0.01;

#[derive(Debug, Clone)]
struct Reference {
    class: u32,
    confidence: f32,
    bbox: [f32; 4],
}

fn references(v: &Value) -> Vec<Reference> {
    v.as_array()
        .expect("golden detections are a list")
        .iter()
        .map(|d| Reference {
            class: d["class"].as_u64().expect("class") as u32,
            confidence: d["confidence"].as_f64().expect("confidence") as f32,
            bbox: std::array::from_fn(|i| d["box"][i].as_f64().expect("box") as f32),
        })
        .collect()
}

/// Matches each reference box to a Hallmark box of the same class; returns the problems found.
fn compare(
    image: &str,
    conf: &str,
    ours: &[Detection],
    refs: &[Reference],
    worst: &mut (f32, f32),
) -> Vec<String> {
    let mut problems = Vec::new();
    if ours.len() != refs.len() {
        problems.push(format!(
            "{image} @ {conf}: {} boxes, reference has {}",
            ours.len(),
            refs.len()
        ));
    }
    let mut used = vec![false; ours.len()];
    for r in refs {
        let best = ours
            .iter()
            .enumerate()
            .filter(|(i, d)| !used[*i] && d.class == r.class)
            .map(|(i, d)| {
                (
                    i,
                    d,
                    d.bbox
                        .iter()
                        .zip(r.bbox)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max),
                )
            })
            .min_by(|a, b| a.2.total_cmp(&b.2));
        match best {
            Some((i, d, dist)) if dist <= BOX_TOLERANCE_PX && (d.score - r.confidence).abs() <= CONFIDENCE_TOLERANCE => {
                used[i] = true;
                worst.0 = worst.0.max(dist);
                worst.1 = worst.1.max((d.score - r.confidence).abs());
            }
            Some((_, d, dist)) => problems.push(format!(
                "{image} @ {conf}: class {} box {:?} conf {:.4} vs reference {:?} conf {:.4} (off by {dist:.2} px)",
                r.class, d.bbox, d.score, r.bbox, r.confidence
            )),
            None => problems.push(format!("{image} @ {conf}: no box of class {} for reference {:?} conf {:.4}", r.class, r.bbox, r.confidence)),
        }
    }
    problems
}

#[test]
fn every_box_and_confidence_matches_the_yolov5_reference_on_every_sample() {
    // Every shipped bundle with sample images must have its golden, covering exactly those images.
    let mut brands: Vec<String> = std::fs::read_dir(models_dir())
        .expect("models folder")
        .flatten()
        .filter(|e| e.path().join("manifest.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|b| models_dir().join("samples").join(b).is_dir())
        .collect();
    brands.sort();
    assert!(
        !brands.is_empty(),
        "no shipped bundles with samples under {}",
        models_dir().display()
    );
    let rerun = "re-run `models/.venv-train/bin/python models/pipeline/parity_golden.py`";

    let mut checked = 0;
    let mut worst = (0f32, 0f32);
    let mut problems = Vec::new();
    for brand in &brands {
        let golden = golden_dir().join(format!("{brand}.json"));
        assert!(
            golden.is_file(),
            "no parity golden {} for the shipped bundle {brand}: {rerun}",
            golden.display()
        );
        let doc: Value = serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
        assert_eq!(doc["brand"].as_str(), Some(brand.as_str()));
        let bundle = models_dir().join(brand);
        let mut pipeline = Pipeline::open(RuntimeOptions::default(), &bundle, &[demo_key()])
            .unwrap_or_else(|e| panic!("{}: {e}", bundle.display()));
        assert_eq!(
            doc["model_sha256"].as_str(),
            Some(pipeline.manifest().model.sha256.as_str()),
            "goldens for {brand} were made from another model: {rerun}"
        );
        let iou = doc["iou"].as_f64().unwrap() as f32;
        let max_det = doc["max_det"].as_u64().unwrap() as usize;
        let images = doc["images"].as_object().expect("images");
        let mut golden_names: Vec<&str> = images.keys().map(String::as_str).collect();
        golden_names.sort();
        let sample_names: Vec<String> = hallmark_e2e::samples(brand)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            golden_names, sample_names,
            "{brand}: the golden does not cover exactly the sample images: {rerun}"
        );
        for (name, expected) in images {
            let path = models_dir().join("samples").join(brand).join(name);
            let decoded =
                imageio::load(&path, ImageLimits::default()).unwrap_or_else(|e| panic!("{e}"));
            let (w, h) = decoded.rgb.dimensions();
            assert_eq!(
                (w as u64, h as u64),
                (
                    expected["width"].as_u64().unwrap(),
                    expected["height"].as_u64().unwrap()
                ),
                "{name}: size"
            );
            for (conf, refs) in expected["detections"].as_object().expect("detections") {
                let confidence: f32 = conf.parse().expect("confidence key");
                pipeline.detector.set_settings(Settings {
                    confidence,
                    iou,
                    max_detections: max_det,
                });
                let (ours, _) = pipeline
                    .detector
                    .detect(Frame::rgb(w, h, decoded.rgb.as_raw()))
                    .unwrap();
                let refs = references(refs);
                checked += refs.len();
                problems.extend(compare(
                    &format!("{brand}/{name}"),
                    conf,
                    ours,
                    &refs,
                    &mut worst,
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} parity problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        checked > 0,
        "the goldens hold no boxes at all: parity would be vacuous"
    );
    eprintln!(
        "parity: {checked} reference boxes matched; largest deviation {:.4} px (limit {BOX_TOLERANCE_PX}), {:.6} confidence (limit {CONFIDENCE_TOLERANCE})",
        worst.0, worst.1
    );
}
