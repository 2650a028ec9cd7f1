//! `hallmark evidence export` end to end: the daemon replays the demo samples (with the real ONNX
//! Runtime and the shipped bundle), its counterfeit and inconclusive verdicts leave evidence pictures,
//! and the export turns them into a COCO dataset whose boxes are the events' items, on the raw frames
//! while they exist and on the evidence pictures (banner cut off) once they are gone.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{clean_command, repo};
use serde_json::Value;

fn hallmark(state: &Path) -> std::process::Command {
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_hallmark"));
    cmd.env("HALLMARK_AGENT_STATE_DIR", state)
        .env("HALLMARK_RUNTIME_INTRA_THREADS", "2");
    cmd
}

/// Runs the export (raw frames of the events file read under `frames`) and checks its summary counts
/// `missing` verdicts whose picture is not there.
fn export(state: &Path, events: &Path, frames: Option<&Path>, out: &Path, missing: usize) -> Value {
    let mut cmd = hallmark(state);
    cmd.args(["evidence", "export", "--events"])
        .arg(events)
        .arg("--out")
        .arg(out);
    if let Some(dir) = frames {
        cmd.arg("--frames").arg(dir);
    }
    let run = cmd.output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        said.contains(&format!("{missing} named a picture no longer there")),
        "{said}"
    );
    serde_json::from_slice(&std::fs::read(out.join("annotations.json")).unwrap()).unwrap()
}

/// The folder above `frames` (which still exists after `frames` is removed).
fn frames_parent(frames: &Path) -> std::path::PathBuf {
    frames.parent().unwrap().to_path_buf()
}

#[test]
fn unsure_verdicts_become_a_pre_labelled_coco_dataset_on_raw_frames_or_cut_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let mut sizes = BTreeMap::new();
    for e in std::fs::read_dir(repo().join("models/samples/northwind"))
        .unwrap()
        .flatten()
    {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "jpg") {
            let dst = frames.join(p.file_name().unwrap());
            std::fs::copy(&p, &dst).unwrap();
            sizes.insert(
                dst.file_name().unwrap().to_string_lossy().into_owned(),
                image::image_dimensions(&dst).unwrap(),
            );
        }
    }
    let state = tmp.path().join("state");
    let run = hallmark(&state)
        .arg("run")
        .env("HALLMARK_SOURCE_PATH", &frames)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let events_file = tmp.path().join("events.jsonl");
    std::fs::write(&events_file, &run.stdout).unwrap();
    let named: Vec<Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["evidence"].is_string())
        .collect();
    assert!(
        named.len() >= 2,
        "the samples hold counterfeit packs: {named:?}"
    );
    // The evidence writer may still skip a picture an event names (low disk, a write error); the export
    // leaves such a verdict out, so the expectation is the pictures that are there.
    let unsure: Vec<Value> = named
        .iter()
        .filter(|e| {
            state
                .join("evidence")
                .join(e["evidence"].as_str().unwrap())
                .is_file()
        })
        .cloned()
        .collect();
    assert!(!unsure.is_empty(), "no evidence picture was written");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(repo().join("models/northwind/manifest.json")).unwrap(),
    )
    .unwrap();
    let class_names: Vec<&str> = manifest["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();

    // 1. The raw frames are still there: they are the images, byte for byte.
    let out = tmp.path().join("export-raw");
    let coco = export(
        &state,
        &events_file,
        Some(&frames),
        &out,
        named.len() - unsure.len(),
    );
    let images = coco["images"].as_array().unwrap();
    let frames_named: std::collections::BTreeSet<&str> = unsure
        .iter()
        .map(|e| e["item"]["frame"].as_str().unwrap())
        .collect();
    assert_eq!(images.len(), frames_named.len());
    for im in images {
        let name = im["file_name"].as_str().unwrap();
        // `frame-<digest of the frame's path>-<its file name>`.
        let file = name
            .strip_prefix("frame-")
            .and_then(|n| n.split_once('-'))
            .map(|(_, file)| file)
            .unwrap_or_else(|| panic!("{name}"));
        let original = frames.join(file);
        assert_eq!(
            std::fs::read(out.join("images").join(name)).unwrap(),
            std::fs::read(&original).unwrap()
        );
    }
    let cats: BTreeMap<u64, &str> = coco["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_u64().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    assert!(cats.values().all(|c| class_names.contains(c)), "{cats:?}");
    let anns = coco["annotations"].as_array().unwrap();
    assert_eq!(
        anns.len(),
        unsure.len(),
        "one pre-labelled box per unsure item"
    );
    for e in &unsure {
        let b: Vec<f64> = e["item"]["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            anns.iter().any(|a| {
                let bb: Vec<f64> = a["bbox"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                (bb[0] - b[0]).abs() < 1e-3 && (bb[2] - (b[2] - b[0])).abs() < 1e-3
            }),
            "the item box of {e} is an annotation"
        );
    }

    // 1b. An events file's frames are read only under --frames: without it, or with another folder,
    // the same frames are left alone and the evidence pictures serve (a forged line cannot pull in a
    // file from elsewhere).
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    for (i, root) in [None, Some(elsewhere.as_path())].into_iter().enumerate() {
        let out = tmp.path().join(format!("export-untrusted-{i}"));
        let coco = export(&state, &events_file, root, &out, named.len() - unsure.len());
        let images = coco["images"].as_array().unwrap();
        assert_eq!(images.len(), unsure.len(), "{root:?}");
        assert!(
            images
                .iter()
                .all(|im| !im["file_name"].as_str().unwrap().starts_with("frame-")),
            "{root:?}: {images:?}"
        );
    }

    // 2. The frames are gone (a camera): the evidence pictures, the banner cut off, frame-sized.
    std::fs::remove_dir_all(&frames).unwrap();
    let out = tmp.path().join("export-evidence");
    let coco = export(
        &state,
        &events_file,
        Some(&frames_parent(&frames)),
        &out,
        named.len() - unsure.len(),
    );
    let images = coco["images"].as_array().unwrap();
    assert_eq!(images.len(), unsure.len(), "one picture per unsure verdict");
    for im in images {
        let name = im["file_name"].as_str().unwrap();
        let record = &im["hallmark"][0];
        let event = unsure.iter().find(|e| e["id"] == record["event"]).unwrap();
        let frame = Path::new(event["item"]["frame"].as_str().unwrap());
        let want = sizes[&frame.file_name().unwrap().to_string_lossy().into_owned()];
        assert_eq!(
            image::image_dimensions(out.join("images").join(name)).unwrap(),
            want,
            "{name}"
        );
        assert_eq!(
            (
                im["width"].as_u64().unwrap() as u32,
                im["height"].as_u64().unwrap() as u32
            ),
            want
        );
    }

    // 3. A state folder without evidence is refused by name.
    let empty = tempfile::tempdir().unwrap();
    let run = hallmark(empty.path())
        .args(["evidence", "export", "--out"])
        .arg(tmp.path().join("x"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("evidence/"));
}
