//! Logging to stderr: text for people, or JSON lines (`log.format = "json"`) for a log pipeline
//! (journald → Loki, CloudWatch). `HALLMARK_LOG` is the filter (`RUST_LOG` syntax).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// `log.format`: text for people, or JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

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

/// Keeps a repeating log line from flooding the log: the first `burst` events are logged, then one in
/// each `period`, saying how many were left out since. Pure: the caller passes the time.
#[derive(Debug, Clone)]
pub struct Throttle {
    burst: u32,
    period: std::time::Duration,
    seen: u32,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(burst: u32, period: std::time::Duration) -> Throttle {
        Throttle {
            burst,
            period,
            seen: 0,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log an event at `now`; `Some(n)`: log it, saying `n` were left out before it.
    pub fn admit(&mut self, now: std::time::Instant) -> Option<u64> {
        if self.seen < self.burst {
            self.seen += 1;
            self.last = Some(now);
            return Some(std::mem::take(&mut self.suppressed));
        }
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= self.period)
        {
            self.last = Some(now);
            return Some(std::mem::take(&mut self.suppressed));
        }
        self.suppressed += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_then_one_a_period_with_the_count_left_out() {
        let mut t = Throttle::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s);
        let got: Vec<Option<u64>> = [0, 1, 2, 3, 4, 5_000, 10_001, 10_002]
            .into_iter()
            .map(|ms| t.admit(at(ms)))
            .collect();
        assert_eq!(
            got,
            [Some(0), Some(0), Some(0), None, None, None, None, Some(4)]
        );
    }
}
