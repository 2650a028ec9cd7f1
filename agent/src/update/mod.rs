//! Fleet model updates: from a release on MQTT to a verified bundle archive on disk.
//!
//! Who calls what (the daemon's updater thread owns all of it; detection never waits on it):
//! 1. MQTT delivery hands each message on a release topic to [`Releases::on_message`] (topics and
//!    payload: [`release`]); the device topic wins over the fleet topic ([`Releases::effective`]).
//! 2. For the brand's effective release, [`decide`] (pure, [`machine`]) says `Install`, `Rollback` or
//!    `Ignore(why)` from the active revision and the last [`Attempt`] (anti-rollback, no retry of
//!    rejected bytes, no second try while one runs).
//! 3. [`Attempt::start`] → status `downloading`; [`stage`] downloads the `.tar` with a [`Downloader`]
//!    (resume, size limit, timeouts, SHA-256; progress for the status topic and the kiosk screen).
//! 4. The daemon then checks the signature and the model, self-tests, installs into the store and swaps
//!    the model in (`verifying` → `active`); that orchestration lives in the daemon, not here.
//! 5. A failure goes through [`Attempt::fail`] with its [`Fault`] ([`DownloadError::fault`] for
//!    downloads): `rejected` for bad bytes, else `failed` and a retry after [`Retry`]'s delay, until
//!    the tries are spent. [`Attempt::status`] gives the retained status payload at every step.

pub mod machine;
pub mod release;

pub use machine::{decide, Attempt, Decision, Fault, Retry, State, Status};
pub use release::{parse, redact_url, topic_brand, Change, Release, ReleaseError, Releases, Scope};
