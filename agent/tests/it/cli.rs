//! End-to-end tests of the `hallmark` binary: the real ONNX Runtime, the shipped demo bundle and its
//! sample images, bad input, and the load-time failures a person must be able to read.
//! (`HALLMARK_TEST_MODELS` points these at another models folder, for development.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn models() -> PathBuf {
    std::env::var_os("HALLMARK_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models"))
}

fn bundle() -> PathBuf {
    models().join("northwind")
}

fn samples() -> PathBuf {
    models().join("samples/northwind")
}

fn sample_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(samples())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no sample images in {}", samples().display());
    v
}

/// `hallmark` with a clean environment (no HALLMARK_* / ORT_DYLIB_PATH from the caller).
fn hallmark() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hallmark"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HALLMARK_") || k == "ORT_DYLIB_PATH" {
            cmd.env_remove(k);
        }
    }
    cmd.env(
        "HALLMARK_TRUST_PUBLIC_KEYS",
        repo().join("models/keys/demo-publisher.pub.pem"),
    );
    cmd
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn scan_of_the_samples_prints_one_valid_record_per_image_and_annotates_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = hallmark()
        .arg("scan")
        .arg("--model")
        .arg(bundle())
        .arg("--annotate")
        .arg(dir.path())
        .arg(samples())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let records = lines(&out);
    let files = sample_files();
    assert_eq!(records.len(), files.len());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle().join("manifest.json")).unwrap()).unwrap();
    let class_names: Vec<&str> = manifest["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let mut detections = 0;
    for (r, file) in records.iter().zip(&files) {
        assert_eq!(r["image"].as_str(), Some(file.to_str().unwrap()));
        assert_eq!(r["brand"], manifest["brand"]);
        assert_eq!(r["model_revision"], manifest["revision"]);
        assert!(
            matches!(
                r["verdict"].as_str(),
                Some("genuine" | "counterfeit" | "inconclusive" | "no_product")
            ),
            "{r}"
        );
        let c = r["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
        assert!(!r["reason"].as_str().unwrap().is_empty());
        // One item per pack; the top-level verdict is the primary item's.
        let items = r["items"].as_array().unwrap();
        match r["primary"].as_u64() {
            Some(p) => {
                let primary = items.iter().find(|i| i["id"].as_u64() == Some(p)).unwrap();
                assert_eq!(primary["verdict"], r["verdict"], "{r}");
            }
            None => {
                assert!(items.is_empty());
                assert_eq!(r["verdict"], "no_product");
            }
        }
        for item in items {
            assert!(
                matches!(
                    item["verdict"].as_str(),
                    Some("genuine" | "counterfeit" | "inconclusive")
                ),
                "{item}"
            );
            assert!(!item["detections"].as_array().unwrap().is_empty(), "{item}");
            assert!(item["reason"].as_str().is_some_and(|s| !s.is_empty()));
        }
        let (w, h) = (r["width"].as_f64().unwrap(), r["height"].as_f64().unwrap());
        let img = image::open(file).unwrap();
        assert_eq!((w as u32, h as u32), (img.width(), img.height()));
        for d in r["detections"].as_array().unwrap() {
            detections += 1;
            assert!(class_names.contains(&d["class"].as_str().unwrap()), "{d}");
            assert!(matches!(
                d["role"].as_str(),
                Some("genuine" | "counterfeit")
            ));
            let b: Vec<f64> = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(
                b[0] >= 0.0 && b[0] < b[2] && b[2] <= w && b[1] >= 0.0 && b[1] < b[3] && b[3] <= h,
                "{d}"
            );
            assert!(
                d["confidence"].as_f64().unwrap()
                    >= manifest["thresholds"]["confidence"].as_f64().unwrap() - 1e-4
            );
        }
        for k in ["decode", "preprocess", "inference", "postprocess", "total"] {
            assert!(r["timings_ms"][k].as_f64().unwrap() >= 0.0, "{k}");
        }
        // The annotated copy exists: a JPEG of the image's width, with the verdict banner above it.
        let ann = dir.path().join(format!(
            "{}.jpg",
            file.file_stem().unwrap().to_str().unwrap()
        ));
        let a = image::open(&ann).unwrap_or_else(|e| panic!("{}: {e}", ann.display()));
        assert_eq!(a.width(), img.width());
        assert!(
            a.height() > img.height() && a.height() < img.height() * 2,
            "{}",
            a.height()
        );
    }
    assert!(
        detections > 0,
        "the demo bundle found nothing in any sample image"
    );
}

#[test]
fn bad_inputs_each_get_their_own_error_the_rest_is_scanned_and_the_exit_is_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let good = &sample_files()[0];
    let jpeg = std::fs::read(good).unwrap();
    std::fs::copy(good, dir.path().join("a-good.jpg")).unwrap();
    std::fs::write(dir.path().join("b-truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(dir.path().join("c-empty.jpg"), b"").unwrap();
    std::fs::write(
        dir.path().join("d-text.jpg"),
        b"this is a text file, not a photo\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("e-bomb.png"),
        png_header_claiming(30000, 30000),
    )
    .unwrap();

    let out = hallmark()
        .arg("scan")
        .arg("--model")
        .arg(bundle())
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    let records = lines(&out);
    assert_eq!(records.len(), 5);
    assert!(
        records[0]["verdict"].is_string() && records[0].get("error").is_none(),
        "{}",
        records[0]
    );
    let errors: Vec<&str> = records[1..]
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    let expect = [
        "truncated JPEG",
        "empty file",
        "not a JPEG, PNG, WebP, BMP, TIFF or PNM",
        "30000×30000",
    ];
    for (e, want) in errors.iter().zip(expect) {
        assert!(e.contains(want), "{e:?} should say {want:?}");
        assert!(err.contains(e), "stderr carries the message: {e}");
    }
    let distinct: std::collections::HashSet<_> = errors.iter().collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn a_missing_onnx_runtime_library_gives_one_clear_message() {
    // An explicit path that is not there.
    let out = hallmark()
        .args(["scan", "--ort-lib", "/nowhere/libonnxruntime.so", "--model"])
        .arg(bundle())
        .arg(&sample_files()[0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nowhere/libonnxruntime.so") && err.contains("does not exist"),
        "{err}"
    );

    // Nothing anywhere: a copy of the binary outside the checkout, started outside it.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("hallmark");
    std::fs::copy(env!("CARGO_BIN_EXE_hallmark"), &exe).unwrap();
    let out = Command::new(&exe)
        .current_dir(dir.path())
        .env_remove("ORT_DYLIB_PATH")
        .env(
            "HALLMARK_TRUST_PUBLIC_KEYS",
            repo().join("models/keys/demo-publisher.pub.pem"),
        )
        .args(["scan", "--model"])
        .arg(bundle())
        .arg(&sample_files()[0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ONNX Runtime shared library not found")
            && err.contains("onnxruntime==1.31.1"),
        "{err}"
    );
    assert!(
        err.contains(&dir.path().join(".venv").display().to_string()),
        "names where it looked: {err}"
    );
}

/// A copy of the demo bundle with its manifest changed by `tweak` and signed by a fresh key; returns
/// the bundle folder and the key file that trusts it.
fn altered_bundle(dir: &Path, tweak: impl FnOnce(&mut Value)) -> (PathBuf, PathBuf) {
    let b = dir.join("bundle");
    std::fs::create_dir_all(&b).unwrap();
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(bundle().join("manifest.json")).unwrap()).unwrap();
    // The model and every variant file the manifest names (before the tweak, which may drop some).
    for entry in std::iter::once(&m["model"]).chain(m["variants"].as_array().into_iter().flatten())
    {
        let f = entry["file"].as_str().unwrap();
        std::fs::copy(bundle().join(f), b.join(f)).unwrap();
    }
    // The tests here are about the main model and the variants they declare: the shipped bundle's
    // default variant per mode (Northwind: quarter-turns) is not part of the copy.
    if let Some(m) = m.as_object_mut() {
        m.remove("default_variants");
    }
    tweak(&mut m);
    // Every file named with its digest: the folder's, and the model's and variants' as the manifest
    // gives them (a variant file may be written, or tampered with, after this).
    let mut files = hallmark_agent::bundle::list_files(&b).unwrap();
    for entry in std::iter::once(&m["model"]).chain(m["variants"].as_array().into_iter().flatten())
    {
        files.insert(
            entry["file"].as_str().unwrap().to_string(),
            entry["sha256"].as_str().unwrap().to_string(),
        );
    }
    m["files"] = serde_json::to_value(files).unwrap();
    let body = serde_json::to_vec_pretty(&m).unwrap();
    std::fs::write(b.join("manifest.json"), &body).unwrap();
    let key = SigningKey::from_bytes(&[42; 32]);
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&body).to_bytes());
    std::fs::write(b.join("manifest.sig"), format!("{sig}\n")).unwrap();
    let pem = dir.join("test.pub.pem");
    std::fs::write(
        &pem,
        key.verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap(),
    )
    .unwrap();
    (b, pem)
}

fn scan_with(bundle: &Path, key: &Path) -> Output {
    hallmark()
        .env("HALLMARK_TRUST_PUBLIC_KEYS", key)
        .arg("scan")
        .arg("--model")
        .arg(bundle)
        .arg(&sample_files()[0])
        .output()
        .unwrap()
}

#[test]
fn a_manifest_that_disagrees_with_its_model_is_refused_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (b, key) = altered_bundle(dir.path(), |m| {
        m["model"]["input"]["width"] = 640.into();
        m["model"]["input"]["height"] = 640.into();
    });
    let out = scan_with(&b, &key);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("model/manifest mismatch") && err.contains("[1, 3, 640, 640]"),
        "{err}"
    );

    let (b, key) = altered_bundle(&dir.path().join("names"), |m| {
        m["model"]["input"]["name"] = "input".into()
    });
    let err = stderr(&scan_with(&b, &key));
    assert!(
        err.contains("model/manifest mismatch") && err.contains("\"input\""),
        "{err}"
    );
}

#[test]
fn an_unknown_output_layout_is_refused_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // One class more than the model was trained for: the output fits neither layout.
    let (b, key) = altered_bundle(dir.path(), |m| {
        let classes = m["classes"].as_array_mut().unwrap();
        let mut extra = classes[0].clone();
        extra["id"] = classes.len().into();
        extra["name"] = "extra".into();
        classes.push(extra);
    });
    let out = scan_with(&b, &key);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown output layout"), "{err}");
}

#[test]
fn a_tampered_bundle_fails_verification_and_the_shipped_one_passes() {
    let out = hallmark()
        .args(["models", "verify"])
        .arg(bundle())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));

    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("northwind");
    std::fs::create_dir_all(&b).unwrap();
    for f in ["manifest.json", "manifest.sig", "model.onnx"] {
        std::fs::copy(bundle().join(f), b.join(f)).unwrap();
    }
    let mut model = std::fs::read(b.join("model.onnx")).unwrap();
    let n = model.len();
    model[n - 1] ^= 1;
    std::fs::write(b.join("model.onnx"), model).unwrap();
    let out = hallmark()
        .args(["models", "verify"])
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));

    std::fs::remove_file(b.join("manifest.sig")).unwrap();
    let out = hallmark()
        .args(["models", "verify"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(stderr(&out).contains("unsigned"), "{}", stderr(&out));
}

#[test]
fn exif_orientation_is_applied_before_detection() {
    // The sample with an EXIF "rotate 90° clockwise" tag, and the same pixels turned by hand (lossless
    // PNG): both must give the same size and the same detections.
    let dir = tempfile::tempdir().unwrap();
    let src = &sample_files()[0];
    let jpeg = std::fs::read(src).unwrap();
    std::fs::write(
        dir.path().join("a-exif.jpg"),
        with_exif_orientation(&jpeg, 6),
    )
    .unwrap();
    let upright = hallmark_agent::imageio::load(src, Default::default())
        .unwrap()
        .rgb;
    let turned = image::imageops::rotate90(&upright);
    turned.save(dir.path().join("b-turned.png")).unwrap();

    let out = hallmark()
        .arg("scan")
        .arg("--model")
        .arg(bundle())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = lines(&out);
    let orig = image::open(src).unwrap();
    assert_eq!(
        (r[0]["width"].as_u64(), r[0]["height"].as_u64()),
        (Some(orig.height() as u64), Some(orig.width() as u64))
    );
    assert_eq!(r[0]["detections"], r[1]["detections"]);
    assert_eq!(r[0]["verdict"], r[1]["verdict"]);
}

#[test]
fn the_quarter_turns_variant_judges_a_pack_held_sideways_as_it_judges_it_upright() {
    // Its four passes of a frame turned by 90° are the four passes of the upright frame in another
    // order, so every item must come back with the same verdict, product and (turned back) box.
    let dir = tempfile::tempdir().unwrap();
    for (i, src) in sample_files().iter().enumerate() {
        let upright = hallmark_agent::imageio::load(src, Default::default())
            .unwrap()
            .rgb;
        upright
            .save(dir.path().join(format!("{i:02}-a.png")))
            .unwrap();
        image::imageops::rotate90(&upright)
            .save(dir.path().join(format!("{i:02}-b.png")))
            .unwrap();
    }
    let out = hallmark()
        .args(["--variant", "quarter-turns", "scan", "--model"])
        .arg(bundle())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let records = lines(&out);
    assert_eq!(records.len(), 2 * sample_files().len());
    let mut items_seen = 0;
    for pair in records.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let height = a["height"].as_f64().unwrap();
        // rotate90 is clockwise: a point (x, y) of the upright frame lands at (height - y, x).
        let back = |v: &Value| -> Vec<f64> {
            let b: Vec<f64> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            vec![b[1], height - b[2], b[3], height - b[0]]
        };
        let key = |v: &Value| format!("{} {}", v["verdict"], v["product"]);
        let (ia, ib) = (
            a["items"].as_array().unwrap(),
            b["items"].as_array().unwrap(),
        );
        assert_eq!(ia.len(), ib.len(), "{}\n{}", a, b);
        for x in ia {
            let bx: Vec<f64> = x["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let twin = ib.iter().find(|y| {
                back(&y["box"])
                    .iter()
                    .zip(&bx)
                    .all(|(p, q)| (p - q).abs() <= 3.0)
            });
            let twin = twin.unwrap_or_else(|| panic!("no turned twin of {x} in {b}"));
            assert_eq!(key(x), key(twin), "{x} vs {twin}");
            items_seen += 1;
        }
        assert_eq!(a["verdict"], b["verdict"]);
    }
    assert!(items_seen >= sample_files().len(), "{items_seen} items");
}

#[test]
fn a_provider_that_cannot_register_is_an_error_not_a_silent_cpu_fallback() {
    let out = hallmark()
        .env("HALLMARK_RUNTIME_PROVIDERS", "cuda")
        .arg("scan")
        .arg("--model")
        .arg(bundle())
        .arg(&sample_files()[0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("execution provider cuda failed to register"),
        "{err}"
    );
}

#[test]
fn bench_reports_the_ratio_to_a_bare_run_as_json() {
    let out = hallmark()
        .args(["bench", "--iterations", "5", "--json", "--model"])
        .arg(bundle())
        .arg("--images")
        .arg(samples())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &lines(&out)[0];
    let ratio = r["ratio_pipeline_to_bare_run"].as_f64().unwrap();
    let expected = r["pipeline_ms"].as_f64().unwrap() / r["bare_run_ms"].as_f64().unwrap();
    assert!((ratio - expected).abs() < 0.01, "{r}");
    assert!(
        r["frame_1080p"]["letterbox_plus_postprocess_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(r["iterations"], 5);
}

#[test]
fn bench_daemon_interleaves_bare_and_daemon_windows_and_reports_the_median_round_and_spread() {
    let out = hallmark()
        .args([
            "bench", "--daemon", "3", "--rounds", "3", "--json", "--model",
        ])
        .arg(bundle())
        .arg("--images")
        .arg(samples())
        .env("HALLMARK_HTTP_LISTEN", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &lines(&out)[0];
    let rounds = r["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3, "{r}");
    let mut ratios: Vec<f64> = rounds
        .iter()
        .map(|x| x["ratio"].as_f64().unwrap())
        .collect();
    ratios.sort_by(f64::total_cmp);
    assert_eq!(
        r["ratio"].as_f64(),
        Some(ratios[1]),
        "the median round: {r}"
    );
    assert_eq!(r["ratio_min"].as_f64(), Some(ratios[0]));
    assert_eq!(r["ratio_max"].as_f64(), Some(ratios[2]));
    for x in rounds {
        let expected = x["daemon_fps"].as_f64().unwrap() * x["bare_run_ms"].as_f64().unwrap() / 1e3;
        assert!(
            (x["ratio"].as_f64().unwrap() - expected).abs() < 1e-9,
            "{x}"
        );
        assert!(x["frames"].as_u64().unwrap() > 1, "{x}");
    }
    let refused = hallmark()
        .args(["bench", "--daemon", "1", "--rounds", "0", "--model"])
        .arg(bundle())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}

/// A PNG whose IHDR claims `w`×`h` (valid CRC) with no pixel data.
fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut crc = 0xFFFF_FFFFu32;
    for &b in &ihdr {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

/// `jpeg` with an EXIF APP1 segment holding the orientation tag.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The demo bundle with a variant `strict`: the same detector bytes under another file name, with
/// thresholds no score reaches, declared with input `size`; `variant_bytes` lets a test tamper with it.
fn bundle_with_strict_variant(
    dir: &Path,
    size: u32,
    variant_bytes: Option<&[u8]>,
) -> (PathBuf, PathBuf) {
    let model = std::fs::read(bundle().join("model.onnx")).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&model))
    };
    let (b, key) = altered_bundle(dir, |m| {
        let mut input = m["model"]["input"].clone();
        input["width"] = size.into();
        input["height"] = size.into();
        // The main model's item floor: the same detector then makes the same items.
        let floor = m["thresholds"]["confidence"].clone();
        m["variants"] = serde_json::json!([{
            "name": "strict", "file": "model-strict.onnx", "sha256": digest, "precision": "fp32",
            "input": input,
            "thresholds": {"confidence": floor, "iou": 0.45, "genuine": 1.0, "counterfeit": 1.0, "margin": 0.15}
        }]);
    });
    std::fs::write(b.join("model-strict.onnx"), variant_bytes.unwrap_or(&model)).unwrap();
    (b, key)
}

fn scan_all_with(bundle: &Path, key: &Path, flags: &[&str]) -> Output {
    hallmark()
        .env("HALLMARK_TRUST_PUBLIC_KEYS", key)
        .args(flags)
        .arg("scan")
        .arg("--model")
        .arg(bundle)
        .arg(samples())
        .output()
        .unwrap()
}

fn verdicts(out: &Output) -> Vec<String> {
    lines(out)
        .iter()
        .flat_map(|r| r["items"].as_array().unwrap().clone())
        .map(|i| i["verdict"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_named_variant_runs_with_its_own_thresholds_and_the_main_model_stays_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let size = {
        let m: Value =
            serde_json::from_slice(&std::fs::read(bundle().join("manifest.json")).unwrap())
                .unwrap();
        m["model"]["input"]["width"].as_u64().unwrap() as u32
    };
    let (b, key) = bundle_with_strict_variant(dir.path(), size, None);

    let main = scan_all_with(&b, &key, &[]);
    assert!(main.status.success(), "{}", stderr(&main));
    assert!(lines(&main)
        .iter()
        .all(|r| r.get("model_variant").is_none()));
    let called = verdicts(&main);
    assert!(
        called.iter().any(|v| v == "counterfeit") && called.iter().any(|v| v == "genuine"),
        "{called:?}"
    );

    // The same detector under thresholds no score reaches: nothing is called either way, by name or
    // through the environment.
    for (flags, env) in [
        (&["--variant", "strict"][..], None),
        (&[][..], Some("strict")),
    ] {
        let mut cmd = hallmark();
        cmd.env("HALLMARK_TRUST_PUBLIC_KEYS", &key);
        if let Some(v) = env {
            cmd.env("HALLMARK_MODEL_VARIANT", v);
        }
        let strict = cmd
            .args(flags)
            .arg("scan")
            .arg("--model")
            .arg(&b)
            .arg(samples())
            .output()
            .unwrap();
        assert!(strict.status.success(), "{}", stderr(&strict));
        assert!(lines(&strict)
            .iter()
            .all(|r| r["model_variant"] == "strict"));
        let called = verdicts(&strict);
        assert_eq!(
            called.len(),
            verdicts(&main).len(),
            "the same items are found"
        );
        // Only a barcode can still call a pack counterfeit; no score reaches the variant's thresholds.
        let count = |v: &[String], k: &str| v.iter().filter(|x| *x == k).count();
        assert_eq!(count(&called, "genuine"), 0, "{called:?}");
        assert!(
            count(&called, "counterfeit") < count(&verdicts(&main), "counterfeit"),
            "{called:?}"
        );
        for r in lines(&strict) {
            for item in r["items"].as_array().unwrap() {
                if item["verdict"] == "counterfeit" {
                    assert!(!item["barcode"].is_null(), "{item}");
                }
            }
        }
    }

    let out = hallmark()
        .env("HALLMARK_TRUST_PUBLIC_KEYS", &key)
        .args(["models", "verify"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("variants=strict"),
        "{}",
        stderr(&out)
    );

    let out = hallmark()
        .env("HALLMARK_TRUST_PUBLIC_KEYS", &key)
        .args([
            "--variant",
            "strict",
            "bench",
            "--iterations",
            "2",
            "--json",
            "--model",
        ])
        .arg(&b)
        .arg("--images")
        .arg(samples())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out)[0]["model_variant"], "strict");
}

#[test]
fn a_bad_variant_choice_or_file_is_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (b, key) = bundle_with_strict_variant(&dir.path().join("ok"), 320, None);
    let out = scan_all_with(&b, &key, &["--variant", "fast"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no variant \"fast\"") && err.contains("strict (fp32)"),
        "{err}"
    );
    assert_eq!(err.matches("no variant").count(), 1, "said once: {err}");
    let out = scan_all_with(&b, &key, &["--precision", "int8"]);
    assert!(
        stderr(&out).contains("no int8 encoding"),
        "{}",
        stderr(&out)
    );

    // The variant declares 224 but its graph takes 320: the variant's input is what is checked.
    let (b, key) = bundle_with_strict_variant(&dir.path().join("size"), 224, None);
    let err = stderr(&scan_all_with(&b, &key, &["--variant", "strict"]));
    assert!(err.contains("model/manifest mismatch"), "{err}");

    // A tampered variant refuses the whole bundle, even when the main model is the one asked for.
    let (b, key) = bundle_with_strict_variant(&dir.path().join("bad"), 320, Some(b"not a model"));
    let out = scan_all_with(&b, &key, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("digest mismatch") && err.contains("model-strict.onnx"),
        "{err}"
    );
}

/// Each record of a scan without its timings and variant name, for comparing two encodings.
fn without_variant(out: &Output) -> Vec<Value> {
    lines(out)
        .into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            o.remove("timings_ms");
            o.remove("model_variant");
            r
        })
        .collect()
}

#[test]
fn the_uint8_variant_of_each_shipped_bundle_gives_the_main_models_exact_records() {
    // The variant takes the letterboxed bytes and divides by 255 in its graph: every box, score and
    // verdict must be the main model's, on every sample of both brands.
    for brand in ["northwind", "aurora"] {
        let scan = |flags: &[&str]| {
            let out = hallmark()
                .args(flags)
                .arg("scan")
                .arg("--model")
                .arg(models().join(brand))
                .arg(models().join("samples").join(brand))
                .output()
                .unwrap();
            assert!(out.status.success(), "{brand} {flags:?}: {}", stderr(&out));
            out
        };
        let main = scan(&["--variant", "main"]);
        let u8 = scan(&["--variant", "u8"]);
        assert!(lines(&u8).iter().all(|r| r["model_variant"] == "u8"));
        assert!(lines(&main).len() >= 5, "{brand}");
        assert!(
            verdicts(&main).iter().any(|v| v == "genuine")
                && verdicts(&main).iter().any(|v| v == "counterfeit"),
            "{brand}: {:?}",
            verdicts(&main)
        );
        assert_eq!(without_variant(&main), without_variant(&u8), "{brand}");
    }
}

#[test]
fn a_variant_whose_graph_is_not_the_declared_input_type_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    // The main model's float32 graph declared as a uint8 NHWC variant.
    let model = std::fs::read(bundle().join("model.onnx")).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&model))
    };
    let (b, key) = altered_bundle(dir.path(), |m| {
        let mut input = m["model"]["input"].clone();
        input["dtype"] = "uint8".into();
        m["variants"] = serde_json::json!([{
            "name": "bytes", "file": "model-bytes.onnx", "sha256": digest, "precision": "fp32",
            "input": input, "thresholds": m["thresholds"].clone()
        }]);
    });
    std::fs::write(b.join("model-bytes.onnx"), &model).unwrap();
    let out = scan_all_with(&b, &key, &["--variant", "bytes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("model/manifest mismatch") && err.contains("Float32") && err.contains("Uint8"),
        "{err}"
    );
    // The main model of the same bundle still runs.
    assert!(scan_all_with(&b, &key, &[]).status.success());
}

#[test]
fn bmp_tiff_and_pnm_frames_give_the_same_records_as_the_same_pixels_in_png() {
    // Machine-vision cameras and conveyor recorders save BMP, TIFF or PGM/PPM; a folder of them must
    // be scanned (found by its extensions) and judged exactly as the same pixels in a PNG.
    let dir = tempfile::tempdir().unwrap();
    let formats = [
        ("png", image::ImageFormat::Png),
        ("bmp", image::ImageFormat::Bmp),
        ("tif", image::ImageFormat::Tiff),
        ("ppm", image::ImageFormat::Pnm),
    ];
    for (ext, _) in formats {
        std::fs::create_dir(dir.path().join(ext)).unwrap();
    }
    for (i, sample) in sample_files().iter().take(3).enumerate() {
        let img = image::open(sample).unwrap();
        for (ext, format) in formats {
            img.save_with_format(
                dir.path().join(ext).join(format!("frame-{i}.{ext}")),
                format,
            )
            .unwrap();
        }
    }
    let scan = |ext: &str| {
        let out = hallmark()
            .arg("scan")
            .arg("--model")
            .arg(bundle())
            .arg(dir.path().join(ext))
            .output()
            .unwrap();
        assert!(out.status.success(), "{ext}: {}", stderr(&out));
        lines(&out)
            .into_iter()
            .map(|mut r| {
                let o = r.as_object_mut().unwrap();
                o.remove("timings_ms");
                o.remove("image");
                r
            })
            .collect::<Vec<_>>()
    };
    let png = scan("png");
    assert_eq!(png.len(), 3);
    assert!(
        png.iter()
            .any(|r| !r["items"].as_array().unwrap().is_empty()),
        "{png:?}"
    );
    for ext in ["bmp", "tif", "ppm"] {
        assert_eq!(scan(ext), png, "{ext}");
    }
}
