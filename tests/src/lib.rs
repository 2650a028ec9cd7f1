//! End-to-end tests of Hallmark (`tests/tests/*.rs`) against the real ONNX Runtime, the shipped model
//! bundles and their sample images, and what those tests share: where the checkout's models, samples
//! and goldens are. `HALLMARK_TEST_MODELS` points the tests at another models folder (bundles and
//! `samples/` under it) and `HALLMARK_TEST_GOLDEN` at another goldens folder, for development.

use std::path::{Path, PathBuf};

/// The checkout's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the checkout")
        .to_path_buf()
}

/// The folder holding the bundles (`<brand>/`) and `samples/<brand>/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("HALLMARK_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models"))
}

/// The folder of parity goldens (`<brand>.json`).
pub fn golden_dir() -> PathBuf {
    std::env::var_os("HALLMARK_TEST_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/golden"))
}

/// The demo publisher's public key, which signs the shipped bundles.
pub fn demo_key() -> PathBuf {
    repo_root().join("models/keys/demo-publisher.pub.pem")
}

/// Sample images of `brand`, sorted.
pub fn samples(brand: &str) -> Vec<PathBuf> {
    let dir = models_dir().join("samples").join(brand);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("sample folder {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("jpg" | "jpeg" | "png" | "webp")
            )
        })
        .collect();
    v.sort();
    v
}
