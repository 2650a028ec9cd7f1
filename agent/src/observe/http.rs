//! The HTTP endpoint for operators (`http.listen`): `GET /metrics` (Prometheus / OpenMetrics text) and
//! `GET /healthz` (200 `ok`, or 503 with the reason). Everything else is 404.
//!
//! The socket is bound synchronously, so a bad or busy address fails `hallmark run` at start with a
//! message naming it, not later on a thread. The server (axum) then runs on its own thread with a
//! current-thread tokio runtime: it needs no more, and stays clear of the pipeline's threads.

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
            observer,
            max_frame_age,
        });
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("hallmark-http".into())
        .spawn(move || run(runtime, listener, app, stopped))
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
    stopped: watch::Receiver<bool>,
) {
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "http server cannot start");
                return;
            }
        };
        let graceful = {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let server = axum::serve(listener, app).with_graceful_shutdown(graceful);
        // Graceful shutdown waits for open connections; a client that keeps one open must not hold
        // the agent's shutdown hostage, so give up on them after GRACE.
        let deadline = {
            let mut stopped = stopped;
            async move {
                let _ = stopped.wait_for(|s| *s).await;
                tokio::time::sleep(GRACE).await;
            }
        };
        tokio::select! {
            r = server => if let Err(e) = r {
                tracing::error!(error = %e, "http server failed");
            },
            _ = deadline => tracing::debug!("http server: connections still open at shutdown, closed"),
        }
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
