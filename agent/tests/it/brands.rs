//! Many brands on one device: `hallmark run` and `hallmark scan` with the Northwind and Aurora bundles
//! together, frames routed by the GS1 prefix of the barcodes in them, else by sight (every brand's
//! detector looks; the brand that sees its products best wins), and (`run`) a memory budget that holds
//! one detector only, so every change of brand unloads one and loads the other.
//!
//! Every wait is bounded; child processes are killed when a test ends, pass or fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{
    boxed, clean_command, free_port, hallmark_run, http_get, iou, labels, manifest, metric, repo,
    wait_until, Agent,
};
use serde_json::Value;

/// A replay of both brands. Of the samples, only aurora-test-0002 and -0005 and northwind-test-0005
/// show a barcode (read on the whole frame) with their brand's GS1 prefix; the others show none, or
/// only a foreign code, and are routed by sight — each right after a coded frame of the other brand, so
/// a frame judged by the brand routed last would be judged by the wrong model.
const REPLAY: [(&str, &str); 8] = [
    ("aurora", "aurora-test-0002"),
    ("northwind", "northwind-test-0002"),
    ("northwind", "northwind-test-0005"),
    ("aurora", "aurora-test-0000"),
    ("aurora", "aurora-test-0005"),
    ("northwind", "northwind-test-0006"),
    ("northwind", "northwind-test-0005"),
    ("aurora", "aurora-test-0006"),
];

/// For `scan` (each image on its own): the coded ones, and some without a code (routed by sight).
const SCAN: [(&str, &str); 6] = [
    ("aurora", "aurora-test-0002"),
    ("northwind", "northwind-test-0002"),
    ("aurora", "aurora-test-0005"),
    ("aurora", "aurora-test-0000"),
    ("northwind", "northwind-test-0005"),
    ("aurora", "aurora-test-0006"),
];

/// The samples copied into one folder in the given order (`00-aurora-…`, `01-…`), with their label
/// files; returns (file name, brand) pairs.
fn mixed_replay(dir: &Path, samples: &[(&str, &str)]) -> Vec<(String, String)> {
    samples
        .iter()
        .enumerate()
        .map(|(i, (brand, stem))| {
            let from = repo().join(format!("models/samples/{brand}/{stem}"));
            let name = format!("{i:02}-{stem}");
            for ext in ["jpg", "txt"] {
                std::fs::copy(from.with_extension(ext), dir.join(format!("{name}.{ext}"))).unwrap();
            }
            (format!("{name}.jpg"), brand.to_string())
        })
        .collect()
}

/// Checks one item's verdict (`verdict`, `product`, `box`) against the labels of its image; returns
/// whether it is right (a genuine pack called inconclusive is safe, not right), or the problem.
fn check_item(
    labelled: &[(String, String, Vec<f64>)],
    verdict: &str,
    product: &Value,
    bbox: &[f64],
) -> Result<bool, String> {
    let Some((role, want, _)) = labelled.iter().find(|(.., b)| iou(bbox, b) >= 0.5) else {
        return if verdict == "counterfeit" {
            Err("a counterfeit where no pack is labelled".into())
        } else {
            Ok(false)
        };
    };
    match (role.as_str(), verdict) {
        ("genuine", "genuine") if product == want.as_str() => Ok(true),
        ("genuine", "inconclusive") => Ok(false),
        ("counterfeit", "counterfeit" | "inconclusive") => Ok(true),
        _ => Err(format!("a {role} {want} pack was called {verdict}")),
    }
}

#[test]
fn run_routes_each_frame_to_its_brand_and_swaps_detectors_within_a_budget_for_one() {
    let replay = tempfile::tempdir().unwrap();
    let images = mixed_replay(replay.path(), &REPLAY);
    let state = tempfile::tempdir().unwrap();
    let http = free_port();
    let agent = Agent::spawn(hallmark_run(
        state.path(),
        &[
            (
                "HALLMARK_MODEL_BUNDLES",
                "models/northwind,models/aurora".into(),
            ),
            // One 7.2 MB model is estimated at 6.9 MiB: a budget of 10 holds one detector.
            ("HALLMARK_MODEL_MEMORY_BUDGET_MIB", "10".into()),
            ("HALLMARK_SOURCE_PATH", replay.path().display().to_string()),
            ("HALLMARK_SOURCE_LOOP", "true".into()),
            ("HALLMARK_HTTP_LISTEN", format!("127.0.0.1:{http}")),
        ],
    ));
    // Two passes over the replay, then the metrics.
    let mut page = String::new();
    let passed = wait_until(Duration::from_secs(120), || {
        page = http_get(http, "/metrics").map(|r| r.1).unwrap_or_default();
        metric(&page, "hallmark_frames_total").unwrap_or(0.0) >= 2.0 * images.len() as f64
    });
    let lines = agent.lines();
    let (code, _, stderr) = agent.terminate();
    assert!(passed, "two passes in time: {page}\n{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    let evictions = metric(&page, "hallmark_model_evictions_total").unwrap_or(0.0);
    let loads = metric(&page, "hallmark_model_loads_total").unwrap_or(0.0);
    assert!(evictions > 0.0, "evictions counted: {page}");
    for by in ["code", "sight"] {
        assert!(
            metric(
                &page,
                &format!("hallmark_frames_routed_total{{by=\"{by}\"}}")
            )
            .unwrap_or(0.0)
                > 0.0,
            "frames routed by {by}: {page}"
        );
    }
    assert!(loads > evictions, "{page}");
    assert_eq!(metric(&page, "hallmark_models_loaded"), Some(1.0), "{page}");
    for brand in ["northwind", "aurora"] {
        assert!(
            metric(
                &page,
                &format!("hallmark_model_revision{{brand=\"{brand}\"}}")
            )
            .is_some(),
            "{brand} served: {page}"
        );
        assert_eq!(
            metric(
                &page,
                &format!("hallmark_provider{{brand=\"{brand}\",provider=\"cpu\"}}")
            ),
            Some(1.0),
            "{brand}'s provider in use: {page}"
        );
    }

    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event: {l}: {e}")))
        .collect();
    let (mut items, mut right) = (0, 0);
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in &events {
        let frame = e["item"]["frame"].as_str().unwrap_or_default();
        let name = Path::new(frame).file_name().unwrap().to_str().unwrap();
        let Some((_, brand)) = images.iter().find(|(n, _)| n == name) else {
            panic!("an event for a frame not in the replay: {e}");
        };
        assert_eq!(e["brand"], brand.as_str(), "the brand of {name}: {e}");
        assert_eq!(
            e["model_revision"],
            manifest(brand)["revision"],
            "{brand}'s model judged {name}"
        );
        seen.insert(name.to_string());
        let labelled = labels(brand, &replay.path().join(name));
        items += 1;
        match check_item(
            &labelled,
            e["verdict"].as_str().unwrap(),
            &e["item"]["product"],
            &boxed(&e["item"]["box"]),
        ) {
            Ok(true) => right += 1,
            Ok(false) => {}
            Err(p) => problems.push(format!("{name}: {p}: {}", e["reason"])),
        }
    }
    assert_eq!(seen.len(), images.len(), "every image judged: {seen:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(right * 10 >= items * 8, "{right} of {items} verdicts right");
}

/// `hallmark scan` of `dir` with both bundles, `model.variant` set to `variant` ("": each bundle's
/// default for the mode, else its main model),
/// in an environment cleared of the caller's HALLMARK_ settings.
fn scan_both(dir: &Path, variant: &str) -> std::process::Output {
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_hallmark"));
    cmd.env("HALLMARK_RUNTIME_INTRA_THREADS", "1")
        .env("HALLMARK_MODEL_VARIANT", variant)
        .args([
            "scan",
            "--model",
            "models/northwind",
            "--model",
            "models/aurora",
        ])
        .arg(dir)
        .output()
        .unwrap()
}

/// The JSON records of a scan that must have succeeded.
fn records_of(out: std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn scan_with_two_models_routes_each_image_to_its_brand() {
    let replay = tempfile::tempdir().unwrap();
    let images = mixed_replay(replay.path(), &SCAN);
    let records = records_of(scan_both(replay.path(), ""));
    assert_eq!(records.len(), images.len());
    let mut problems = Vec::new();
    for (r, (name, brand)) in records.iter().zip(&images) {
        let image = PathBuf::from(r["image"].as_str().unwrap());
        assert_eq!(image.file_name().unwrap().to_str(), Some(name.as_str()));
        assert_eq!(r["brand"], brand.as_str(), "{name}: {r}");
        let labelled = labels(brand, &image);
        for item in r["items"].as_array().unwrap() {
            if let Err(p) = check_item(
                &labelled,
                item["verdict"].as_str().unwrap(),
                &item["product"],
                &boxed(&item["box"]),
            ) {
                problems.push(format!("{name}: {p}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_brand_runs_the_variant_named_for_it_and_one_named_for_all_must_exist_in_all() {
    // Northwind ships a quarter-turns variant, Aurora does not: a device serving both names it for
    // Northwind alone, and Aurora keeps its main model.
    let replay = tempfile::tempdir().unwrap();
    let images = mixed_replay(replay.path(), &SCAN);
    let scan = |variant: &str| scan_both(replay.path(), variant);
    let records = records_of(scan("northwind=quarter-turns"));
    assert_eq!(records.len(), images.len());
    for (r, (name, brand)) in records.iter().zip(&images) {
        assert_eq!(r["brand"], brand.as_str(), "{name}: {r}");
        let want = if brand == "northwind" {
            Some("quarter-turns")
        } else {
            None
        };
        assert_eq!(r["model_variant"].as_str(), want, "{name}: {r}");
        let labelled = labels(brand, &PathBuf::from(r["image"].as_str().unwrap()));
        for item in r["items"].as_array().unwrap() {
            let verdict = item["verdict"].as_str().unwrap();
            let judged = check_item(&labelled, verdict, &item["product"], &boxed(&item["box"]));
            assert!(judged.is_ok(), "{name}: {judged:?}");
        }
    }

    // One name for every brand: Aurora has no such variant, and says so, naming what it has.
    let out = scan("quarter-turns");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("has no variant \"quarter-turns\"") && stderr.contains("fast-224"),
        "{stderr}"
    );
    // A malformed setting is refused before anything is loaded.
    let out = scan("northwind=quarter-turns, northwind=fast-224");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("named twice"));
}

#[test]
fn a_brand_configured_twice_or_an_unknown_source_brand_is_refused_at_start() {
    for (env, says) in [
        (
            [
                (
                    "HALLMARK_MODEL_BUNDLES",
                    "models/northwind,models/northwind",
                ),
                ("HALLMARK_SOURCE_BRAND", ""),
            ],
            "configured twice",
        ),
        (
            [
                ("HALLMARK_MODEL_BUNDLES", "models/northwind,models/aurora"),
                ("HALLMARK_SOURCE_BRAND", "acme"),
            ],
            "source.brand acme is not among the brands served (northwind, aurora)",
        ),
    ] {
        let state = tempfile::tempdir().unwrap();
        let out = hallmark_run(state.path(), &env.map(|(k, v)| (k, v.to_string())))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn brands_share_the_input_not_the_output_layout() {
    // Northwind's quarter-turns (four passes: an output four times as long) beside Aurora's main
    // model: one letterboxed input, each detector decoding its own rows. Aurora's samples make the
    // router load Aurora's detector next to Northwind's.
    let state = tempfile::tempdir().unwrap();
    let both = |variant: &str, source: &str| {
        hallmark_run(
            state.path(),
            &[
                (
                    "HALLMARK_MODEL_BUNDLES",
                    "models/northwind,models/aurora".into(),
                ),
                ("HALLMARK_MODEL_VARIANT", variant.into()),
                ("HALLMARK_SOURCE_PATH", source.into()),
                ("HALLMARK_SOURCE_BRAND", String::new()),
            ],
        )
        .output()
        .unwrap()
    };
    let out = both("northwind=quarter-turns", "models/samples/aurora");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("variant=quarter-turns"), "{stderr}");
    let brands: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["brand"].as_str().map(str::to_string))
        .collect();
    assert!(
        !brands.is_empty() && brands.iter().all(|b| b == "aurora"),
        "{brands:?}\n{stderr}"
    );
    // Another input size (Aurora's fast-224 is 224×224, Northwind's models 320×320) is refused at
    // start, naming both bundles.
    let out = both("aurora=fast-224,northwind=main", "models/samples/aurora");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("must share the input (size and type)")
            && stderr.contains("models/northwind")
            && stderr.contains("models/aurora"),
        "{stderr}"
    );
}

/// Every sample and recorded belt frame of `brands`, copied into `dir` in one order: interleaved one
/// frame of each brand in turn (`mixed`), else brand after brand. Returns (file name, brand) pairs.
fn replay_of(dir: &Path, brands: &[&str], mixed: bool) -> Vec<(String, String)> {
    let frames = |brand: &str| -> Vec<PathBuf> {
        let mut v = Vec::new();
        for folder in [
            format!("models/samples/{brand}"),
            format!("tests/fixtures/conveyor/{brand}"),
        ] {
            let mut here: Vec<PathBuf> = std::fs::read_dir(repo().join(folder))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .collect();
            here.sort();
            v.extend(here);
        }
        v
    };
    let lists: Vec<(String, Vec<PathBuf>)> =
        brands.iter().map(|b| (b.to_string(), frames(b))).collect();
    let mut order: Vec<(String, PathBuf)> = Vec::new();
    if mixed {
        let longest = lists.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
        for k in 0..longest {
            for (b, l) in &lists {
                if let Some(p) = l.get(k) {
                    order.push((b.clone(), p.clone()));
                }
            }
        }
    } else {
        for (b, l) in &lists {
            order.extend(l.iter().map(|p| (b.clone(), p.clone())));
        }
    }
    order
        .into_iter()
        .map(|(brand, from)| {
            let stem = from.file_stem().unwrap().to_string_lossy().into_owned();
            let name = format!("{brand}-{stem}.jpg");
            std::fs::copy(&from, dir.join(&name)).unwrap();
            (name, brand)
        })
        .collect()
}

/// Each item's (brand, verdict, product) by (frame file name, box rounded to a pixel), from a
/// non-looping `hallmark run` over `dir` serving `bundles` in `mode`.
fn judged(
    dir: &Path,
    bundles: &str,
    mode: &str,
    variant: &str,
) -> std::collections::BTreeMap<(String, Vec<i64>), (String, String, String)> {
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::spawn(hallmark_run(
        state.path(),
        &[
            ("HALLMARK_MODEL_VARIANT", variant.into()),
            ("HALLMARK_MODEL_BUNDLES", bundles.into()),
            ("HALLMARK_AGENT_MODE", mode.into()),
            ("HALLMARK_SOURCE_PATH", dir.display().to_string()),
            ("HALLMARK_SOURCE_FPS", "0".into()),
        ],
    ));
    let (code, lines, stderr) = agent.wait_lines(Duration::from_secs(300));
    assert_eq!(code, Some(0), "{stderr}");
    if variant.is_empty() && bundles.starts_with("models/northwind") {
        assert!(
            stderr.contains("variant=quarter-turns"),
            "Northwind's default: {stderr}"
        );
    }
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not an event: {l}: {e}"))
        })
        .filter(|e| e["verdict"] != "no_product")
        .map(|e| {
            let frame = e["item"]["frame"].as_str().unwrap_or_default();
            let name = Path::new(frame)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bbox = boxed(&e["item"]["box"])
                .iter()
                .map(|v| v.round() as i64)
                .collect();
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                (name, bbox),
                (s(&e["brand"]), s(&e["verdict"]), s(&e["item"]["product"])),
            )
        })
        .collect()
}

/// A kiosk replay mixing both brands' samples and belt frames one by one: every item is judged by its
/// own brand's model, with the verdict a single-brand run gives it — on the main models, and on the
/// bundles' defaults (Northwind's quarter-turns, four passes, beside Aurora's main model: routing by
/// sight compares a four-pass model's scores with a one-pass model's).
#[test]
fn a_mixed_kiosk_replay_judges_every_item_as_its_own_brand_alone_does() {
    mixed_kiosk_replay("main");
}

#[test]
fn on_the_bundles_defaults_a_mixed_kiosk_replay_judges_every_item_as_its_own_brand_alone_does() {
    mixed_kiosk_replay("");
}

/// `variant`: `model.variant` ("" leaves each bundle its default for the mode).
fn mixed_kiosk_replay(variant: &str) {
    let (mixed, alone) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let frames = replay_of(mixed.path(), &["northwind", "aurora"], true);
    let mut want = std::collections::BTreeMap::new();
    for brand in ["northwind", "aurora"] {
        let dir = alone.path().join(brand);
        std::fs::create_dir(&dir).unwrap();
        replay_of(&dir, &[brand], false);
        want.extend(judged(&dir, &format!("models/{brand}"), "kiosk", variant));
    }
    let got = judged(
        mixed.path(),
        "models/northwind,models/aurora",
        "kiosk",
        variant,
    );
    assert!(want.len() >= 40, "items to compare: {}", want.len());
    let differ: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: alone {v:?}, mixed {:?}", got.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} items differ:\n{}",
        differ.len(),
        want.len(),
        differ.join("\n")
    );
    assert_eq!(got.len(), want.len(), "no item more in the mixed run");
    for ((name, _), (brand, ..)) in &got {
        let (_, truth) = frames.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(brand, truth, "{name}");
    }
}

/// The two recorded belts one after the other, on a conveyor serving both brands: every pack is judged
/// by its own brand's model, as a single-brand run judges it — on the main models and on the bundles'
/// defaults.
#[test]
fn belts_of_two_brands_in_a_row_are_judged_as_each_brand_alone_judges_them() {
    belts_in_a_row("main");
}

#[test]
fn on_the_bundles_defaults_belts_of_two_brands_in_a_row_are_judged_as_each_brand_alone_judges_them()
{
    belts_in_a_row("");
}

fn belts_in_a_row(variant: &str) {
    let (mixed, alone) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for brand in ["northwind", "aurora"] {
        let belt = repo().join(format!("tests/fixtures/conveyor/{brand}"));
        for dir in [mixed.path().to_path_buf(), alone.path().join(brand)] {
            std::fs::create_dir_all(&dir).unwrap();
            for e in std::fs::read_dir(&belt).unwrap().flatten() {
                if e.path().extension().is_some_and(|x| x == "jpg") {
                    let name = format!("{brand}-{}", e.file_name().to_string_lossy());
                    std::fs::copy(e.path(), dir.join(name)).unwrap();
                }
            }
        }
    }
    let mut want = std::collections::BTreeMap::new();
    for brand in ["northwind", "aurora"] {
        want.extend(judged(
            &alone.path().join(brand),
            &format!("models/{brand}"),
            "conveyor",
            variant,
        ));
    }
    let got = judged(
        mixed.path(),
        "models/northwind,models/aurora",
        "conveyor",
        variant,
    );
    assert!(want.len() >= 8, "packs to compare: {}", want.len());
    assert_eq!(got, want);
}
