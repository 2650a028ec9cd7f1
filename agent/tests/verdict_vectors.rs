//! The shared verdict vectors (`tests/vectors/verdict.json`): the agent's rule must give, case by case,
//! the items, verdicts, products, confidences and primary item the file expects. The model pipeline's
//! Python rule passes the same file, so the accuracy it publishes is the accuracy the agent delivers.

use std::collections::HashSet;

use hallmark_agent::bundle::Manifest;
use hallmark_agent::detector::Detection;
use hallmark_agent::verdict::{judge, Code};
use serde_json::Value;

fn manifest(partial: &Value) -> Manifest {
    let mut v = serde_json::json!({
        "schema": "hallmark.model/1", "revision": 1,
        "model": {"file": "model.onnx", "sha256": "0".repeat(64), "format": "yolov5",
                  "input": {"name": "images", "width": 320, "height": 320}, "output": {"name": "output0"}},
    });
    for (k, val) in partial.as_object().expect("manifest object") {
        v[k] = val.clone();
    }
    Manifest::parse(&serde_json::to_vec(&v).unwrap()).expect("vector manifest parses")
}

fn f(v: &Value) -> f32 {
    v.as_f64().expect("number") as f32
}

#[test]
fn the_agent_rule_passes_every_shared_vector() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/verdict.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).expect("read vectors"))
        .expect("vectors are JSON");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 20,
        "the vector file lost cases: {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let m = manifest(&case["manifest"]);
        let detections: Vec<Detection> = case["detections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| Detection {
                class: d[5].as_u64().unwrap() as u32,
                score: f(&d[4]),
                bbox: [f(&d[0]), f(&d[1]), f(&d[2]), f(&d[3])],
            })
            .collect();
        let codes: Vec<Code> = case["barcodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| Code {
                format: "ean13".into(),
                text: b["gtin"].as_str().unwrap_or("").to_string(),
                gtin: b["gtin"].as_str().map(str::to_string),
                serial: b["serial"].as_str().map(str::to_string),
                expiry: b["expiry"].as_str().map(str::to_string),
                check_digit_ok: b["check_digit_ok"].as_bool().unwrap(),
                bbox: [
                    f(&b["box"][0]),
                    f(&b["box"][1]),
                    f(&b["box"][2]),
                    f(&b["box"][3]),
                ],
            })
            .collect();
        let seen: HashSet<String> = case["seen_serials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let size = (
            case["width"].as_u64().unwrap() as u32,
            case["height"].as_u64().unwrap() as u32,
        );
        let got = judge(
            &detections,
            &codes,
            &m,
            size,
            case["today"].as_str().unwrap(),
            &|s| seen.contains(s),
        );

        let expect = &case["expect"];
        let want_items = expect["items"].as_array().unwrap();
        let mut problems = Vec::new();
        if got.items.len() != want_items.len() {
            problems.push(format!(
                "{} items, expected {}",
                got.items.len(),
                want_items.len()
            ));
        }
        for (g, w) in got.items.iter().zip(want_items) {
            let members: Vec<usize> = w["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            if g.members != members {
                problems.push(format!(
                    "item {}: members {:?}, expected {members:?}",
                    g.index, g.members
                ));
            }
            if g.decision.verdict.as_str() != w["verdict"].as_str().unwrap() {
                problems.push(format!(
                    "item {}: {} ({}), expected {}",
                    g.index,
                    g.decision.verdict.as_str(),
                    g.decision.reason,
                    w["verdict"]
                ));
            }
            if g.decision.product != w["product"].as_str().unwrap() {
                problems.push(format!(
                    "item {}: product {:?}, expected {}",
                    g.index, g.decision.product, w["product"]
                ));
            }
            if (g.decision.confidence - f(&w["confidence"])).abs() > 1e-6 {
                problems.push(format!(
                    "item {}: confidence {}, expected {}",
                    g.index, g.decision.confidence, w["confidence"]
                ));
            }
        }
        let want_primary = expect["primary"].as_u64().map(|p| p as usize);
        if got.primary != want_primary {
            problems.push(format!(
                "primary {:?}, expected {want_primary:?}",
                got.primary
            ));
        }
        if got.verdict.verdict.as_str() != expect["verdict"].as_str().unwrap() {
            problems.push(format!(
                "frame verdict {}, expected {}",
                got.verdict.verdict.as_str(),
                expect["verdict"]
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "vector cases failed:\n{}",
        failures.join("\n")
    );
}
