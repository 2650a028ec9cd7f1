//! Hallmark's wire contracts, one type each, parsed and written by the same code (the model is
//! `hallmark-link`, the controller's link crate both ends share). The conventions
//! (`shared/design/conventions.md`, the README's MQTT table) are the outside view; this crate is the
//! only place a topic or a payload is spelled.
//!
//! - [`topics`]: the MQTT topic layout under a prefix (`hallmark/things/{thing}/...`,
//!   `hallmark/fleet/models/{brand}`), written and read back.
//! - [`release`]: the release message (`hallmark.release/1`) and its signed rollback statement's wire
//!   form (the signature is checked where the keys are, in the agent's updater).
//! - [`status`]: a device's retained model-update status.
//! - [`online`]: the retained `online` status, also the last will.
//! - [`event`]: the verdict event (`hallmark.verdict/1`), one per decided item.
//! - [`telemetry`]: the periodic figures (`hallmark.telemetry/1`).
//! - [`command`]: commands to one agent (`{"command": "scan"}`).
//! - [`scan`]: the JSON line `hallmark scan` prints per image (it shares the event's records).
//! - [`manifest`]: the model bundle's `manifest.json` (`hallmark.model/1`), a wire contract too: the
//!   pipeline writes it, the agent and the bundle tooling read it.
//!
//! Everything here is data and its validation: no I/O.
#![forbid(unsafe_code)]

pub mod command;
pub mod event;
pub mod manifest;
pub mod online;
pub mod release;
pub mod scan;
pub mod status;
pub mod telemetry;
pub mod topics;

/// The verdict kinds are the link's, so the screen, the JSON and MQTT share one type.
pub use hallmark_link::Verdict as VerdictKind;

pub use command::Command;
pub use event::VerdictEvent;
pub use manifest::{Manifest, ManifestError};
pub use online::Online;
pub use release::{Release, ReleaseError, Statement};
pub use status::{ModelStatus, UpdateState};
pub use telemetry::Telemetry;
pub use topics::Topics;
