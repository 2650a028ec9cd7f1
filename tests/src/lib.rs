//! End-to-end tests of Hallmark (`tests/tests/*.rs`) and what they share: where the checkout, the
//! shipped bundles, the sample images and the goldens are.

use std::path::{Path, PathBuf};

/// The checkout's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the checkout").to_path_buf()
}
