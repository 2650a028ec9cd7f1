//! `hallmark evidence export`: what a device was unsure of, as a COCO dataset a brand can label (Label
//! Studio, CVAT and Roboflow import COCO) and add to its next upload (`models/pipeline/onboard.sh
//! --previous`). Each counterfeit or inconclusive verdict event that names an evidence picture still in
//! `<state_dir>/evidence/` gives one image and one pre-labelled box: the item's box, labelled with the
//! class of its best detection there (the model's own guess, for a person to confirm or correct), with
//! the verdict, confidence, reason, event id and every detection in the image's `hallmark` record.
//!
//! Events come from the device's verdict spool (`<state_dir>/spool.redb`: what the broker has not
//! acknowledged yet; the agent must be stopped, it holds the file) and from `--events` files: JSON lines
//! as the agent prints them on stdout or as the fleet's store keeps them. Lines that are not verdict
//! events are skipped; an event seen twice (by `id`) counts once.
//!
//! The image is the frame itself when the event's `item.frame` names a file that is still there (a
//! replay); else the evidence picture with the banner the agent drew above the frame cut off (its height
//! worked out as `scan::annotate` works it out, from the verdict, confidence and reason the event gives),
//! so the boxes keep the frame's coordinates. The item's drawn box and label stay on such a picture: a labeller
//! sees them, and a brand should prefer raw frames where it can keep them.
//!
//! Design: read-only on the state folder (the spool is read from a copy in the temporary folder, a
//! damaged one refused with the advice to use `--events`), and every input problem is counted and
//! reported rather than fatal, so one bad line never loses the rest.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde_json::{json, Value};
use thiserror::Error;

use crate::delivery::spool::{Spool, SpoolError};

/// Why an export stopped. Problems of single events or pictures are counted in [`Summary`] instead.
#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{0} has no evidence/ folder (is it an agent's state_dir?)")]
    NoEvidence(PathBuf),
    #[error("cannot read the verdict spool {path}: {source}")]
    Spool {
        path: PathBuf,
        #[source]
        source: SpoolError,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the verdict spool {0} is damaged (the agent sets it aside at its next start); export from --events files instead")]
    DamagedSpool(PathBuf),
    #[error("cannot write {path}: {source}")]
    WriteImage {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// What `export` read and wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub events: usize,
    pub images: usize,
    pub raw_frames: usize,
    pub no_picture: usize,
    pub unreadable: usize,
}

/// The verdict events of a JSON-lines text: (counterfeit and inconclusive ones naming a picture, lines
/// skipped as not being verdict events).
pub fn events_of(text: &str) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v["schema"] == "hallmark.verdict/1" => out.push(v),
            _ => skipped += 1,
        }
    }
    (out, skipped)
}

/// Events in the spool of a stopped agent's state folder (none when it has no spool file).
fn spool_events(state: &Path) -> Result<Vec<Value>, ExportError> {
    let path = state.join("spool.redb");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let spool_err = |source| ExportError::Spool {
        path: path.clone(),
        source,
    };
    // Design: a copy is opened, never the device's file: opening repairs, writes and, on damage,
    // renames the file aside, which is the agent's to do (and to report) at its next start.
    let copy = std::env::temp_dir().join(format!("hallmark-export-{}.redb", std::process::id()));
    std::fs::copy(&path, &copy).map_err(|source| ExportError::Read {
        path: path.clone(),
        source,
    })?;
    let opened = Spool::open(&copy, u64::MAX);
    let events = opened.map_err(spool_err).and_then(|opened| {
        if opened.set_aside.is_some() {
            return Err(ExportError::DamagedSpool(path.clone()));
        }
        read_spool(&opened.spool).map_err(spool_err)
    });
    for leftover in [copy.clone(), copy.with_extension("redb.lock")] {
        let _ = std::fs::remove_file(leftover);
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        let stem = format!("hallmark-export-{}.redb.damaged", std::process::id());
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    events
}

/// Every payload of `spool` that parses as JSON, oldest first.
fn read_spool(spool: &Spool) -> Result<Vec<Value>, SpoolError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let batch = spool.after(after, 1000)?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (_, payload) in &batch {
            if let Ok(v) = serde_json::from_slice::<Value>(payload) {
                out.push(v);
            }
        }
        after = Some(last);
    }
    Ok(out)
}

/// The font `scan::annotate` writes the banner with (the same file, so the same metrics).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// The banner's height as `scan::annotate` computes it for a frame `w` wide and `h` tall, its title
/// (verdict and confidence) and its reason.
fn banner_for(w: u32, h: u32, title: &str, reason: &str) -> u32 {
    use ab_glyph::{FontRef, PxScale};
    use imageproc::drawing::text_size;
    // Design: the font is a compile-time constant known to parse (annotate relies on it too).
    let font = FontRef::try_from_slice(FONT).expect("embedded DejaVu Sans parses");
    let unit = (w.min(h) as f32 / 40.0).clamp(10.0, 48.0);
    let (_, th) = text_size(PxScale::from(unit * 1.3), &font, title);
    let (_, rh) = text_size(PxScale::from(unit * 0.8), &font, reason);
    let pad = (unit / 2.0) as i32;
    (th as i32 + rh as i32 + 3 * pad) as u32
}

/// The banner above an evidence picture `w` x `total` of this verdict: the frame height `h` with
/// `h + banner_for(h) == total` (the banner's size depends on the frame's), else the colour scan.
pub fn banner_of(img: &RgbImage, verdict: &str, confidence: f64, reason: &str) -> u32 {
    let (w, total) = img.dimensions();
    let title = format!(
        "{}  {:.2}",
        verdict.replace('_', " ").to_uppercase(),
        confidence
    );
    let fits: Vec<u32> = (total.saturating_sub(400).max(1)..total)
        .filter(|&h| h + banner_for(w, h, &title, reason) == total)
        .collect();
    match fits.as_slice() {
        [h] => total - h,
        _ => banner_height(img, verdict),
    }
}

/// The RGB colour the agent fills the banner with for a verdict (`scan::annotate`).
fn banner_colour(verdict: &str) -> [f32; 3] {
    match verdict {
        "counterfeit" => [220.0, 38.0, 38.0],
        "genuine" => [22.0, 163.0, 74.0],
        "inconclusive" => [217.0, 119.0, 6.0],
        _ => [82.0, 82.0, 91.0],
    }
}

/// Rows at the top of an evidence picture that are its banner: the verdict's colour with white text
/// (JPEG-blurred). A row belongs to it when nearly every pixel lies near the segment from that colour
/// to white.
pub fn banner_height(img: &RgbImage, verdict: &str) -> u32 {
    let c = banner_colour(verdict);
    let d = [255.0 - c[0], 255.0 - c[1], 255.0 - c[2]];
    let dd: f32 = d.iter().map(|v| v * v).sum();
    let near = |p: &image::Rgb<u8>| {
        let v = [p[0] as f32 - c[0], p[1] as f32 - c[1], p[2] as f32 - c[2]];
        let t = ((v[0] * d[0] + v[1] * d[1] + v[2] * d[2]) / dd).clamp(0.0, 1.0);
        let e: f32 = (0..3).map(|k| (v[k] - t * d[k]).powi(2)).sum();
        e < 45.0 * 45.0
    };
    let (w, h) = img.dimensions();
    let mut rows = 0;
    while rows < h {
        let ok = (0..w).filter(|&x| near(img.get_pixel(x, rows))).count();
        if (ok as f32) < 0.9 * w as f32 {
            break;
        }
        rows += 1;
    }
    if rows >= h {
        0
    } else {
        rows
    }
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

fn boxed(v: &Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    if a.len() != 4 {
        return None;
    }
    Some([
        a[0].as_f64()?,
        a[1].as_f64()?,
        a[2].as_f64()?,
        a[3].as_f64()?,
    ])
}

/// The class an item is pre-labelled with: its best detection overlapping the item's box (IoU >= 0.5),
/// counterfeit-role ones first for a counterfeit verdict.
pub fn pre_label(event: &Value) -> Option<(String, [f64; 4])> {
    let item = boxed(&event["item"]["box"])?;
    let want_counterfeit = event["verdict"] == "counterfeit";
    let mut best: Option<(bool, f64, String)> = None;
    for d in event["detections"].as_array()? {
        let (Some(b), Some(class), Some(conf)) = (
            boxed(&d["box"]),
            d["class"].as_str(),
            d["confidence"].as_f64(),
        ) else {
            continue;
        };
        if iou(&b, &item) < 0.5 {
            continue;
        }
        let key = (
            want_counterfeit && d["role"] == "counterfeit",
            conf,
            class.to_string(),
        );
        if best.as_ref().is_none_or(|k| (key.0, key.1) > (k.0, k.1)) {
            best = Some(key);
        }
    }
    best.map(|(_, _, class)| (class, item))
}

/// Exports `state`'s evidence (with the events of its spool and of `event_files`) into `out`:
/// `annotations.json` and `images/`.
///
/// Raw frames: an event of the device's own spool may name any frame on this machine (the agent wrote
/// it); an event of an `--events` file only one under `frames` (canonical paths compared), so a forged
/// line cannot pull another file into a dataset that goes to labellers. Other events get the evidence
/// picture.
pub fn export(
    state: &Path,
    event_files: &[PathBuf],
    frames: Option<&Path>,
    out: &Path,
) -> Result<Summary, ExportError> {
    let evidence = state.join("evidence");
    if !evidence.is_dir() {
        return Err(ExportError::NoEvidence(state.to_path_buf()));
    }
    let frames = match frames {
        Some(root) => Some(root.canonicalize().map_err(|source| ExportError::Read {
            path: root.to_path_buf(),
            source,
        })?),
        None => None,
    };
    let may_read = |trusted: bool, frame: &Path| {
        trusted
            || frames.as_ref().is_some_and(|root| {
                frame
                    .canonicalize()
                    .is_ok_and(|f| f.starts_with(root) && f != *root)
            })
    };
    let mut all: Vec<(Value, bool)> = spool_events(state)?
        .into_iter()
        .map(|e| (e, true))
        .collect();
    for f in event_files {
        let text = std::fs::read_to_string(f).map_err(|source| ExportError::Read {
            path: f.clone(),
            source,
        })?;
        let (events, skipped) = events_of(&text);
        if skipped > 0 {
            tracing::info!(file = %f.display(), skipped, "lines that are not verdict events were skipped");
        }
        all.extend(events.into_iter().map(|e| (e, false)));
    }
    let mut seen = HashSet::new();
    let mut summary = Summary::default();
    // image file -> (width, height, its items, its records)
    let mut images: BTreeMap<String, (u32, u32, Vec<Value>)> = BTreeMap::new();
    let mut classes = BTreeSet::new();
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Write { path, source }
    };
    std::fs::create_dir_all(out.join("images")).map_err(write_err(&out.join("images")))?;
    for (e, trusted) in all {
        let verdict = e["verdict"].as_str().unwrap_or_default().to_string();
        if !matches!(verdict.as_str(), "counterfeit" | "inconclusive") {
            continue;
        }
        let Some(picture) = e["evidence"].as_str() else {
            continue;
        };
        if !seen.insert(e["id"].as_str().unwrap_or(picture).to_string()) {
            continue;
        }
        summary.events += 1;
        // Design: a name from an event never leaves the evidence folder.
        if picture.contains('/') || picture.contains("..") || !evidence.join(picture).is_file() {
            summary.no_picture += 1;
            continue;
        }
        let raw = e["item"]["frame"]
            .as_str()
            .map(PathBuf::from)
            .filter(|p| p.is_file() && may_read(trusted, p));
        let (name, img) = match &raw {
            Some(p) => {
                // Keyed by the whole path: frames of one name from two folders or devices are two
                // images, never one image with the other's boxes.
                let name = {
                    use sha2::Digest;
                    let digest = sha2::Sha256::digest(p.as_os_str().as_encoded_bytes());
                    format!(
                        "frame-{}-{}",
                        &hex::encode(digest)[..12],
                        p.file_name().unwrap_or_default().to_string_lossy()
                    )
                };
                match image::open(p) {
                    Ok(i) => (name, i.to_rgb8()),
                    Err(_) => {
                        summary.unreadable += 1;
                        continue;
                    }
                }
            }
            None => match image::open(evidence.join(picture)) {
                Ok(i) => {
                    let rgb = i.to_rgb8();
                    let top = banner_of(
                        &rgb,
                        &verdict,
                        e["confidence"].as_f64().unwrap_or_default(),
                        e["reason"].as_str().unwrap_or_default(),
                    );
                    let (w, h) = rgb.dimensions();
                    if top >= h {
                        summary.unreadable += 1;
                        continue;
                    }
                    let frame = image::imageops::crop_imm(&rgb, 0, top, w, h - top).to_image();
                    (picture.to_string(), frame)
                }
                Err(_) => {
                    summary.unreadable += 1;
                    continue;
                }
            },
        };
        let (w, h) = img.dimensions();
        let entry = match images.entry(name) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let path = out.join("images").join(v.key());
                match &raw {
                    Some(src) => {
                        std::fs::copy(src, &path).map_err(write_err(&path))?;
                        summary.raw_frames += 1;
                    }
                    None => img
                        .save(&path)
                        .map_err(|source| ExportError::WriteImage { path, source })?,
                }
                v.insert((w, h, Vec::new()))
            }
        };
        let label = pre_label(&e);
        if let Some((class, _)) = &label {
            classes.insert(class.clone());
        }
        entry.2.push(json!({
            "event": e["id"], "ts": e["ts"], "thing": e["thing"], "brand": e["brand"],
            "model_revision": e["model_revision"], "verdict": verdict, "confidence": e["confidence"],
            "reason": e["reason"], "evidence": picture, "box": e["item"]["box"],
            "label": label.as_ref().map(|l| l.0.clone()), "detections": e["detections"],
        }));
    }
    let classes: Vec<String> = classes.into_iter().collect();
    let mut coco_images = Vec::new();
    let mut annotations = Vec::new();
    for (k, (name, (w, h, items))) in images.iter().enumerate() {
        let id = k + 1;
        for it in items {
            let (Some(class), Some(b)) = (it["label"].as_str(), boxed(&it["box"])) else {
                continue;
            };
            let Some(cat) = classes.iter().position(|c| c == class).map(|i| i + 1) else {
                continue;
            };
            let (bw, bh) = (b[2] - b[0], b[3] - b[1]);
            annotations.push(json!({
                "id": annotations.len() + 1, "image_id": id, "category_id": cat,
                "bbox": [b[0], b[1], bw, bh], "area": bw * bh, "iscrowd": 0,
                "score": it["confidence"], "attributes": {"verdict": it["verdict"], "pre_label": true},
            }));
        }
        coco_images
            .push(json!({"id": id, "file_name": name, "width": w, "height": h, "hallmark": items}));
    }
    summary.images = coco_images.len();
    let categories: Vec<Value> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"id": i + 1, "name": c}))
        .collect();
    let doc = json!({
        "info": {"description": "hallmark evidence export: counterfeit and inconclusive verdicts, pre-labelled with the model's boxes; correct the labels, then add the photos to the brand's upload"},
        "images": coco_images, "annotations": annotations, "categories": categories,
    });
    let path = out.join("annotations.json");
    // Design: a serde_json::Value always serialises (its keys are strings).
    let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    std::fs::write(&path, bytes).map_err(write_err(&path))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_label_is_the_best_detection_on_the_item_and_a_counterfeit_one_for_a_counterfeit() {
        let e = json!({"verdict": "counterfeit", "item": {"box": [0.0, 0.0, 10.0, 10.0]}, "detections": [
            {"class": "tea", "role": "genuine", "confidence": 0.8, "box": [0.0, 0.0, 10.0, 10.0]},
            {"class": "tea-counterfeit", "role": "counterfeit", "confidence": 0.7, "box": [0.0, 0.0, 10.0, 9.0]},
            {"class": "far", "role": "counterfeit", "confidence": 0.99, "box": [50.0, 50.0, 60.0, 60.0]}]});
        assert_eq!(pre_label(&e).unwrap().0, "tea-counterfeit");
        let mut inconclusive = e.clone();
        inconclusive["verdict"] = "inconclusive".into();
        assert_eq!(pre_label(&inconclusive).unwrap().0, "tea");
    }

    #[test]
    fn a_banner_is_measured_down_to_the_frame() {
        let mut img = RgbImage::from_pixel(40, 30, image::Rgb([217, 119, 6]));
        for y in 12..30 {
            for x in 0..40 {
                img.put_pixel(x, y, image::Rgb([(x * 6) as u8, 90, (y * 8) as u8]));
            }
        }
        img.put_pixel(5, 3, image::Rgb([255, 255, 255])); // text
        assert_eq!(banner_height(&img, "inconclusive"), 12);
        assert_eq!(banner_height(&img, "counterfeit"), 0);
    }

    #[test]
    fn only_verdict_events_are_read() {
        let (events, skipped) = events_of(
            "{\"schema\": \"hallmark.verdict/1\", \"id\": \"a\"}\nnot json\n{\"x\": 1}\n\n",
        );
        assert_eq!((events.len(), skipped), (1, 2));
    }
}
