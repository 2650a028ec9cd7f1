//! Verdict events as JSON Lines on stdout, one line per event, flushed per line (a pipe reader sees
//! each verdict as it is decided).

use std::io::Write;
use std::sync::Arc;

use super::Queue;
use hallmark_proto::VerdictEvent;

/// Starts the stdout writer.
pub fn spawn(capacity: usize) -> std::io::Result<Queue<Arc<VerdictEvent>>> {
    Queue::spawn("stdout", capacity, |event: Arc<VerdictEvent>| {
        let line = match serde_json::to_string(&*event) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "verdict event does not serialise");
                return;
            }
        };
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
            tracing::warn!(error = %e, id = %event.id, "cannot write a verdict to stdout");
        }
    })
}
