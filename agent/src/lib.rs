//! Hallmark decides whether a product in front of a camera is genuine or counterfeit. This crate is the
//! `hallmark` binary's library: everything that touches the world (ONNX Runtime, cameras and image
//! files, the model store and updates, MQTT, HTTP, the controller link, the state folder), around two
//! crates that do not: `hallmark_core` (the frame step, the verdict rule, tracking, the modes, brand
//! routing) and `hallmark_proto` (every topic and payload, the bundle manifest).
//!
//! The pieces, in the order a frame meets them:
//! - [`config`]: the TOML configuration and its `HALLMARK_*` overrides.
//! - [`runtime`]: finding and loading ONNX Runtime, building sessions with the chosen execution providers.
//! - [`bundle`]: signed model bundles (signature, digests, the encoding a device runs); [`store`] and
//!   [`update`]: installed revisions and fleet updates.
//! - [`capture`] and [`imageio`]: frame sources (camera, replay, video) and image files to upright RGB.
//! - [`detector`]: the YOLOv5 detector (letterbox, inference, decode, NMS) around one session;
//!   [`codes`]: the barcodes inside items (the frame step's reader).
//! - [`pipeline`]: bundle + detector + the frame step, as `scan`, `bench` and the daemon open them.
//! - [`daemon`]: `hallmark run` (threads, routing, swaps, the judge); [`sink`]: stdout, evidence, the
//!   controller link; [`delivery`]: spool and MQTT; [`observe`]: metrics, health, telemetry.
//! - [`scan`], [`bench`], [`fleet`]: the other commands; [`cli`] parses the command line.

pub mod bench;
pub mod bench_daemon;
pub mod bundle;
pub mod capture;
pub mod cli;
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
pub mod update;

pub use bundle::{Bundle, Manifest, TrustedKeys};
pub use detector::{Detection, Detector, Frame};
pub use pipeline::Pipeline;
pub use runtime::{Runtime, RuntimeOptions};
