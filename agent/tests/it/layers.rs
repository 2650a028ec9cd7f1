//! The agent's layering, checked on its source: no module of `hallmark-agent` names (`crate::…`) a
//! module of its own layer or of a layer above it, so data flows one way (frames and verdicts down
//! through the layers' types, never a leaf reaching back into a command or the daemon). The crates
//! below the agent (`hallmark-core`, `hallmark-proto`, `hallmark-detect`, `hallmark-barcode`) cannot
//! name it at all: Cargo refuses a cycle. A new module must be given a layer here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom to top; a module may use only modules of lower layers.
const LAYERS: &[&[&str]] = &[
    // Leaves: signed bundles, image files, barcodes in a frame, logging.
    &["bundle", "imageio", "codes", "logging"],
    // ONNX Runtime, frame sources, metrics and health, the model store.
    &["runtime", "capture", "observe", "store"],
    // The detector session, fleet updates, the sinks (stdout, evidence, the controller link).
    &["detector", "update", "sink"],
    // Bundle + detector + frame step; systemd; delivery (spool, MQTT).
    &["pipeline", "service", "delivery"],
    // The configuration, resolved into each layer's settings.
    &["config"],
    // The commands' work: the daemon, scan, bench, the fleet tools, the evidence export.
    &["daemon", "scan", "bench", "fleet", "evidence_export"],
    // The daemon's benchmark.
    &["bench_daemon"],
    // The command line.
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::<module>` names in `text`, comments left out.
fn crate_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn no_module_of_the_agent_uses_one_of_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(from) = layer_of(&top) else {
            problems.push(format!("{}: module `{top}` has no layer", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in crate_modules(&text) {
            if used == top {
                continue;
            }
            edges.entry(top.clone()).or_default().insert(used.clone());
            match layer_of(&used) {
                Some(to) if to < from => {}
                Some(to) => problems.push(format!(
                    "{}: `{top}` (layer {from}) uses `crate::{used}` (layer {to})",
                    rel.display()
                )),
                None => problems.push(format!("{}: `crate::{used}` has no layer", rel.display())),
            }
        }
    }
    assert!(
        edges.len() > 10,
        "the walk found the modules: {:?}",
        edges.keys()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `hallmark-core` and `hallmark-proto` stay pure: none of the crates that touch the world (ONNX
/// Runtime, cameras, the C++ barcode reader, async I/O) is a dependency of theirs.
#[test]
fn the_pure_crates_depend_on_nothing_that_touches_the_world() {
    let agent = Path::new(env!("CARGO_MANIFEST_DIR"));
    for krate in ["core", "proto"] {
        let manifest = std::fs::read_to_string(agent.join(krate).join("Cargo.toml")).unwrap();
        let deps: toml::Table = toml::from_str(&manifest).unwrap();
        for section in ["dependencies", "dev-dependencies"] {
            let Some(list) = deps.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for name in list.keys() {
                assert!(
                    ![
                        "ort",
                        "nokhwa",
                        "zxing-cpp",
                        "tokio",
                        "rumqttc",
                        "reqwest",
                        "redb",
                        "hallmark-agent"
                    ]
                    .contains(&name.as_str()),
                    "{krate}/Cargo.toml {section}: {name}"
                );
            }
            if let Some(barcode) = list.get("hallmark-barcode") {
                assert!(
                    barcode.get("features").is_none(),
                    "{krate} takes hallmark-barcode without a decoding engine"
                );
            }
        }
    }
}
