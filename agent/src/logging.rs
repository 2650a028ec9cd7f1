//! Logging to stderr: text for people, or JSON lines (`log.format = "json"`) for a log pipeline
//! (journald → Loki, CloudWatch). `HALLMARK_LOG` is the filter (`RUST_LOG` syntax).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `HALLMARK_LOG` is unset, for the daemon: the agent's own `info` (model loaded,
/// source state, broker connects, shutdown) is what an operator reads in `journalctl`; other crates
/// (ONNX Runtime among them) stay at `warn`, where their `info` would bury it.
pub const DAEMON_FILTER: &str = "warn,hallmark_agent=info";
/// The filter for one-shot commands (`scan`, `bench`, `models`): their output is on stdout and a
/// person is watching; stderr carries only what went wrong.
pub const COMMAND_FILTER: &str = "warn";

/// Installs the global subscriber. Called once, after the configuration is read; a second call (a test
/// running commands in one process) leaves the first in place.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("HALLMARK_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in journald or a file, only on a terminal.
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        // One JSON object per line: fields flattened to the top level so `jq .brand` works.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if result.is_err() {
        tracing::debug!("logging already set up");
    }
}
