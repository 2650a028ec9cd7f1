//! The shared verdict vectors (`tests/vectors/verdict.json`): the agent's rule must give, case by case,
//! the items, verdicts, products, confidences and primary item the file expects, remember across a
//! case's frames what the rule says to remember, and refuse the manifests the file says to refuse. The
//! model pipeline's Python rule passes the same file, so the accuracy it publishes is the accuracy the
//! agent delivers.

use std::cell::RefCell;
use std::collections::HashSet;

use hallmark_agent::detector::Detection;
use hallmark_core::verdict::{judge, serial, Code, Context, Sgtin};
use hallmark_proto::Manifest;
use serde_json::Value;

fn manifest(partial: &Value) -> Result<Manifest, String> {
    let mut v = serde_json::json!({
        "schema": "hallmark.model/1", "revision": 1,
        "model": {"file": "model.onnx", "sha256": "0".repeat(64), "format": "yolov5",
                  "input": {"name": "images", "width": 320, "height": 320}, "output": {"name": "output0"}},
    });
    for (k, val) in partial.as_object().expect("manifest object") {
        v[k] = val.clone();
    }
    Manifest::parse(&serde_json::to_vec(&v).unwrap()).map_err(|e| e.to_string())
}

fn f(v: &Value) -> f32 {
    v.as_f64().expect("number") as f32
}

fn detections(v: &Value) -> Vec<Detection> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| Detection {
            class: d[5].as_u64().unwrap() as u32,
            score: f(&d[4]),
            bbox: [f(&d[0]), f(&d[1]), f(&d[2]), f(&d[3])],
        })
        .collect()
}

fn codes(v: &Value) -> Vec<Code> {
    v.as_array()
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
        .collect()
}

/// One frame of a case against its `expect`; the SGTINs it adds to `memory`.
fn check_frame(
    m: &Manifest,
    case: &Value,
    frame: &Value,
    memory: &RefCell<HashSet<Sgtin>>,
) -> Vec<String> {
    let detections = detections(&frame["detections"]);
    let codes = codes(&frame["barcodes"]);
    let size = (
        case["width"].as_u64().unwrap() as u32,
        case["height"].as_u64().unwrap() as u32,
    );
    let seen = |s: &Sgtin| memory.borrow().contains(s);
    let ctx = Context {
        today: case["today"].as_str().unwrap(),
        seen: &seen,
    };
    let got = judge(&detections, &codes, m, size, &ctx);

    let expect = &frame["expect"];
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
    for item in &got.items {
        memory
            .borrow_mut()
            .extend(serial::remembered(&item.decision, &item.codes));
    }
    problems
}

#[test]
fn the_agent_rule_passes_every_shared_vector() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/verdict.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).expect("read vectors"))
        .expect("vectors are JSON");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 30,
        "the vector file lost cases: {}",
        cases.len()
    );
    let (mut failures, mut sequences, mut refusals) = (Vec::new(), 0, 0);
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let m = match (
            manifest(&case["manifest"]),
            case["expect"]["error"].as_str(),
        ) {
            (Err(e), Some(field)) if e.contains(field) => {
                refusals += 1;
                continue;
            }
            (Err(e), _) => {
                failures.push(format!("{name}: manifest refused: {e}"));
                continue;
            }
            (Ok(_), Some(field)) => {
                failures.push(format!(
                    "{name}: manifest accepted, expected a refusal naming {field}"
                ));
                continue;
            }
            (Ok(m), None) => m,
        };
        let memory: RefCell<HashSet<Sgtin>> = RefCell::new(
            case["seen_serials"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| Sgtin {
                    gtin: p[0].as_str().unwrap().to_string(),
                    serial: p[1].as_str().unwrap().to_string(),
                })
                .collect(),
        );
        let frames: Vec<&Value> = match case["frames"].as_array() {
            Some(frames) => {
                sequences += 1;
                frames.iter().collect()
            }
            None => vec![case],
        };
        for (k, frame) in frames.iter().enumerate() {
            let problems = check_frame(&m, case, frame, &memory);
            if !problems.is_empty() {
                failures.push(format!("{name} (frame {k}): {}", problems.join("; ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "vector cases failed:\n{}",
        failures.join("\n")
    );
    assert!(
        sequences >= 1 && refusals >= 1,
        "the memory and refusal cases ran"
    );
}
