//! Downloading release bundles against a real HTTP server on loopback (axum + tower-http's ServeDir,
//! which honours `Range`), serving a real bundle `.tar` made from the shipped northwind bundle, plus
//! routes that misbehave: a connection cut halfway, a 404, a server that never answers, one that sends
//! too much, one that sends the wrong bytes, one that ignores `Range`, one that answers 416.
//! Every wait is bounded by the downloader's timeouts or an explicit limit.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hallmark_agent::update::{self, DownloadError, Downloader, Fault, Release, Timeouts};
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;

/// One request the server saw, and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    range: Option<String>,
    status: u16,
    /// Body bytes sent (Content-Length, or what a cut/streamed response sent).
    bytes: Option<u64>,
}

struct Shared {
    tar: Vec<u8>,
    hits: Mutex<Vec<Hit>>,
    cut_done: AtomicBool,
}

struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self, prefix: &str) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// The northwind bundle as a `.tar` with its files at the root, as `hallmark publish` makes it.
fn bundle_tar() -> Vec<u8> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/northwind");
    let mut builder = tar::Builder::new(Vec::new());
    for name in ["manifest.json", "manifest.sig", "model.onnx"] {
        builder.append_path_with_name(src.join(name), name).unwrap();
    }
    builder.into_inner().unwrap()
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tar = bundle_tar();
    std::fs::write(dir.path().join("bundle.tar"), &tar).unwrap();
    let shared = Arc::new(Shared {
        tar,
        hits: Mutex::new(Vec::new()),
        cut_done: AtomicBool::new(false),
    });
    let files = dir.path().to_owned();
    let state = shared.clone();
    let addr = support::serve(
        Router::new()
            .nest_service("/files", ServeDir::new(&files))
            .nest_service("/cut", ServeDir::new(&files))
            .nest_service("/norange", ServeDir::new(&files))
            .nest_service("/416", ServeDir::new(&files))
            .layer(middleware::from_fn_with_state(state, misbehave)),
    );
    Server {
        addr,
        shared,
        _dir: dir,
    }
}

/// Records every request and plays the misbehaving routes; the rest goes to ServeDir.
async fn misbehave(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let record = |status: u16, bytes: Option<u64>| {
        shared.hits.lock().unwrap().push(Hit {
            path: path.clone(),
            range: range.clone(),
            status,
            bytes,
        });
    };
    let tar = &shared.tar;
    let response = if path.starts_with("/cut/") && !shared.cut_done.swap(true, Ordering::SeqCst) {
        // Promise the whole archive, send half, end: hyper closes the connection mid-body.
        let half = tar[..tar.len() / 2].to_vec();
        record(200, Some(half.len() as u64));
        let body = Body::from_stream(Body::from(half).into_data_stream());
        return ([(header::CONTENT_LENGTH, tar.len().to_string())], body).into_response();
    } else if path.starts_with("/drip/") {
        // A server that never stops and never gets anywhere: a little at once, then a byte a beat.
        record(200, None);
        let head = tar[..100].to_vec();
        let drip = futures_util_stream(head);
        return (
            [(header::CONTENT_LENGTH, tar.len().to_string())],
            Body::from_stream(drip),
        )
            .into_response();
    } else if path.starts_with("/never/") {
        record(0, None);
        std::future::pending::<()>().await;
        unreachable!()
    } else if path.starts_with("/huge/") {
        // No Content-Length (chunked), so only the streamed bytes can tell it is too much.
        let mut more = tar.clone();
        more.extend_from_slice(&[0u8; 4096]);
        record(200, Some(more.len() as u64));
        return Body::from_stream(Body::from(more).into_data_stream()).into_response();
    } else if path.starts_with("/wrong/") {
        let mut wrong = tar.clone();
        let mid = wrong.len() / 2;
        wrong[mid] ^= 0xff;
        record(200, Some(wrong.len() as u64));
        return wrong.into_response();
    } else if path.starts_with("/416/") && range.is_some() {
        record(416, Some(0));
        return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    } else {
        if path.starts_with("/norange/") {
            req.headers_mut().remove(header::RANGE);
        }
        next.run(req).await
    };
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    record(response.status().as_u16(), bytes);
    response
}

/// `head` at once, then one byte every 300 ms, forever.
fn futures_util_stream(
    head: Vec<u8>,
) -> impl tokio_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tokio::spawn(async move {
        if tx.send(Ok(head)).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if tx.send(Ok(vec![0u8])).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

fn release_for(server: &Server, path: &str) -> Release {
    let tar = &server.shared.tar;
    Release {
        brand: "northwind".into(),
        revision: 2,
        url: server.url(path),
        sha256: hex::encode(Sha256::digest(tar)),
        size: tar.len() as u64,
        rollback: false,
        statement: None,
    }
}

fn downloader(read: Duration) -> Downloader {
    Downloader::new(Timeouts {
        connect: Duration::from_secs(2),
        read,
        total: Duration::from_secs(60),
        ..Timeouts::default()
    })
    .unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn part_path(dir: &Path, release: &Release) -> PathBuf {
    dir.join(format!("{}.part", release.sha256))
}

fn fetch(
    d: &Downloader,
    release: &Release,
    dir: &Path,
) -> (Result<PathBuf, DownloadError>, Vec<(u64, u64)>) {
    let mut calls = Vec::new();
    let never = AtomicBool::new(false);
    let result = d.fetch(
        release,
        dir,
        &mut |done, total| calls.push((done, total)),
        &never,
    );
    (result, calls)
}

#[test]
fn downloads_verifies_and_reuses_a_bundle() {
    let server = start_server();
    let release = release_for(&server, "/files/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    let d = downloader(Duration::from_secs(5));
    let mut calls = Vec::new();
    let never = AtomicBool::new(false);
    let path = update::stage(
        &release,
        &d,
        dir.path(),
        &mut |done, total| calls.push((done, total)),
        &never,
    )
    .unwrap();
    assert_eq!(path, dir.path().join(format!("{}.tar", release.sha256)));
    assert_eq!(std::fs::read(&path).unwrap(), server.shared.tar);
    assert_eq!(
        files_in(dir.path()),
        vec![format!("{}.tar", release.sha256)],
        "no .part left"
    );
    // Progress starts at 0, ends at the size, only grows, and is rate-limited.
    assert_eq!(calls.first(), Some(&(0, release.size)));
    assert_eq!(calls.last(), Some(&(release.size, release.size)));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
    assert!(calls.len() <= 25, "{} progress calls", calls.len());
    assert_eq!(server.hits("/files/").len(), 1);

    // A verified archive already there is returned without a request.
    let (again, _) = fetch(&d, &release, dir.path());
    assert_eq!(again.unwrap(), path);
    assert_eq!(server.hits("/files/").len(), 1);

    // One that does not match its release is replaced.
    std::fs::write(&path, b"not the bundle").unwrap();
    let (again, _) = fetch(&d, &release, dir.path());
    assert_eq!(std::fs::read(again.unwrap()).unwrap(), server.shared.tar);
    assert_eq!(server.hits("/files/").len(), 2);
}

#[test]
fn a_download_cut_halfway_resumes_with_range() {
    let server = start_server();
    let release = release_for(&server, "/cut/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    let d = downloader(Duration::from_secs(5));

    let (first, _) = fetch(&d, &release, dir.path());
    let err = first.expect_err("the connection was cut");
    assert!(matches!(err, DownloadError::Interrupted { .. }), "{err:?}");
    assert!(!err.cause().contains("for url"), "{}", err.cause());
    assert!(err.is_retryable());
    assert_eq!(err.fault(), Fault::Transient);
    // The bytes received are kept for the resume.
    let kept = std::fs::metadata(part_path(dir.path(), &release))
        .unwrap()
        .len();
    assert!(
        kept > 0 && kept <= release.size / 2,
        "kept {kept} of {}",
        release.size
    );

    let (second, calls) = fetch(&d, &release, dir.path());
    let path = second.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), server.shared.tar);
    assert_eq!(
        files_in(dir.path()),
        vec![format!("{}.tar", release.sha256)]
    );
    assert_eq!(
        calls.first(),
        Some(&(kept, release.size)),
        "progress resumes where the part ended"
    );

    let hits = server.hits("/cut/");
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].range, None);
    assert_eq!(
        hits[1].range.as_deref(),
        Some(format!("bytes={kept}-").as_str())
    );
    assert_eq!(hits[1].status, 206);
    // Not downloaded twice: what the resume asked for is exactly what was missing.
    assert_eq!(hits[1].bytes, Some(release.size - kept));
}

#[test]
fn a_missing_file_is_a_404_and_leaves_nothing() {
    let server = start_server();
    let release = release_for(&server, "/files/missing.tar?X-Amz-Signature=secret");
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = fetch(&downloader(Duration::from_secs(5)), &release, dir.path());
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::Http {
                status: StatusCode::NOT_FOUND,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        err.fault(),
        Fault::Unavailable,
        "retried on the slow schedule"
    );
    let cause = err.cause();
    assert!(
        cause.starts_with("download: HTTP 404 Not Found from http://"),
        "{cause}"
    );
    assert!(
        !cause.contains("secret"),
        "the query may be a credential: {cause}"
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = start_server();
    let release = release_for(&server, "/never/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    let read = Duration::from_millis(800);
    let start = Instant::now();
    let (result, _) = fetch(&downloader(read), &release, dir.path());
    let elapsed = start.elapsed();
    let err = result.unwrap_err();
    assert!(
        matches!(err, DownloadError::Timeout { what: "read", .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.cause(), "download: no data for 0.8 s (read timeout)");
    assert!(
        elapsed >= read && elapsed < read + Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn a_server_that_drips_bytes_is_a_stalled_download_not_a_half_hour_wait() {
    let server = start_server();
    let release = release_for(&server, "/drip/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    let d = Downloader::new(Timeouts {
        connect: Duration::from_secs(2),
        read: Duration::from_secs(30),
        total: Duration::from_secs(600),
        stall: Duration::from_secs(2),
        min_rate: 1024,
    })
    .unwrap();
    let start = Instant::now();
    let (result, _) = fetch(&d, &release, dir.path());
    let elapsed = start.elapsed();
    let err = result.unwrap_err();
    assert!(matches!(err, DownloadError::Stalled { .. }), "{err:?}");
    assert!(
        err.is_retryable(),
        "a slow link may recover: retried, resumed"
    );
    assert!(
        err.cause().contains("slower than 1 KiB/s"),
        "{}",
        err.cause()
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    assert!(
        part_path(dir.path(), &release).exists(),
        "kept for a resume"
    );
}

#[test]
fn cancel_ends_a_stalled_download_at_once() {
    let server = start_server();
    let release = release_for(&server, "/never/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    let d = downloader(Duration::from_secs(30));
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, Ordering::Relaxed);
    });
    let start = Instant::now();
    let err = d
        .fetch(&release, dir.path(), &mut |_, _| {}, &cancel)
        .unwrap_err();
    assert!(matches!(err, DownloadError::Cancelled), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    canceller.join().unwrap();
}

#[test]
fn more_bytes_than_the_release_says_is_too_large() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let d = downloader(Duration::from_secs(5));

    // Streamed without a length: caught at the limit, nothing past it written.
    let release = release_for(&server, "/huge/bundle.tar");
    let (result, _) = fetch(&d, &release, dir.path());
    let err = result.unwrap_err();
    assert!(
        matches!(err, DownloadError::TooLarge { limit } if limit == release.size),
        "{err:?}"
    );
    assert_eq!(err.fault(), Fault::Permanent);
    assert_eq!(
        files_in(dir.path()),
        Vec::<String>::new(),
        "the bad part is removed"
    );

    // Announced by Content-Length: refused before a byte is written.
    let mut small = release_for(&server, "/files/bundle.tar");
    small.size -= 1;
    let (result, _) = fetch(&d, &small, dir.path());
    assert!(
        matches!(result, Err(DownloadError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn wrong_bytes_fail_the_digest_and_are_removed() {
    let server = start_server();
    let release = release_for(&server, "/wrong/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = fetch(&downloader(Duration::from_secs(5)), &release, dir.path());
    let err = result.unwrap_err();
    match &err {
        DownloadError::Digest { expected, actual } => {
            assert_eq!(expected, &release.sha256);
            assert_ne!(actual, expected);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.fault(), Fault::Permanent);
    assert!(
        err.cause()
            .starts_with("download: SHA-256 of the archive is "),
        "{}",
        err.cause()
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn a_server_ignoring_range_starts_over() {
    let server = start_server();
    let release = release_for(&server, "/norange/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    let tar = &server.shared.tar;
    std::fs::write(part_path(dir.path(), &release), &tar[..1000]).unwrap();
    let (result, _) = fetch(&downloader(Duration::from_secs(5)), &release, dir.path());
    assert_eq!(std::fs::read(result.unwrap()).unwrap(), *tar);
    let hits = server.hits("/norange/");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].range.as_deref(), Some("bytes=1000-"));
    assert_eq!(hits[0].status, 200);
}

#[test]
fn a_416_starts_over_without_range() {
    let server = start_server();
    let release = release_for(&server, "/416/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(part_path(dir.path(), &release), &server.shared.tar[..1000]).unwrap();
    let (result, _) = fetch(&downloader(Duration::from_secs(5)), &release, dir.path());
    assert_eq!(std::fs::read(result.unwrap()).unwrap(), server.shared.tar);
    let hits = server.hits("/416/");
    let seen: Vec<(Option<&str>, u16)> = hits
        .iter()
        .map(|h| (h.range.as_deref(), h.status))
        .collect();
    assert_eq!(seen, vec![(Some("bytes=1000-"), 416), (None, 200)]);
}

#[test]
fn a_bad_part_costs_one_fresh_download_not_a_rejection() {
    let server = start_server();
    let release = release_for(&server, "/files/bundle.tar");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(part_path(dir.path(), &release), vec![0x55u8; 1000]).unwrap();
    let (result, _) = fetch(&downloader(Duration::from_secs(5)), &release, dir.path());
    assert_eq!(std::fs::read(result.unwrap()).unwrap(), server.shared.tar);
    let hits = server.hits("/files/");
    let seen: Vec<(Option<&str>, u16)> = hits
        .iter()
        .map(|h| (h.range.as_deref(), h.status))
        .collect();
    assert_eq!(seen, vec![(Some("bytes=1000-"), 206), (None, 200)]);
}

#[test]
fn a_refused_connection_is_a_retryable_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let release = Release {
        brand: "northwind".into(),
        revision: 2,
        url: format!("http://127.0.0.1:{port}/bundle.tar"),
        sha256: "0".repeat(64),
        size: 10,
        rollback: false,
        statement: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = fetch(&downloader(Duration::from_secs(5)), &release, dir.path());
    let err = result.unwrap_err();
    assert!(matches!(err, DownloadError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.cause().starts_with(&format!(
            "download: cannot connect to http://127.0.0.1:{port}/bundle.tar: "
        )),
        "{}",
        err.cause()
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}
