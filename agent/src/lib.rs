//! Hallmark decides whether a product in front of a camera is genuine or counterfeit.
//!
//! The pieces, in the order a frame meets them:
//! - [`config`]: the TOML configuration and its `HALLMARK_*` overrides.
//! - [`runtime`]: finding and loading ONNX Runtime, building sessions with the chosen execution providers.
//! - [`bundle`]: signed model bundles (manifest, signature, model digest).
//! - [`imageio`]: image files to upright RGB frames, safely.
//! - [`detector`]: the YOLOv5 detector (letterbox, inference, decode, NMS), pure stages around one session.
//! - [`verdict`]: items (one per physical pack) and the one rule that judges each.
//! - [`clock`]: today's date for expiry checks.
//! - [`pipeline`]: bundle + detector + verdict, as `scan`, `bench` and the agent use them.
//! - [`scan`] and [`bench`]: the `hallmark scan` and `hallmark bench` commands; [`cli`] parses the command line.

pub mod bench;
pub mod bench_daemon;
pub mod bundle;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod detector;
pub mod evidence_export;
pub mod fleet;
pub mod imageio;
pub mod logging;
pub mod observe;
pub mod pipeline;
pub mod runtime;
pub mod scan;
pub mod service;
pub mod sink;
pub mod store;
pub mod track;
pub mod update;
pub mod verdict;

pub use bundle::{Bundle, Manifest, TrustedKeys};
pub use detector::{Detection, Detector, Frame};
pub use pipeline::Pipeline;
pub use runtime::{Runtime, RuntimeOptions};
