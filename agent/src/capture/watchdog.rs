//! The camera's stall watchdog: a pure state machine that decides when to open the camera, when to
//! give up on a stream that stopped delivering frames, and how long to back off before reopening.
//!
//! It does no I/O and reads no clock: the caller ([`super::camera`]) feeds it [`Event`]s with the
//! [`Instant`] they happened at and carries out the [`Action`] it answers. Its states are the
//! [`SourceState`]s the daemon reports:
//!
//! ```text
//!   Opening ──first good frame──▶ Streaming ──no frame for stall_after, or a read error──┐
//!      ▲  │                                                                              │
//!      │  └─ open failed / open timed out / no first frame ─▶ Reconnecting ◀─────────────┘
//!      └──────────────── backoff over (250 ms, doubling, capped at 8 s, jittered) ──┘
//! ```
//!
//! The very first open is special: if it fails (or times out) the watchdog answers [`Action::Fail`],
//! so that "no camera at start" is one clear, fatal error instead of a daemon that retries forever.

use hallmark_core::backoff;
use std::time::{Duration, Instant};

use super::SourceState;

/// How the watchdog times things.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// No good frame for this long while streaming: the stream is abandoned.
    pub stall_after: Duration,
    /// The first frame must come this long after an open (cameras take a while to settle exposure).
    pub first_frame_within: Duration,
    /// Longest an open may take before it counts as failed (a driver that hangs in an ioctl).
    pub open_timeout: Duration,
    /// Wait before the first reopen after a loss.
    pub backoff_first: Duration,
    /// Longest wait between reopens.
    pub backoff_max: Duration,
    /// Fraction (0–1) of each wait that is randomised away, so that several agents that lost a shared
    /// USB hub do not all retry in step: a wait is between `(1 - jitter) × base` and `base`.
    pub jitter: f64,
}

impl Policy {
    /// The defaults around a given stall time: the first frame within 5 s (or the stall time if
    /// longer), open timeout 10 s, backoff 250 ms doubling to 8 s, jitter 25 %.
    pub fn new(stall_after: Duration) -> Policy {
        Policy {
            stall_after,
            first_frame_within: stall_after.max(Duration::from_secs(5)),
            open_timeout: Duration::from_secs(10),
            backoff_first: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            jitter: 0.25,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing arrived; time has passed.
    Tick,
    /// The device opened and its stream started.
    Opened,
    /// The open failed.
    OpenFailed,
    /// A good frame arrived (a garbled one does not count: it proves the driver is alive, not that the
    /// camera works).
    Frame,
    /// Reading the stream failed (a device unplugged, an I/O error).
    ReadError,
}

/// What the caller must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start opening the camera (a new reader); then report [`Event::Opened`] or [`Event::OpenFailed`].
    Open,
    /// Abandon the current reader (its stream stalled or failed); a reopen follows after the backoff.
    Close,
    /// Nothing to do before this instant unless an event arrives (wait for it, at most this long).
    Wait(Instant),
    /// The first open at start-up failed: the caller should give up with one clear error.
    Fail,
}

/// The answer to one event: the action, and the state to report when it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// `Some` only when the state differs from the one reported last.
    pub report: Option<SourceState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not started yet.
    Idle,
    /// An open is under way (`opened` once the device reports it open, waiting for the first frame);
    /// it fails at `deadline`.
    Opening { opened: bool, deadline: Instant },
    /// Frames arrive; the last good one came at `last`.
    Streaming { last: Instant },
    /// Waiting until `retry_at` to open again.
    Reconnecting { retry_at: Instant },
    /// The first open failed; nothing more happens.
    Failed,
}

/// The watchdog.
#[derive(Debug, Clone)]
pub struct Watchdog {
    policy: Policy,
    phase: Phase,
    /// The state last reported to the caller.
    reported: SourceState,
    /// Failed attempts since the last good stream: the backoff's exponent.
    failures: u32,
    /// Reopens after a loss, over the watchdog's life.
    reconnects: u64,
    /// Whether any open has succeeded yet (after that a failure is never fatal).
    ever_opened: bool,
    /// Whether an open has been requested yet (the first one is the start-up attempt).
    opens: u64,
    /// The jitter generator's state (splitmix64).
    rng: u64,
}

impl Watchdog {
    /// A watchdog that has not started; `seed` makes the jitter deterministic (tests pass a constant,
    /// the camera passes something that differs between processes).
    pub fn new(policy: Policy, seed: u64) -> Watchdog {
        Watchdog {
            policy,
            phase: Phase::Idle,
            reported: SourceState::Opening,
            failures: 0,
            reconnects: 0,
            ever_opened: false,
            opens: 0,
            rng: seed,
        }
    }

    /// The state the camera is in now.
    pub fn state(&self) -> SourceState {
        match self.phase {
            Phase::Idle | Phase::Opening { .. } => SourceState::Opening,
            Phase::Streaming { .. } => SourceState::Streaming,
            Phase::Reconnecting { .. } | Phase::Failed => SourceState::Reconnecting,
        }
    }

    /// Reopens after a loss so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Starts: the first open, reported as [`SourceState::Opening`].
    pub fn start(&mut self, now: Instant) -> Step {
        if self.phase != Phase::Idle {
            return self.on(Event::Tick, now);
        }
        let action = self.open(now);
        Step {
            action,
            report: Some(SourceState::Opening),
        }
    }

    /// Feeds one event that happened at `now`.
    pub fn on(&mut self, event: Event, now: Instant) -> Step {
        let action = self.transition(event, now);
        let state = self.state();
        let report = (state != self.reported).then_some(state);
        self.reported = state;
        Step { action, report }
    }

    fn transition(&mut self, event: Event, now: Instant) -> Action {
        match (self.phase, event) {
            (Phase::Idle, _) => self.open(now),
            (Phase::Failed, _) => Action::Fail,

            (Phase::Opening { .. }, Event::Opened) => {
                self.ever_opened = true;
                // Design: a slow first frame is a stall too (after a longer grace): an open alone
                // proves nothing.
                let deadline = now + self.policy.first_frame_within;
                self.phase = Phase::Opening {
                    opened: true,
                    deadline,
                };
                Action::Wait(deadline)
            }
            (Phase::Opening { .. }, Event::Frame) => {
                // Design: the backoff resets only on a good frame, not on an open: a camera that opens
                // and then delivers nothing keeps backing off.
                self.ever_opened = true;
                self.failures = 0;
                self.phase = Phase::Streaming { last: now };
                Action::Wait(now + self.policy.stall_after)
            }
            (Phase::Opening { opened, .. }, Event::OpenFailed | Event::ReadError) => {
                self.lose(now, opened)
            }
            (Phase::Opening { opened, deadline }, Event::Tick) => {
                if now >= deadline {
                    self.lose(now, opened)
                } else {
                    Action::Wait(deadline)
                }
            }

            (Phase::Streaming { .. }, Event::Frame) => {
                self.phase = Phase::Streaming { last: now };
                Action::Wait(now + self.policy.stall_after)
            }
            (Phase::Streaming { .. }, Event::ReadError) => self.lose(now, true),
            (Phase::Streaming { last }, Event::Tick | Event::Opened | Event::OpenFailed) => {
                // Opened/OpenFailed while streaming cannot come from the current reader; ignore them.
                let stall = last + self.policy.stall_after;
                if now >= stall {
                    self.lose(now, true)
                } else {
                    Action::Wait(stall)
                }
            }

            (Phase::Reconnecting { retry_at }, _) => {
                // Events here would come from an abandoned reader, whose channel is gone; only time
                // matters.
                if now >= retry_at {
                    self.reconnects += 1;
                    self.open(now)
                } else {
                    Action::Wait(retry_at)
                }
            }
        }
    }

    fn open(&mut self, now: Instant) -> Action {
        self.opens += 1;
        self.phase = Phase::Opening {
            opened: false,
            deadline: now + self.policy.open_timeout,
        };
        Action::Open
    }

    /// The current attempt or stream is lost at `now`. `opened`: the device had opened.
    fn lose(&mut self, now: Instant, opened: bool) -> Action {
        // Design: only the start-up attempt is fatal, and only if the device never opened: a camera
        // that was there once is waited for forever.
        if self.opens == 1 && !opened && !self.ever_opened {
            self.phase = Phase::Failed;
            return Action::Fail;
        }
        let wait = self.backoff();
        self.failures = self.failures.saturating_add(1);
        self.phase = Phase::Reconnecting {
            retry_at: now + wait,
        };
        Action::Close
    }

    /// The wait before the next reopen: `backoff_first × 2^failures`, capped, minus the jitter
    /// (`hallmark_core::backoff`).
    fn backoff(&mut self) -> Duration {
        let Policy {
            backoff_first,
            backoff_max,
            jitter,
            ..
        } = self.policy;
        let base = backoff::step(backoff_first, backoff_max, self.failures);
        let r = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        backoff::jittered(base, jitter, 1.0 - r)
    }

    /// splitmix64: tiny, good enough for jitter, and deterministic from the seed.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy() -> Policy {
        Policy {
            stall_after: MS(2000),
            first_frame_within: MS(3000),
            open_timeout: MS(5000),
            backoff_first: MS(250),
            backoff_max: MS(8000),
            jitter: 0.0,
        }
    }

    /// An [`Action`] with `Wait`'s instant in ms after the test's t0.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum A {
        Open,
        Close,
        Wait(u64),
        Fail,
    }

    /// Runs `(ms after t0, event, expected action, expected report)` rows.
    fn run(wd: &mut Watchdog, t0: Instant, rows: &[(u64, Event, A, Option<SourceState>)]) {
        for (i, &(at, event, want, report)) in rows.iter().enumerate() {
            let step = wd.on(event, t0 + MS(at));
            let got = match step.action {
                Action::Open => A::Open,
                Action::Close => A::Close,
                Action::Wait(t) => A::Wait(t.duration_since(t0).as_millis() as u64),
                Action::Fail => A::Fail,
            };
            assert_eq!(
                (got, step.report),
                (want, report),
                "row {i}: {event:?} at {at} ms"
            );
        }
    }

    fn started(t0: Instant) -> Watchdog {
        let mut wd = Watchdog::new(policy(), 1);
        let step = wd.start(t0);
        assert_eq!(
            step,
            Step {
                action: Action::Open,
                report: Some(SourceState::Opening)
            }
        );
        wd
    }

    use Event::*;
    use SourceState::{Opening, Reconnecting, Streaming};

    #[test]
    fn a_steady_stream_stays_streaming() {
        let t0 = Instant::now();
        let mut wd = started(t0);
        let mut rows = vec![
            (100, Opened, A::Wait(3100), None),
            (400, Frame, A::Wait(2400), Some(Streaming)),
        ];
        // 30 fps for a while, with ticks in between: never a stall, never a state change.
        for k in 1..100u64 {
            let t = 400 + k * 33;
            rows.push((t, Frame, A::Wait(t + 2000), None));
            rows.push((t + 20, Tick, A::Wait(t + 2000), None));
        }
        run(&mut wd, t0, &rows);
        assert_eq!(wd.state(), Streaming);
        assert_eq!(wd.reconnects(), 0);
    }

    #[test]
    fn a_stall_closes_and_reopens_after_the_backoff() {
        let t0 = Instant::now();
        let mut wd = started(t0);
        run(
            &mut wd,
            t0,
            &[
                (100, Opened, A::Wait(3100), None),
                (200, Frame, A::Wait(2200), Some(Streaming)),
                (1000, Frame, A::Wait(3000), None),
                (2999, Tick, A::Wait(3000), None),
                // Exactly stall_after without a frame: abandon the reader.
                (3000, Tick, A::Close, Some(Reconnecting)),
                (3100, Tick, A::Wait(3250), None),
                (3250, Tick, A::Open, Some(Opening)),
                (3300, Opened, A::Wait(6300), None),
                (3400, Frame, A::Wait(5400), Some(Streaming)),
            ],
        );
        assert_eq!(wd.reconnects(), 1);
    }

    #[test]
    fn a_read_error_reconnects_at_once() {
        let t0 = Instant::now();
        let mut wd = started(t0);
        run(
            &mut wd,
            t0,
            &[
                (0, Opened, A::Wait(3000), None),
                (10, Frame, A::Wait(2010), Some(Streaming)),
                (20, ReadError, A::Close, Some(Reconnecting)),
                (270, Tick, A::Open, Some(Opening)),
            ],
        );
        assert_eq!(wd.reconnects(), 1);
    }

    #[test]
    fn failed_reopens_back_off_up_to_the_cap_and_a_good_stream_resets_it() {
        let t0 = Instant::now();
        let mut wd = started(t0);
        run(
            &mut wd,
            t0,
            &[
                (0, Opened, A::Wait(3000), None),
                (10, Frame, A::Wait(2010), Some(Streaming)),
            ],
        );
        // Unplugged: every reopen fails at once. Waits: 250, 500, 1000, 2000, 4000, 8000, 8000, 8000.
        let mut t = 20;
        let mut rows = vec![(t, ReadError, A::Close, Some(Reconnecting))];
        for wait in [250, 500, 1000, 2000, 4000, 8000, 8000, 8000] {
            rows.push((t + wait - 1, Tick, A::Wait(t + wait), None));
            t += wait;
            rows.push((t, Tick, A::Open, Some(Opening)));
            rows.push((t, OpenFailed, A::Close, Some(Reconnecting)));
        }
        run(&mut wd, t0, &rows);
        assert_eq!(wd.reconnects(), 8);
        // Plugged back: the next retry comes after the cap; a good frame then resets the backoff.
        t += 8000;
        let rows = [
            (t, Tick, A::Open, Some(Opening)),
            (t + 50, Opened, A::Wait(t + 3050), None),
            (t + 80, Frame, A::Wait(t + 2080), Some(Streaming)),
            (t + 100, ReadError, A::Close, Some(Reconnecting)),
            (t + 349, Tick, A::Wait(t + 350), None),
            (t + 350, Tick, A::Open, Some(Opening)),
        ];
        run(&mut wd, t0, &rows);
    }

    #[test]
    fn an_open_without_frames_does_not_reset_the_backoff() {
        let t0 = Instant::now();
        let mut wd = started(t0);
        run(
            &mut wd,
            t0,
            &[
                (0, Opened, A::Wait(3000), None),
                (10, Frame, A::Wait(2010), Some(Streaming)),
                (20, ReadError, A::Close, Some(Reconnecting)),
                (270, Tick, A::Open, Some(Opening)),
                (300, Opened, A::Wait(3300), None),
                // No first frame within first_frame_within of the open: lost again, and the wait
                // doubled.
                (3299, Tick, A::Wait(3300), None),
                (3300, Tick, A::Close, Some(Reconnecting)),
                (3799, Tick, A::Wait(3800), None),
                (3800, Tick, A::Open, Some(Opening)),
                // An open that hangs in the driver times out.
                (8799, Tick, A::Wait(8800), None),
                (8800, Tick, A::Close, Some(Reconnecting)),
                (9800, Tick, A::Open, Some(Opening)),
            ],
        );
        assert_eq!(wd.reconnects(), 3);
    }

    #[test]
    fn no_camera_at_start_up_is_fatal() {
        for (event, at) in [(OpenFailed, 30), (Tick, 5000)] {
            let t0 = Instant::now();
            let mut wd = started(t0);
            run(&mut wd, t0, &[(at, event, A::Fail, Some(Reconnecting))]);
            // Whatever comes next, it stays failed.
            run(&mut wd, t0, &[(at + 10_000, Tick, A::Fail, None)]);
            assert_eq!(wd.reconnects(), 0);
        }
    }

    #[test]
    fn a_camera_that_opened_once_is_never_fatal() {
        let t0 = Instant::now();
        let mut wd = started(t0);
        run(
            &mut wd,
            t0,
            &[
                (0, Opened, A::Wait(3000), None),
                // Opened at start-up, but no frame ever: a stall, not a missing camera.
                (3000, Tick, A::Close, Some(Reconnecting)),
                (3250, Tick, A::Open, Some(Opening)),
                (3260, OpenFailed, A::Close, Some(Reconnecting)),
            ],
        );
    }

    #[test]
    fn stale_events_while_reconnecting_are_ignored() {
        let t0 = Instant::now();
        let mut wd = started(t0);
        run(
            &mut wd,
            t0,
            &[
                (0, Opened, A::Wait(3000), None),
                (10, Frame, A::Wait(2010), Some(Streaming)),
                (20, ReadError, A::Close, Some(Reconnecting)),
                (30, Frame, A::Wait(270), None),
                (40, Opened, A::Wait(270), None),
            ],
        );
    }

    #[test]
    fn jitter_is_deterministic_from_the_seed_and_stays_under_the_base() {
        let waits = |seed| {
            let mut wd = Watchdog::new(
                Policy {
                    jitter: 0.25,
                    ..policy()
                },
                seed,
            );
            let t0 = Instant::now();
            wd.start(t0);
            wd.on(Opened, t0);
            let mut t = t0;
            let mut out = vec![];
            wd.on(ReadError, t);
            for _ in 0..10 {
                let Action::Wait(retry_at) = wd.on(Tick, t).action else {
                    panic!("expected a wait")
                };
                out.push(retry_at - t);
                t = retry_at;
                assert_eq!(wd.on(Tick, t).action, Action::Open);
                assert_eq!(wd.on(OpenFailed, t).action, Action::Close);
            }
            out
        };
        let a = waits(42);
        assert_eq!(a, waits(42));
        assert_ne!(a, waits(43));
        let bases = [250u64, 500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000];
        for (w, base) in a.iter().zip(bases) {
            assert!(
                *w <= MS(base) && *w >= MS(base * 3 / 4),
                "{w:?} not in [0.75, 1] × {base} ms"
            );
        }
    }
}
