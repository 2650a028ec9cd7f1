//! systemd integration (`Type=notify`, `WatchdogSec=`): readiness, status and a watchdog that pings
//! only while the pipeline is alive. Everything here is a no-op when `NOTIFY_SOCKET` is unset (not
//! started by systemd), so the same binary runs anywhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sd_notify::NotifyState;

fn notify(state: NotifyState) {
    // Design: `unset_env = false` keeps NOTIFY_SOCKET for the later messages (status, stopping,
    // watchdog); a failed send is logged, never fatal: the agent's job does not depend on systemd.
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::warn!(error = %e, "systemd notification failed");
    }
}

/// `READY=1`: setup is done (model loaded, source open); systemd's start job completes here.
pub fn notify_ready() {
    notify(NotifyState::Ready);
}

/// `STOPPING=1`: shutdown has begun (frames in flight are being finished).
pub fn notify_stopping() {
    notify(NotifyState::Stopping);
}

/// `EXTEND_TIMEOUT_USEC=...`: the start (or stop) job needs `by` more from now: sent while a TensorRT
/// engine builds, which can take longer than `TimeoutStartSec` on a first boot.
pub fn extend_timeout(by: Duration) {
    notify(NotifyState::ExtendTimeoutUsec(
        u32::try_from(by.as_micros()).unwrap_or(u32::MAX),
    ));
}

/// A slow TensorRT engine build (`runtime::EngineBuildReport`): says so in `systemctl status` and asks
/// for more start time than the next report is away.
pub fn engine_building(brand: &str, building_for: Duration) {
    notify_status(&format!(
        "building the TensorRT engine for {brand} ({} s)",
        building_for.as_secs()
    ));
    extend_timeout(crate::detector::BUILD_REPORT_EVERY * 4);
}

/// `STATUS=...`: one line shown by `systemctl status`.
pub fn notify_status(status: &str) {
    notify(NotifyState::Status(status));
}

/// When systemd's watchdog is on for this process (`WATCHDOG_USEC`), a thread that sends
/// `WATCHDOG=1` every half interval — but only while `heartbeat` moves. The daemon's judge thread bumps
/// `heartbeat` on every tick (~100 ms); if the pipeline wedges, the pings stop and systemd restarts the
/// agent (`Restart=on-failure`). A process that is merely alive is not enough.
///
/// The thread ends when every other holder of `heartbeat` has dropped it (the daemon is done). `None`
/// when the watchdog is off or the thread cannot start.
pub fn spawn_watchdog(heartbeat: Arc<AtomicU64>) -> Option<JoinHandle<()>> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let period = Duration::from_micros(usec) / 2;
    tracing::info!(
        interval_s = Duration::from_micros(usec).as_secs_f64(),
        "systemd watchdog on"
    );
    std::thread::Builder::new()
        .name("hallmark-watchdog".into())
        .spawn(move || {
            watch(&heartbeat, period, || notify(NotifyState::Watchdog));
        })
        .map_err(|e| tracing::warn!(error = %e, "cannot start the watchdog thread"))
        .ok()
}

/// The watchdog loop: every `period`, `ping` if `heartbeat` changed since the last look. Returns when
/// `heartbeat` has no other owner. Checks often (so it ends promptly) but decides once per `period`.
fn watch(heartbeat: &Arc<AtomicU64>, period: Duration, mut ping: impl FnMut()) {
    let step = period.min(Duration::from_millis(100));
    let mut last = heartbeat.load(Ordering::Relaxed);
    let mut waited = Duration::ZERO;
    let mut stalled = false;
    // A first ping right away: the pipeline has only just started ticking.
    ping();
    while Arc::strong_count(heartbeat) > 1 {
        std::thread::sleep(step);
        waited += step;
        if waited < period {
            continue;
        }
        waited = Duration::ZERO;
        let now = heartbeat.load(Ordering::Relaxed);
        if now != last {
            if stalled {
                tracing::warn!("pipeline ticking again; watchdog pings resume");
                stalled = false;
            }
            last = now;
            ping();
        } else if !stalled {
            tracing::error!(
                stalled_s = period.as_secs_f64(),
                "pipeline heartbeat stalled; withholding watchdog pings so systemd restarts the agent"
            );
            stalled = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    #[test]
    fn pings_only_while_the_heartbeat_moves_and_ends_with_the_daemon() {
        let heartbeat = Arc::new(AtomicU64::new(0));
        let pings = Arc::new(AtomicUsize::new(0));
        let (hb, p) = (heartbeat.clone(), pings.clone());
        let t = std::thread::spawn(move || {
            watch(&hb, Duration::from_millis(40), || {
                p.fetch_add(1, Ordering::SeqCst);
            })
        });
        // Ticking: pings keep coming.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            heartbeat.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
        let ticking = pings.load(Ordering::SeqCst);
        assert!(ticking >= 3, "{ticking} pings while ticking");
        // Stalled: at most the one decided on a tick just before the stall.
        std::thread::sleep(Duration::from_millis(300));
        let stalled = pings.load(Ordering::SeqCst);
        assert!(stalled <= ticking + 1, "{ticking} then {stalled}");
        // The daemon drops its handle: the loop ends.
        drop(heartbeat);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(t.is_finished(), "the watchdog loop did not end");
    }

    #[test]
    fn everything_is_a_no_op_without_systemd() {
        // The test runner is not started by systemd (no NOTIFY_SOCKET / WATCHDOG_USEC for this pid).
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            return;
        }
        notify_ready();
        notify_status("test");
        notify_stopping();
        assert!(spawn_watchdog(Arc::new(AtomicU64::new(0))).is_none());
    }
}
