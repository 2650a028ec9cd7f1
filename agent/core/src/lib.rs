//! Hallmark's pure core: what the detections and barcodes of a frame mean, with no I/O (values in,
//! values out; time comes in as arguments or, for today's date, from the clock).
//!
//! In the order a frame meets them:
//! - [`frame`]: the owned frame every source hands out, and its borrowed view.
//! - [`step`]: **the frame step** — detections and codes → items → verdicts — which `hallmark scan`,
//!   `hallmark run`, a bundle's self-test and `hallmark bench` all call, so they judge a frame alike.
//! - [`verdict`]: items (one per physical pack), the one rule that judges each, barcode signals,
//!   serialised codes (clone pairs), a tracked item's evidence over frames.
//! - [`track`]: the IoU tracker (which item is which pack across frames).
//! - [`modes`]: the kiosk (scans) and the conveyor (tracked packs) as state machines over judged frames.
//! - [`gate`]: the conveyor's reject gate: the belt clock, each pack's arrival at the gate in encoder
//!   counts, the controller's commands and each decision's margin.
//! - [`serials`]: the memory of SGTINs decided genuine, to spot a cloned code later (its file log is
//!   the agent's).
//! - [`brands`]: several brands on one device: routing a frame by sight or by a barcode's GS1 prefix,
//!   and which detectors stay in memory.
//! - [`report`]: decided items and judged frames as the wire records (`hallmark_proto`'s verdict event
//!   and scan record).
//! - [`failing`]: when a swapped-in model counts as failing.
//! - [`backoff`]: the one capped exponential backoff with jitter (MQTT reconnects, camera reopens,
//!   update retries).
//! - [`clock`]: dates and RFC 3339 times.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod brands;
pub mod clock;
pub mod failing;
pub mod frame;
pub mod gate;
pub mod modes;
pub mod report;
pub mod serials;
pub mod step;
pub mod track;
pub mod verdict;

pub use frame::OwnedFrame;
pub use hallmark_proto::manifest::Manifest;
pub use hallmark_proto::VerdictKind;
