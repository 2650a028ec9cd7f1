//! Downloading a release's bundle `.tar` over HTTP(S): resumable, bounded in size and time,
//! cancellable, and checked against the release's size and SHA-256 before it is handed on.
//!
//! Files in the download folder, named by the release's digest so a resume can never mix two bundles:
//! - `<sha256>.part` — bytes received so far (kept across failures that may resume: timeouts, cut
//!   connections, 5xx, cancel; removed when its bytes are known bad: too large, wrong length, wrong digest);
//! - `<sha256>.tar` — a complete, verified archive (fsynced, then renamed from `.part`).
//!
//! The API blocks the caller: [`Downloader`] owns a small current-thread tokio runtime, so it must be
//! used (and dropped) on a plain thread such as the updater's, never inside another tokio runtime.

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use super::machine::Fault;
use super::release::{redact_url, Release};

/// How long a download may take, per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connection set-up.
    pub connect: Duration,
    /// No byte for this long (waiting for the response or between body chunks) = stalled.
    pub read: Duration,
    /// The whole fetch, resume included.
    pub total: Duration,
    /// A body that arrives slower than `min_rate` bytes a second over this long is stalled (a server
    /// dripping a byte now and then defeats `read`, and would hold the updater for `total`).
    pub stall: Duration,
    pub min_rate: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            total: Duration::from_secs(30 * 60),
            stall: Duration::from_secs(60),
            min_rate: 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("download: HTTP {status} from {url}")]
    Http { status: StatusCode, url: String },
    #[error("download: {}", timeout_text(what, *after))]
    Timeout { what: &'static str, after: Duration },
    #[error("download: cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("download: stalled: {bytes} bytes in {} s, slower than {} for {} s", after.as_secs(), rate_text(*min_rate), after.as_secs())]
    Stalled {
        bytes: u64,
        after: Duration,
        min_rate: u64,
    },
    #[error("download: connection cut after {received} bytes: {detail}")]
    Interrupted { received: u64, detail: String },
    #[error("download: bad response from the server: {0}")]
    Protocol(String),
    #[error("download: the server sent more than the release's size of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("download: the server sent {got} bytes, the release says {expected}")]
    Length { expected: u64, got: u64 },
    #[error("download: SHA-256 of the archive is {actual}, the release says {expected}")]
    Digest { expected: String, actual: String },
    #[error("download: {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("download: cancelled")]
    Cancelled,
    #[error("download: cannot set up the HTTP client: {0}")]
    Client(String),
}

fn rate_text(bytes_per_s: u64) -> String {
    if bytes_per_s >= 1024 && bytes_per_s % 1024 == 0 {
        format!("{} KiB/s", bytes_per_s / 1024)
    } else {
        format!("{bytes_per_s} B/s")
    }
}

fn timeout_text(what: &str, after: Duration) -> String {
    let after = if after.as_secs() >= 10 {
        format!("{} s", after.as_secs())
    } else {
        format!("{:.1} s", after.as_secs_f64())
    };
    match what {
        "connect" => format!("no connection within {after} (connect timeout)"),
        "read" => format!("no data for {after} (read timeout)"),
        "total" => format!("not done within {after} (total timeout)"),
        other => format!("{other} timed out after {after}"),
    }
}

impl DownloadError {
    /// Worth trying again soon (the machine's fast backoff): timeouts, connection failures, cut
    /// connections, odd responses, 5xx, 408 and 429.
    ///
    /// Not retryable: the bytes are bad (digest, length, too large), the server refuses (404, 403 and
    /// other 4xx), the disk fails, or the caller cancelled. Of these, the refusals and disk errors are
    /// still retried by the state machine on its slow schedule ([`Fault::Unavailable`]: the operator
    /// may upload the file after announcing it); bad bytes never are ([`Fault::Permanent`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            DownloadError::Timeout { .. }
            | DownloadError::Stalled { .. }
            | DownloadError::Connect { .. }
            | DownloadError::Interrupted { .. }
            | DownloadError::Protocol(_) => true,
            DownloadError::Http { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            _ => false,
        }
    }

    /// How the update state machine treats this failure.
    pub fn fault(&self) -> Fault {
        match self {
            DownloadError::TooLarge { .. }
            | DownloadError::Length { .. }
            | DownloadError::Digest { .. } => Fault::Permanent,
            e if e.is_retryable() => Fault::Transient,
            // A cancel is not a failure of the release; if one is reported, a retry is right.
            DownloadError::Cancelled => Fault::Transient,
            _ => Fault::Unavailable,
        }
    }

    /// The one line for the status topic's `detail` (URLs without their query, which may be a credential).
    pub fn cause(&self) -> String {
        self.to_string()
    }
}

/// Fetches release bundles; one per updater, used from one thread at a time per download folder.
pub struct Downloader {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// How often progress is reported: never more than every 100 ms, and at least every second or 5 %.
const PROGRESS_MIN: Duration = Duration::from_millis(100);
const PROGRESS_MAX: Duration = Duration::from_secs(1);
/// How often a wait looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);

impl Downloader {
    pub fn new(timeouts: Timeouts) -> Result<Downloader, DownloadError> {
        ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            // reqwest times each read, waiting for the headers included; `bounded` adds cancel.
            .read_timeout(timeouts.read)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("hallmark/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| DownloadError::Client(error_chain(&e)))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DownloadError::Client(format!("tokio runtime: {e}")))?;
        Ok(Downloader {
            client,
            runtime,
            timeouts,
        })
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Downloads `release` into `dir` and returns the verified `dir/<sha256>.tar`.
    ///
    /// Resumes an existing `<sha256>.part` with `Range`; returns an existing `<sha256>.tar` at once
    /// when its digest matches. `progress(bytes, size)` is called now and then (never more often than
    /// every 100 ms); `cancel` is looked at at least every 50 ms and ends the fetch with `Cancelled`,
    /// keeping the `.part` for a later resume.
    pub fn fetch(
        &self,
        release: &Release,
        dir: &Path,
        progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<PathBuf, DownloadError> {
        if cancel.load(Ordering::Relaxed) {
            return Err(DownloadError::Cancelled);
        }
        fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        let done = dir.join(format!("{}.tar", release.sha256));
        if done.exists() {
            match verify_file(&done, release, cancel) {
                Ok(()) => {
                    debug!(brand = %release.brand, revision = release.revision, "archive already downloaded");
                    progress(release.size, release.size);
                    return Ok(done);
                }
                Err(DownloadError::Cancelled) => return Err(DownloadError::Cancelled),
                Err(e) => {
                    warn!(path = %done.display(), "discarding a stored archive that does not match its release: {e}");
                    fs::remove_file(&done).map_err(io_error("removing", &done))?;
                }
            }
        }
        let part = dir.join(format!("{}.part", release.sha256));
        let deadline = Deadline {
            at: Instant::now() + self.timeouts.total,
            total: self.timeouts.total,
        };
        let result = self
            .runtime
            .block_on(self.download(release, &part, deadline, progress, cancel));
        let part_file = result?;
        part_file.commit(&done, dir)?;
        Ok(done)
    }

    async fn download(
        &self,
        release: &Release,
        path: &Path,
        deadline: Deadline,
        progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<PartFile, DownloadError> {
        let url = redact_url(&release.url);
        let mut restarted = false;
        'fetch: loop {
            let mut part = PartFile::open(path, release.size, cancel)?;
            if part.len < release.size {
                // One request, or two when a 416 says the part is no use.
                loop {
                    match self
                        .transfer(release, &url, &mut part, deadline, progress, cancel)
                        .await
                    {
                        Err(Restart) => {
                            part.reset()?;
                            continue;
                        }
                        Ok(Ok(())) => break,
                        Ok(Err(e)) => {
                            // An empty part is no head start; leave nothing behind for it.
                            if part.len == 0 {
                                part.discard();
                            }
                            return Err(e);
                        }
                    }
                }
            }
            if part.len != release.size {
                part.discard();
                return Err(DownloadError::Length {
                    expected: release.size,
                    got: part.len,
                });
            }
            let actual = hex::encode(part.hasher.clone().finalize());
            if actual == release.sha256 {
                return Ok(part);
            }
            part.discard();
            // Bytes kept from an earlier try may be what is wrong (the object changed under the URL):
            // one fresh download from zero before calling the archive bad.
            if part.inherited > 0 && !restarted {
                warn!(brand = %release.brand, revision = release.revision, "digest mismatch after a resume; downloading again from the start");
                restarted = true;
                continue 'fetch;
            }
            return Err(DownloadError::Digest {
                expected: release.sha256.clone(),
                actual,
            });
        }
    }

    /// One request from `part.len` on. `Err(Restart)` asks for the part to be emptied and the
    /// request made again without `Range`.
    async fn transfer(
        &self,
        release: &Release,
        url: &str,
        part: &mut PartFile,
        deadline: Deadline,
        progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<Result<(), DownloadError>, Restart> {
        let offset = part.len;
        let mut request = self.client.get(&release.url);
        if offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
            info!(brand = %release.brand, revision = release.revision, offset, url, "resuming download");
        } else {
            info!(brand = %release.brand, revision = release.revision, size = release.size, url, "downloading");
        }
        // A backstop behind reqwest's own connect and read timeouts, which normally fire first.
        let limit = self.timeouts.connect + self.timeouts.read + Duration::from_millis(250);
        let sent = bounded(request.send(), "read", limit, deadline, cancel).await;
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Ok(Err(request_error(&e, url, offset, &self.timeouts))),
            Err(e) => return Ok(Err(e)),
        };
        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                if let Err(e) = check_content_range(&response, offset, release.size) {
                    if !matches!(e, DownloadError::Protocol(_)) {
                        part.discard();
                    }
                    return Ok(Err(e));
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    info!(brand = %release.brand, "the server ignored Range; starting over");
                    if let Err(e) = part.reset() {
                        return Ok(Err(e));
                    }
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                info!(brand = %release.brand, offset, "the server refused the range (416); starting over");
                return Err(Restart);
            }
            StatusCode::PARTIAL_CONTENT => {
                return Ok(Err(DownloadError::Protocol(
                    "206 Partial Content to a request without Range".into(),
                )));
            }
            _ => {
                return Ok(Err(DownloadError::Http {
                    status,
                    url: url.to_owned(),
                }))
            }
        }
        if let Some(len) = response.content_length() {
            if part.len.saturating_add(len) > release.size {
                part.discard();
                return Ok(Err(DownloadError::TooLarge {
                    limit: release.size,
                }));
            }
        }
        Ok(self
            .receive(response, release, url, part, deadline, progress, cancel)
            .await)
    }

    #[allow(clippy::too_many_arguments)]
    async fn receive(
        &self,
        mut response: reqwest::Response,
        release: &Release,
        url: &str,
        part: &mut PartFile,
        deadline: Deadline,
        progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<(), DownloadError> {
        let mut throttle = Throttle::new(part.len, release.size);
        progress(part.len, release.size);
        let mut window = (Instant::now(), part.len);
        loop {
            let chunk = match bounded(
                response.chunk(),
                "read",
                self.timeouts.read,
                deadline,
                cancel,
            )
            .await?
            {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(request_error(&e, url, part.len, &self.timeouts)),
            };
            if part.len.saturating_add(chunk.len() as u64) > release.size {
                part.discard();
                return Err(DownloadError::TooLarge {
                    limit: release.size,
                });
            }
            part.write(&chunk)?;
            if throttle.due(part.len) {
                progress(part.len, release.size);
            }
            let t = &self.timeouts;
            if window.0.elapsed() >= t.stall {
                let got = part.len - window.1;
                if got < t.min_rate.saturating_mul(t.stall.as_secs().max(1)) {
                    part.flush()?;
                    return Err(DownloadError::Stalled {
                        bytes: got,
                        after: t.stall,
                        min_rate: t.min_rate,
                    });
                }
                window = (Instant::now(), part.len);
            }
        }
        part.flush()?;
        if throttle.last_bytes != part.len {
            progress(part.len, release.size);
        }
        Ok(())
    }
}

/// The server said 416: empty the part and ask again from zero.
struct Restart;

/// reqwest needs a process-wide rustls provider when it is built without its own (which keeps
/// aws-lc-rs out of the build); ring is the one the agent uses for MQTT too. Installing it is
/// idempotent, and an already installed default is kept.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a default exists either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// When the whole fetch must be over.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    total: Duration,
}

/// Waits for `fut` at most `limit` (and never past the deadline), giving up at once on `cancel`.
async fn bounded<T>(
    fut: impl Future<Output = T>,
    what: &'static str,
    limit: Duration,
    deadline: Deadline,
    cancel: &AtomicBool,
) -> Result<T, DownloadError> {
    let start = Instant::now();
    let (until, what, after) = if start + limit > deadline.at {
        (deadline.at, "total", deadline.total)
    } else {
        (start + limit, what, limit)
    };
    tokio::pin!(fut);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(DownloadError::Cancelled);
        }
        let now = Instant::now();
        if now >= until {
            return Err(DownloadError::Timeout { what, after });
        }
        tokio::select! {
            value = &mut fut => return Ok(value),
            _ = tokio::time::sleep((until - now).min(CANCEL_POLL)) => {}
        }
    }
}

fn request_error(
    e: &reqwest::Error,
    url: &str,
    received: u64,
    timeouts: &Timeouts,
) -> DownloadError {
    // reqwest's messages name the URL; ours names it without its query instead.
    let detail = error_chain(e);
    if e.is_connect() {
        if e.is_timeout() {
            return DownloadError::Timeout {
                what: "connect",
                after: timeouts.connect,
            };
        }
        return DownloadError::Connect {
            url: url.to_owned(),
            detail,
        };
    }
    if e.is_timeout() {
        return DownloadError::Timeout {
            what: "read",
            after: timeouts.read,
        };
    }
    if e.is_redirect() {
        return DownloadError::Protocol(detail);
    }
    DownloadError::Interrupted { received, detail }
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut text = match e.url() {
        Some(_) => {
            // Display of the error itself without its URL.
            let mut s = e.to_string();
            if let Some(i) = s.find(" for url (") {
                s.truncate(i);
            }
            s
        }
        None => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A 206 must continue where the part ends, and its total (when given) must be the release's size.
fn check_content_range(
    response: &reqwest::Response,
    offset: u64,
    size: u64,
) -> Result<(), DownloadError> {
    let Some(value) = response.headers().get(header::CONTENT_RANGE) else {
        return Err(DownloadError::Protocol("206 without Content-Range".into()));
    };
    let text = value.to_str().unwrap_or("");
    let parsed = text.strip_prefix("bytes ").and_then(|r| {
        let (range, total) = r.split_once('/')?;
        let (start, _end) = range.split_once('-')?;
        Some((
            start.trim().parse::<u64>().ok()?,
            total.trim().parse::<u64>().ok(),
        ))
    });
    let Some((start, total)) = parsed else {
        return Err(DownloadError::Protocol(format!(
            "unreadable Content-Range {text:?}"
        )));
    };
    if start != offset {
        return Err(DownloadError::Protocol(format!(
            "asked for bytes from {offset}, got from {start}"
        )));
    }
    match total {
        Some(t) if t > size => Err(DownloadError::TooLarge { limit: size }),
        Some(t) if t < size => Err(DownloadError::Length {
            expected: size,
            got: t,
        }),
        _ => Ok(()),
    }
}

/// `dir/<sha256>.part` being written, with the running SHA-256 of its bytes.
struct PartFile {
    path: PathBuf,
    file: File,
    hasher: Sha256,
    len: u64,
    /// Bytes that came from an earlier try (0 once the part starts over).
    inherited: u64,
}

impl PartFile {
    /// Opens (or creates) the part and hashes what it already holds, so a resume checks every byte.
    fn open(path: &Path, size: u64, cancel: &AtomicBool) -> Result<PartFile, DownloadError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error("opening", path))?;
        let existing = file.metadata().map_err(io_error("reading", path))?.len();
        let mut part = PartFile {
            path: path.to_owned(),
            file,
            hasher: Sha256::new(),
            len: 0,
            inherited: 0,
        };
        if existing > size {
            warn!(path = %path.display(), existing, size, "a partial download is larger than the release; starting over");
            part.reset()?;
            return Ok(part);
        }
        if existing > 0 {
            part.len =
                hash_into(&mut part.file, &mut part.hasher, cancel).map_err(|e| match e {
                    HashError::Cancelled => DownloadError::Cancelled,
                    HashError::Io(source) => DownloadError::Io {
                        what: "reading",
                        path: path.to_owned(),
                        source,
                    },
                })?;
            part.inherited = part.len;
        }
        // hash_into read to the end: the next write appends.
        Ok(part)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), DownloadError> {
        self.file
            .write_all(data)
            .map_err(io_error("writing", &self.path))?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DownloadError> {
        self.file.flush().map_err(io_error("writing", &self.path))
    }

    fn reset(&mut self) -> Result<(), DownloadError> {
        self.file
            .set_len(0)
            .map_err(io_error("truncating", &self.path))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_error("seeking", &self.path))?;
        self.hasher = Sha256::new();
        self.len = 0;
        self.inherited = 0;
        Ok(())
    }

    /// Removes a part whose bytes are known bad; a failure to remove only costs disk until the next try.
    fn discard(&self) {
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                warn!(path = %self.path.display(), "cannot remove a bad partial download: {e}");
            }
        }
    }

    /// fsync, rename to `done`, fsync the folder: a crash leaves either the part or the whole archive.
    fn commit(self, done: &Path, dir: &Path) -> Result<(), DownloadError> {
        self.file
            .sync_all()
            .map_err(io_error("syncing", &self.path))?;
        drop(self.file);
        fs::rename(&self.path, done).map_err(io_error("renaming", &self.path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("syncing", dir))?;
        Ok(())
    }
}

enum HashError {
    Cancelled,
    Io(io::Error),
}

fn hash_into(file: &mut File, hasher: &mut Sha256, cancel: &AtomicBool) -> Result<u64, HashError> {
    file.seek(SeekFrom::Start(0)).map_err(HashError::Io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(HashError::Cancelled);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HashError::Io(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// Whether a stored archive has the release's length and digest.
fn verify_file(path: &Path, release: &Release, cancel: &AtomicBool) -> Result<(), DownloadError> {
    let mut file = File::open(path).map_err(io_error("opening", path))?;
    let mut hasher = Sha256::new();
    let len = hash_into(&mut file, &mut hasher, cancel).map_err(|e| match e {
        HashError::Cancelled => DownloadError::Cancelled,
        HashError::Io(source) => DownloadError::Io {
            what: "reading",
            path: path.to_owned(),
            source,
        },
    })?;
    if len != release.size {
        return Err(DownloadError::Length {
            expected: release.size,
            got: len,
        });
    }
    let actual = hex::encode(hasher.finalize());
    if actual != release.sha256 {
        return Err(DownloadError::Digest {
            expected: release.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

fn io_error<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> DownloadError + 'a {
    move |source| DownloadError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Removes downloads (`*.part`, `*.tar` named by a digest) other than those of `keep`, e.g. after
/// a release was superseded. Returns how many files went.
pub fn remove_stale(dir: &Path, keep: &[&str]) -> io::Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.rsplit_once('.') else {
            continue;
        };
        let is_digest = stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit());
        if is_digest
            && matches!(ext, "part" | "tar")
            && !keep.contains(&stem)
            && entry.file_type()?.is_file()
        {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Rate limit of the progress callback.
struct Throttle {
    last: Instant,
    last_bytes: u64,
    step: u64,
}

impl Throttle {
    fn new(bytes: u64, size: u64) -> Throttle {
        Throttle {
            last: Instant::now(),
            last_bytes: bytes,
            step: (size / 20).max(1),
        }
    }

    fn due(&mut self, bytes: u64) -> bool {
        let elapsed = self.last.elapsed();
        let due = elapsed >= PROGRESS_MIN
            && (bytes - self.last_bytes >= self.step || elapsed >= PROGRESS_MAX);
        if due {
            self.last = Instant::now();
            self.last_bytes = bytes;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_and_fault_table() {
        let http = |code: u16| DownloadError::Http {
            status: StatusCode::from_u16(code).unwrap(),
            url: "u".into(),
        };
        let io = DownloadError::Io {
            what: "writing",
            path: "/x".into(),
            source: io::Error::other("disk full"),
        };
        #[rustfmt::skip]
        let cases: Vec<(DownloadError, bool, Fault)> = vec![
            (http(500), true, Fault::Transient),
            (http(503), true, Fault::Transient),
            (http(429), true, Fault::Transient),
            (http(408), true, Fault::Transient),
            (http(404), false, Fault::Unavailable),
            (http(403), false, Fault::Unavailable),
            (http(410), false, Fault::Unavailable),
            (DownloadError::Timeout { what: "read", after: Duration::from_secs(1) }, true, Fault::Transient),
            (DownloadError::Connect { url: "u".into(), detail: "refused".into() }, true, Fault::Transient),
            (DownloadError::Interrupted { received: 5, detail: "reset".into() }, true, Fault::Transient),
            (DownloadError::Protocol("x".into()), true, Fault::Transient),
            (DownloadError::TooLarge { limit: 5 }, false, Fault::Permanent),
            (DownloadError::Length { expected: 5, got: 4 }, false, Fault::Permanent),
            (DownloadError::Digest { expected: "a".into(), actual: "b".into() }, false, Fault::Permanent),
            (io, false, Fault::Unavailable),
            (DownloadError::Cancelled, false, Fault::Transient),
        ];
        for (e, retryable, fault) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e}");
            assert_eq!(e.fault(), fault, "{e}");
        }
    }

    #[test]
    fn causes_read_well() {
        let cases = [
            (
                DownloadError::Http {
                    status: StatusCode::NOT_FOUND,
                    url: "http://h/x.tar".into(),
                },
                "download: HTTP 404 Not Found from http://h/x.tar",
            ),
            (
                DownloadError::Timeout {
                    what: "read",
                    after: Duration::from_millis(1500),
                },
                "download: no data for 1.5 s (read timeout)",
            ),
            (
                DownloadError::Timeout {
                    what: "total",
                    after: Duration::from_secs(1800),
                },
                "download: not done within 1800 s (total timeout)",
            ),
            (
                DownloadError::TooLarge { limit: 10 },
                "download: the server sent more than the release's size of 10 bytes",
            ),
            (
                DownloadError::Length {
                    expected: 10,
                    got: 4,
                },
                "download: the server sent 4 bytes, the release says 10",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.cause(), want);
        }
    }

    #[test]
    fn throttle_limits_the_rate() {
        let mut t = Throttle::new(0, 1000);
        // Too soon, however far the bytes moved.
        assert!(!t.due(999));
        t.last -= PROGRESS_MIN;
        assert!(!t.due(10), "less than 5 % and less than a second");
        assert!(t.due(60));
        t.last -= PROGRESS_MAX;
        assert!(t.due(61), "a second has passed");
    }

    #[test]
    fn remove_stale_keeps_what_is_asked_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        for name in [
            format!("{a}.part"),
            format!("{a}.tar"),
            format!("{b}.part"),
            format!("{b}.tar"),
            "notes.txt".into(),
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale(dir.path(), &[&a]).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![format!("{a}.part"), format!("{a}.tar"), "notes.txt".into()]
        );
        assert_eq!(remove_stale(&dir.path().join("missing"), &[]).unwrap(), 0);
    }
}
