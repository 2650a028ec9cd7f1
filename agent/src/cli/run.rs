//! `hallmark run`: the agent daemon until SIGINT or SIGTERM (or the end of a replay).

use std::process::ExitCode;

use crate::config::Config;

pub fn run(config: Config) -> anyhow::Result<ExitCode> {
    let summary = crate::daemon::run(config, shutdown_signal())?;
    eprintln!(
        "hallmark: run ended: {} frames, {} verdicts ({} counterfeit), {} frames dropped, {} skipped",
        summary.frames, summary.verdicts, summary.counterfeit, summary.dropped, summary.skipped
    );
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the agent");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
