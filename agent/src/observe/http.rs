//! The HTTP endpoint for operators (`http.listen`): `GET /metrics` (Prometheus / OpenMetrics text) and
//! `GET /healthz` (200 `ok`, or 503 with the reason). Everything else is 404.
//!
//! The socket is bound synchronously, so a bad or busy address fails `hallmark run` at start with a
//! message naming it, not later on a thread. The server (axum routes served by hyper) then runs on its
//! own thread with a current-thread tokio runtime: it needs no more, and stays clear of the pipeline's
//! threads.
//!
//! Clients cannot take the agent's file descriptors: at most `http.max_connections` are open at once
//! (one more is closed at once and counted), a request's head must arrive within
//! `http.idle_timeout_s`, and no connection lives longer than [`CONNECTION_MAX`]. A flood of idle
//! connections (1,100 in a probe) once left the agent unable to open frames, evidence files or a
//! broker connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use thiserror::Error;
use tokio::sync::watch;

use super::metrics::CONTENT_TYPE;
use super::Observer;

/// After `close`, connections still open (keep-alive, slow clients) get this long to finish.
const GRACE: Duration = Duration::from_secs(1);
/// The longest any one connection may stay open.
pub const CONNECTION_MAX: Duration = Duration::from_secs(60);

/// How many connections the server holds at once, and how long one may wait for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}
/// `close` waits at most this long for the server thread.
const JOIN_LIMIT: Duration = Duration::from_secs(3);

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("cannot listen on {addr} (http.listen): {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("http server on {addr}: {source}")]
    Setup {
        addr: String,
        source: std::io::Error,
    },
}

/// A running server; stops on [`HttpServer::close`] or when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone)]
struct AppState {
    observer: Arc<Observer>,
    max_frame_age: Duration,
}

/// Binds `listen` (`host:port`; port 0 picks a free one) and serves `/metrics` and `/healthz` from
/// `observer` on a thread of its own.
pub fn serve(
    listen: &str,
    observer: Arc<Observer>,
    max_frame_age: Duration,
    limits: Limits,
) -> Result<HttpServer, HttpError> {
    let bind = |source| HttpError::Bind {
        addr: listen.to_string(),
        source,
    };
    let setup = |source| HttpError::Setup {
        addr: listen.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(bind)?;
    let addr = listener.local_addr().map_err(setup)?;
    // tokio takes over a std listener only in non-blocking mode.
    listener.set_nonblocking(true).map_err(setup)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(setup)?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(AppState {
            observer: observer.clone(),
            max_frame_age,
        });
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("hallmark-http".into())
        .spawn(move || run(runtime, listener, app, stopped, limits, observer))
        .map_err(setup)?;
    tracing::debug!(%addr, "http server started");
    Ok(HttpServer {
        addr,
        stop,
        thread: Some(thread),
    })
}

fn run(
    runtime: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    app: Router,
    mut stopped: watch::Receiver<bool>,
    limits: Limits,
    observer: Arc<Observer>,
) {
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "http server cannot start");
                return;
            }
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
        let mut refused_log = crate::logging::Throttle::new(3, Duration::from_secs(60));
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                a = listener.accept() => a,
            };
            // Reap finished connections so the set stays as small as the connections open.
            while connections.try_join_next().is_some() {}
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait a beat
                    // rather than spin on a listener that keeps failing.
                    tracing::debug!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                observer.http_refused();
                if let Some(left_out) = refused_log.admit(Instant::now()) {
                    tracing::warn!(%peer, max = limits.max_connections, refused_since_last_line = left_out, "http: too many connections open; closing a new one");
                }
                drop(stream);
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let idle = limits.idle_timeout;
            connections.spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(idle)
                    .keep_alive(true);
                let conn = http.serve_connection(io, service);
                let _ = tokio::time::timeout(CONNECTION_MAX, conn).await;
                drop(slot);
            });
        }
        // Stopping: requests in flight get GRACE to finish, then everything left is dropped.
        let _ = tokio::time::timeout(GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        connections.abort_all();
    });
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.observer.encode())
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    let h = s.observer.health(s.max_frame_age);
    let status = if h.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", h.reason),
    )
}

impl HttpServer {
    /// The address bound (the real port when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish (up to about a second) and joins the thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.stop.send(true);
        let deadline = Instant::now() + JOIN_LIMIT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished() {
            if thread.join().is_err() {
                tracing::warn!("http server thread panicked");
            }
        } else {
            // Never block the agent's exit on it; the thread ends with the process.
            tracing::warn!(addr = %self.addr, "http server did not stop in time; left behind");
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
