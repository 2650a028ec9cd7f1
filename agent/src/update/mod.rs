//! Fleet model updates: from a release on MQTT to a verified bundle archive on disk.
//!
//! Who calls what (the daemon's updater thread owns all of it; detection never waits on it):
//! 1. MQTT delivery puts each message on a release topic in the [`Inbox`] (newest per topic, bounded;
//!    a message for the brand being installed interrupts it); the updater hands it to
//!    [`Releases::on_message`] (topics and payload: [`release`]); the device topic wins over the fleet
//!    topic ([`Releases::effective`]).
//! 2. For the brand's effective release, [`decide`] (pure, [`machine`]) says `Install`, `Rollback`,
//!    `Refuse(why)` or `Ignore(why)` from the active revision, the device's [`Floor`] (the highest
//!    revision it ran, the last signed rollback), whether the release carries a valid signed rollback
//!    statement ([`rollback`]) and the last [`Attempt`] (anti-rollback, no retry of rejected bytes, no
//!    second try while one runs).
//! 3. [`Attempt::start`] → status `downloading`; [`stage`] downloads the `.tar` with a [`Downloader`]
//!    (resume, size limit, timeouts, SHA-256; progress for the status topic and the kiosk screen).
//! 4. The daemon then checks the signature and the model, self-tests, installs into the store and swaps
//!    the model in (`verifying` → `active`); that orchestration lives in the daemon, not here.
//! 5. A failure goes through [`Attempt::fail`] with its [`Fault`] ([`DownloadError::fault`] for
//!    downloads): `rejected` for bad bytes, else `failed` and a retry after [`Retry`]'s delay, until
//!    the tries are spent. [`Attempt::status`] gives the retained status payload at every step.

pub mod download;
pub mod inbox;
pub mod machine;
pub mod release;
pub mod rollback;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub use download::{remove_stale, DownloadError, Downloader, Timeouts};
pub use inbox::Inbox;
pub use machine::{decide, Attempt, Decision, Fault, Floor, Retry, State, Status};
pub use release::{parse, redact_url, topic_brand, Change, Release, ReleaseError, Releases, Scope};
pub use rollback::{Grant, RollbackError, Statement};

/// Downloads `release` into `dir` (created if missing) and returns the verified archive
/// `dir/<sha256>.tar`, logging the outcome. Blocks; see [`Downloader::fetch`]. Leftovers of superseded
/// releases are the caller's to remove with [`remove_stale`] (it knows which downloads are still wanted).
pub fn stage(
    release: &Release,
    downloader: &Downloader,
    dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
) -> Result<PathBuf, DownloadError> {
    let start = Instant::now();
    let result = downloader.fetch(release, dir, progress, cancel);
    match &result {
        Ok(path) => tracing::info!(
            brand = %release.brand,
            revision = release.revision,
            bytes = release.size,
            ms = start.elapsed().as_millis() as u64,
            path = %path.display(),
            "bundle downloaded and its digest checked"
        ),
        Err(e) => {
            tracing::warn!(brand = %release.brand, revision = release.revision, "{}", e.cause())
        }
    }
    result
}
