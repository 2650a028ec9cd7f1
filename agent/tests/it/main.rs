//! The agent's integration tests, one test binary (each former `tests/*.rs` is a module here, so the
//! agent and its dependencies are linked once, not once per file). Run one group with
//! `cargo test -p hallmark-agent --test it run::` (or `brands::`, `delivery::`, ...).

mod barcodes;
mod brands;
mod cli;
mod delivery;
mod deploy;
mod evidence_export;
mod faults;
mod fleet_updates;
mod hostile_bytes;
mod layers;
mod logging;
mod observe;
mod providers;
mod publish;
mod recipe;
mod run;
mod store;
mod support;
mod update;
mod verdict_vectors;
