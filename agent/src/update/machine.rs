//! The state machine of one brand's update, with no I/O: whether a release is taken at all
//! ([`decide`]), the states it passes through ([`State`], [`Attempt`]), what the status topic says
//! ([`Status`]), and when a failed try is retried ([`Retry`]).
//!
//! ```text
//!   release ──decide──▶ Install/Rollback ──▶ downloading ──▶ verifying ──▶ [building_engine] ──▶ active ──(runtime failure)──▶ rolled_back
//!                 │                              │                │
//!                 └─▶ Ignore(why)                └──── fault ─────┴─▶ failed   (transient: retried with backoff,
//!                                                                              then left failed until a new release)
//!                                                                   rejected  (permanent: never retried for that sha256)
//! ```
//! Every path ends in `active`, `failed`, `rejected` or `rolled_back` with a cause: nothing stays
//! "in progress" forever, because each try is bounded (download timeouts) and retries are counted.

use std::time::Duration;

use hallmark_core::backoff;

use super::release::Release;

/// A brand's update state and the retained status payload are the wire contract's
/// (`hallmark_proto::status`); the updater calls them `State` and `Status`.
pub use hallmark_proto::status::{ModelStatus as Status, UpdateState as State};

/// How bad a failed try is, which decides the state and whether it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Worth retrying soon: timeouts, refused or cut connections, 5xx, 429.
    Transient,
    /// Not expected to change soon but not the bundle's fault (404, 403, a full disk): retried on the
    /// slow end of the schedule, in case the operator uploads the file after announcing it.
    Unavailable,
    /// The bundle is bad (digest, length, size, signature, self-test): `rejected`, never retried.
    Permanent,
}

/// Whether to act on a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do, and why (for the log; the status topic keeps its last state).
    Ignore(String),
    /// Download and install a revision newer than the active one (or the first for the brand).
    Install,
    /// The release asks, with `rollback: true` and a valid signed rollback statement, for a revision
    /// below the active one or the device's [`Floor`].
    Rollback,
    /// The release asks for what only a signed statement may grant, without a valid one: status
    /// `rejected` with the cause (never acted on).
    Refuse(String),
    /// The release names the active revision and this process has not tried any release of the
    /// brand: nothing to install, but the retained status may be stale (a process killed between
    /// the swap and its `active` status left `verifying` behind). The store is the truth: say
    /// `active` once.
    ConfirmActive,
}

/// The latest try at one release of a brand: what the status topic reports and what [`decide`]
/// remembers. Kept in memory by the updater; a restart forgets it and tries again.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub revision: u64,
    pub sha256: String,
    pub state: State,
    pub detail: String,
    /// Failed tries of this release so far.
    pub failures: u32,
    /// The retries are spent: stays `failed` until a different release comes.
    pub gave_up: bool,
    /// The signature of the rollback statement the release carried, if any: the same bytes under
    /// another statement (a signed one after an unsigned one was refused) are another release.
    pub statement: Option<String>,
}

impl Attempt {
    /// A new try at `release` (state `downloading`); the failure count carries over from `last` when
    /// it was a try at the same release, so a redelivered release does not reset the schedule.
    pub fn start(release: &Release, last: Option<&Attempt>) -> Attempt {
        let failures = last.filter(|a| a.is_for(release)).map_or(0, |a| a.failures);
        Attempt {
            revision: release.revision,
            sha256: release.sha256.clone(),
            state: State::Downloading,
            detail: format!("downloading revision {}", release.revision),
            failures,
            gave_up: false,
            statement: release.statement.as_ref().map(|s| s.signature.clone()),
        }
    }

    /// Same revision, same bytes and the same rollback statement (or none): a republished revision with
    /// other bytes, or the same one with another statement, is another release.
    pub fn is_for(&self, release: &Release) -> bool {
        self.revision == release.revision
            && self.sha256 == release.sha256
            && self.statement.as_deref() == release.statement.as_ref().map(|s| s.signature.as_str())
    }

    /// Moves to a state that is not a failure (verifying, active, rolled_back).
    pub fn set(&mut self, state: State, detail: impl Into<String>) {
        self.state = state;
        self.detail = detail.into();
    }

    /// Records a failed try and returns the delay before the next one, or `None` when there is none
    /// (a permanent fault, or the retries are spent). The detail says which and when.
    pub fn fail(
        &mut self,
        fault: Fault,
        cause: &str,
        retry: &Retry,
        unit: f64,
    ) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        if fault == Fault::Permanent {
            self.state = State::Rejected;
            self.detail = cause.to_owned();
            return None;
        }
        self.state = State::Failed;
        let delay = retry.delay(self.failures, fault, unit);
        self.gave_up = delay.is_none();
        self.detail = match delay {
            Some(d) => format!(
                "{cause} (try {} of {}, next in {})",
                self.failures,
                retry.attempts,
                seconds(d)
            ),
            None => format!(
                "{cause} (try {} of {}; waiting for a new release)",
                self.failures, retry.attempts
            ),
        };
        delay
    }

    pub fn status(&self, progress: Option<f64>) -> Status {
        Status {
            revision: self.revision,
            state: self.state,
            detail: self.detail.clone(),
            progress: if self.state == State::Downloading {
                progress
            } else {
                None
            },
        }
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{} s", s.round())
    }
}

/// What a release alone (unsigned) may no longer take a brand to, from the store's anti-rollback state
/// (`store::Guard`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Floor {
    /// The highest revision the device has run.
    pub highest: Option<u64>,
    /// The last signed rollback withdrew every revision up to this one.
    pub withdrawn: Option<u64>,
}

impl Floor {
    /// Why a release of `revision` needs a signed rollback statement on a device whose active revision
    /// is `active`; `None` when it does not.
    pub fn needs_statement(&self, revision: u64, active: Option<u64>) -> Option<String> {
        if let Some(a) = active.filter(|&a| revision < a) {
            return Some(format!(
                "revision {revision} is below the active revision {a}"
            ));
        }
        if let Some(w) = self.withdrawn.filter(|&w| revision <= w) {
            return Some(format!(
                "revision {revision} was withdrawn by a signed rollback (revisions up to {w})"
            ));
        }
        if let Some(h) = self.highest.filter(|&h| revision < h) {
            return Some(format!(
                "revision {revision} is below revision {h}, the highest this device has run"
            ));
        }
        None
    }
}

/// Whether to act on `release` for a brand whose active revision is `active`, given the device's
/// anti-rollback `floor`, whether the release carries a signed rollback statement (`signed`: `None`
/// without one, else whether it verified for this device, or why not) and the latest try `last` for
/// that brand (any release).
///
/// Anti-rollback, held against whoever can publish on the release topic: a revision below the active
/// one without `rollback: true` is ignored (an older release still retained is not a request); one
/// below the active one, below the highest one the device has run, or withdrawn by a signed rollback
/// is taken only with a valid signed statement ([`Decision::Rollback`]), and otherwise refused with
/// the cause ([`Decision::Refuse`]); one equal to the active one is never installed again (it is
/// confirmed, [`Decision::ConfirmActive`], when this process has tried no release of the brand, else
/// ignored). A release whose bytes were rejected or rolled back is never taken again; one that failed
/// transiently is, until its retries are spent. A try still in progress is not started twice.
pub fn decide(
    active: Option<u64>,
    floor: &Floor,
    release: &Release,
    last: Option<&Attempt>,
    signed: Option<Result<(), String>>,
) -> Decision {
    let rev = release.revision;
    match active {
        Some(a) if rev == a && last.is_none() => return Decision::ConfirmActive,
        Some(a) if rev == a => {
            return Decision::Ignore(format!("revision {rev} is already active"))
        }
        Some(a) if rev < a && !release.rollback => {
            return Decision::Ignore(format!("revision {rev} is not newer than the active {a}"))
        }
        _ => {}
    }
    let take = match (floor.needs_statement(rev, active), signed) {
        (None, _) => Decision::Install,
        (Some(_), Some(Ok(()))) => Decision::Rollback,
        (Some(why), Some(Err(cause))) => {
            Decision::Refuse(format!("{why}; its rollback statement is refused: {cause}"))
        }
        (Some(why), None) => Decision::Refuse(format!(
            "{why}: going back needs a rollback statement signed by a trusted publisher key (hallmark publish --rollback); \"rollback\": true alone is not signed"
        )),
    };
    let Some(last) = last.filter(|a| a.is_for(release)) else {
        return take;
    };
    if matches!(take, Decision::Refuse(_)) {
        // Refused once, said once: a redelivery of the same release does not say it again.
        return match last.state {
            State::Rejected => {
                Decision::Ignore(format!("revision {rev} was rejected: {}", last.detail))
            }
            _ => take,
        };
    }
    match last.state {
        State::Rejected => {
            Decision::Ignore(format!("revision {rev} was rejected: {}", last.detail))
        }
        State::RolledBack => {
            Decision::Ignore(format!("revision {rev} was rolled back: {}", last.detail))
        }
        State::Downloading | State::Verifying | State::BuildingEngine => {
            Decision::Ignore(format!("revision {rev} is already being installed"))
        }
        State::Failed if last.gave_up => {
            Decision::Ignore(format!("revision {rev} failed: {}", last.detail))
        }
        State::Failed | State::Active => take,
    }
}

/// When to retry a failed try: the capped exponential backoff with equal jitter
/// (`hallmark_core::backoff`), and a bounded number of tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The delay after the first failure.
    pub first: Duration,
    /// The cap, and the delay after an [`Fault::Unavailable`] failure.
    pub max: Duration,
    /// Tries in all (the first included) before staying `failed`.
    pub attempts: u32,
}

impl Default for Retry {
    /// 5 s doubling to 10 min, 8 tries: about 10 minutes of transient trouble, or about an hour
    /// of a missing file, before a device stays `failed` and waits for a new release.
    fn default() -> Retry {
        Retry {
            first: Duration::from_secs(5),
            max: Duration::from_secs(600),
            attempts: 8,
        }
    }
}

impl Retry {
    /// The delay after the `failures`-th failure (1 = the first), or `None` when no try is left.
    /// `unit` in 0.0..=1.0 (random in production) spreads the delay over its upper half — so a fleet
    /// that failed together does not retry together, and no delay falls below half its step.
    pub fn delay(&self, failures: u32, fault: Fault, unit: f64) -> Option<Duration> {
        if fault == Fault::Permanent || failures == 0 || failures >= self.attempts {
            return None;
        }
        let step = match fault {
            Fault::Unavailable => self.max,
            _ => backoff::step(self.first, self.max, failures - 1),
        };
        Some(backoff::jittered(step, 0.5, unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn release(revision: u64, sha: &str, rollback: bool) -> Release {
        Release {
            brand: "northwind".into(),
            revision,
            url: "http://h/x.tar".into(),
            sha256: sha.into(),
            size: 10,
            rollback,
            statement: None,
        }
    }

    /// `decide` on a device with no floor beyond its active revision, for a release without a statement.
    fn decide(active: Option<u64>, release: &Release, last: Option<&Attempt>) -> Decision {
        super::decide(active, &Floor::default(), release, last, None)
    }

    fn attempt(revision: u64, sha: &str, state: State, gave_up: bool) -> Attempt {
        Attempt {
            revision,
            sha256: sha.into(),
            state,
            detail: "cause".into(),
            failures: 1,
            gave_up,
            statement: None,
        }
    }

    const UNSIGNED: &str = "revision 3 is below the active revision 5: going back needs a rollback statement signed by a trusted publisher key (hallmark publish --rollback); \"rollback\": true alone is not signed";

    #[test]
    fn going_back_needs_a_valid_signed_statement_below_the_active_the_highest_or_a_withdrawn_revision(
    ) {
        use Decision::*;
        let floor = |highest, withdrawn| Floor {
            highest: Some(highest),
            withdrawn,
        };
        let ok = || Some(Ok(()));
        let bad = || Some(Err("signature".to_string()));
        #[rustfmt::skip]
        type Case = (Option<u64>, Floor, Release, Option<Result<(), String>>, Decision);
        let cases: Vec<Case> = vec![
            // Signed: taken; badly signed: refused with the statement's cause.
            (Some(5), floor(5, None), release(3, SHA_A, true), ok(), Rollback),
            (Some(5), floor(5, None), release(3, SHA_A, true), bad(), Refuse("revision 3 is below the active revision 5; its rollback statement is refused: signature".into())),
            // A runtime rollback left 4 active after 5: 5 again is not going back (after a restart the
            // retained release takes it, as before); anything below 5 is.
            (Some(4), floor(5, None), release(5, SHA_A, false), None, Install),
            (Some(2), floor(5, None), release(3, SHA_A, false), None, Refuse("revision 3 is below revision 5, the highest this device has run: going back needs a rollback statement signed by a trusted publisher key (hallmark publish --rollback); \"rollback\": true alone is not signed".into())),
            (Some(2), floor(5, None), release(3, SHA_A, false), ok(), Rollback),
            // After a signed rollback to 3 withdrawing up to 5: 4 and 5 need a statement, 6 does not.
            (Some(3), floor(5, Some(5)), release(5, SHA_A, false), None, Refuse("revision 5 was withdrawn by a signed rollback (revisions up to 5): going back needs a rollback statement signed by a trusted publisher key (hallmark publish --rollback); \"rollback\": true alone is not signed".into())),
            (Some(3), floor(5, Some(5)), release(4, SHA_A, false), None, Refuse("revision 4 was withdrawn by a signed rollback (revisions up to 5): going back needs a rollback statement signed by a trusted publisher key (hallmark publish --rollback); \"rollback\": true alone is not signed".into())),
            (Some(3), floor(5, Some(5)), release(6, SHA_A, false), None, Install),
            // An older retained release without `rollback` is not a request: ignored quietly.
            (Some(5), floor(5, None), release(3, SHA_A, false), ok(), Ignore("revision 3 is not newer than the active 5".into())),
        ];
        for (i, (active, floor, rel, signed, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                super::decide(active, &floor, &rel, None, signed),
                want,
                "case {i}"
            );
        }
        // A refused release redelivered is not refused (and reported) again.
        let mut a = Attempt::start(&release(3, SHA_A, true), None);
        a.fail(Fault::Permanent, "refused", &Retry::default(), 0.0);
        assert_eq!(
            super::decide(
                Some(5),
                &floor(5, None),
                &release(3, SHA_A, true),
                Some(&a),
                None
            ),
            Ignore("revision 3 was rejected: refused".into())
        );
        // The same archive with a signed statement is another release: taken.
        let signed = Release {
            statement: Some(crate::update::Statement {
                document: "{}".into(),
                signature: "sig".into(),
            }),
            ..release(3, SHA_A, true)
        };
        assert!(!a.is_for(&signed));
        assert_eq!(
            super::decide(Some(5), &floor(5, None), &signed, Some(&a), ok()),
            Rollback
        );
    }

    #[test]
    fn decide_table() {
        use Decision::*;
        let ignore = |s: &str| Ignore(s.to_owned());
        #[rustfmt::skip]
        let cases: Vec<(Option<u64>, Release, Option<Attempt>, Decision)> = vec![
            // No model for the brand yet: anything is taken.
            (None, release(1, SHA_A, false), None, Install),
            (None, release(1, SHA_A, true), None, Install),
            // Newer, equal, older.
            (Some(5), release(6, SHA_A, false), None, Install),
            (Some(5), release(6, SHA_A, true), None, Install),
            (Some(5), release(5, SHA_A, false), None, ConfirmActive),
            (Some(5), release(5, SHA_A, true), None, ConfirmActive),
            // The active revision once this process has tried a release of the brand: its status
            // is this process's own, nothing to confirm.
            (Some(5), release(5, SHA_A, false), Some(attempt(5, SHA_A, State::Active, false)), ignore("revision 5 is already active")),
            (Some(5), release(5, SHA_A, false), Some(attempt(6, SHA_B, State::Rejected, false)), ignore("revision 5 is already active")),
            (Some(5), release(3, SHA_A, false), None, ignore("revision 3 is not newer than the active 5")),
            // `rollback: true` alone is not signed: refused, with why.
            (Some(5), release(3, SHA_A, true), None, Refuse(UNSIGNED.into())),
            // The last try at the same bytes.
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::Rejected, false)), ignore("revision 4 was rejected: cause")),
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::RolledBack, false)), ignore("revision 4 was rolled back: cause")),
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::Downloading, false)), ignore("revision 4 is already being installed")),
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::Verifying, false)), ignore("revision 4 is already being installed")),
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::BuildingEngine, false)), ignore("revision 4 is already being installed")),
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::Failed, false)), Install),
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::Failed, true)), ignore("revision 4 failed: cause")),
            (Some(5), release(3, SHA_A, true), Some(attempt(3, SHA_A, State::Rejected, false)), ignore("revision 3 was rejected: cause")),
            (Some(5), release(3, SHA_A, true), Some(attempt(3, SHA_A, State::Failed, false)), Refuse(UNSIGNED.into())),
            // Another release (other bytes or another revision) is not held back by the last try.
            (Some(3), release(4, SHA_B, false), Some(attempt(4, SHA_A, State::Rejected, false)), Install),
            (Some(3), release(4, SHA_B, false), Some(attempt(4, SHA_A, State::Failed, true)), Install),
            (Some(3), release(5, SHA_A, false), Some(attempt(4, SHA_A, State::Rejected, false)), Install),
            (Some(3), release(5, SHA_A, false), Some(attempt(4, SHA_A, State::Downloading, false)), Install),
            // The revision check comes first: a rejected older revision reads as "not newer".
            (Some(5), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::Rejected, false)), ignore("revision 4 is not newer than the active 5")),
            // Active once, then the store was rolled back by hand: the newer revision may come back.
            (Some(3), release(4, SHA_A, false), Some(attempt(4, SHA_A, State::Active, false)), Install),
        ];
        for (i, (active, rel, last, want)) in cases.iter().enumerate() {
            assert_eq!(
                &decide(*active, rel, last.as_ref()),
                want,
                "case {i}: active {active:?}, {rel:?}, {last:?}"
            );
        }
    }

    #[test]
    fn retry_table() {
        let r = Retry::default();
        let s = Duration::from_secs;
        #[rustfmt::skip]
        let cases: Vec<(u32, Fault, f64, Option<Duration>)> = vec![
            (1, Fault::Transient, 1.0, Some(s(5))),
            (1, Fault::Transient, 0.0, Some(Duration::from_millis(2500))),
            (1, Fault::Transient, 0.5, Some(Duration::from_millis(3750))),
            (2, Fault::Transient, 1.0, Some(s(10))),
            (3, Fault::Transient, 1.0, Some(s(20))),
            (7, Fault::Transient, 1.0, Some(s(320))),
            (7, Fault::Transient, 0.0, Some(s(160))),
            (8, Fault::Transient, 1.0, None),
            (100, Fault::Transient, 1.0, None),
            (0, Fault::Transient, 1.0, None),
            (1, Fault::Unavailable, 1.0, Some(s(600))),
            (1, Fault::Unavailable, 0.0, Some(s(300))),
            (7, Fault::Unavailable, 1.0, Some(s(600))),
            (8, Fault::Unavailable, 1.0, None),
            (1, Fault::Permanent, 1.0, None),
            // Out-of-range jitter is clamped, not trusted.
            (1, Fault::Transient, 7.0, Some(s(5))),
            (1, Fault::Transient, -1.0, Some(Duration::from_millis(2500))),
            (1, Fault::Transient, f64::NAN, Some(s(5))),
        ];
        for (failures, fault, unit, want) in cases {
            assert_eq!(
                r.delay(failures, fault, unit),
                want,
                "{failures} {fault:?} {unit}"
            );
        }
        // The cap holds however many tries are allowed, without overflow.
        let long = Retry {
            attempts: u32::MAX,
            ..Retry::default()
        };
        assert_eq!(long.delay(9, Fault::Transient, 1.0), Some(s(600)));
        assert_eq!(long.delay(200, Fault::Transient, 1.0), Some(s(600)));
    }

    /// A release that keeps failing ends `failed` after the last try, with its cause, and is then
    /// ignored until a new release comes.
    #[test]
    fn failures_end_and_are_not_retried_forever() {
        let retry = Retry {
            first: Duration::from_secs(1),
            max: Duration::from_secs(4),
            attempts: 3,
        };
        let rel = release(4, SHA_A, false);
        let mut last: Option<Attempt> = None;
        let mut delays = Vec::new();
        loop {
            assert_eq!(decide(Some(3), &rel, last.as_ref()), Decision::Install);
            let mut a = Attempt::start(&rel, last.as_ref());
            assert_eq!(a.state, State::Downloading);
            assert_eq!(
                decide(Some(3), &rel, Some(&a)),
                Decision::Ignore("revision 4 is already being installed".into())
            );
            let delay = a.fail(Fault::Transient, "download: timed out", &retry, 1.0);
            last = Some(a);
            match delay {
                Some(d) => delays.push(d),
                None => break,
            }
        }
        assert_eq!(delays, vec![Duration::from_secs(1), Duration::from_secs(2)]);
        let last = last.unwrap();
        assert_eq!(last.state, State::Failed);
        assert!(last.gave_up);
        assert_eq!(last.failures, 3);
        assert_eq!(
            last.detail,
            "download: timed out (try 3 of 3; waiting for a new release)"
        );
        assert_eq!(
            decide(Some(3), &rel, Some(&last)),
            Decision::Ignore(
                "revision 4 failed: download: timed out (try 3 of 3; waiting for a new release)"
                    .into()
            )
        );
        // A new release (other bytes) starts afresh.
        let next = release(4, SHA_B, false);
        assert_eq!(decide(Some(3), &next, Some(&last)), Decision::Install);
        assert_eq!(Attempt::start(&next, Some(&last)).failures, 0);
    }

    #[test]
    fn a_permanent_fault_rejects_at_once() {
        let rel = release(4, SHA_A, false);
        let mut a = Attempt::start(&rel, None);
        a.set(State::Verifying, "checking the signature");
        let delay = a.fail(
            Fault::Permanent,
            "bundle: signature not from a trusted key",
            &Retry::default(),
            0.3,
        );
        assert_eq!(delay, None);
        assert_eq!(a.state, State::Rejected);
        assert_eq!(a.detail, "bundle: signature not from a trusted key");
        assert_eq!(
            decide(Some(3), &rel, Some(&a)),
            Decision::Ignore(
                "revision 4 was rejected: bundle: signature not from a trusted key".into()
            )
        );
    }

    #[test]
    fn a_failure_says_when_it_is_retried() {
        let mut a = Attempt::start(&release(4, SHA_A, false), None);
        let d = a.fail(
            Fault::Unavailable,
            "download: HTTP 404 Not Found from http://h/x.tar",
            &Retry::default(),
            1.0,
        );
        assert_eq!(d, Some(Duration::from_secs(600)));
        assert_eq!(
            a.detail,
            "download: HTTP 404 Not Found from http://h/x.tar (try 1 of 8, next in 600 s)"
        );
        let mut a = Attempt::start(&release(4, SHA_A, false), None);
        a.fail(Fault::Transient, "x", &Retry::default(), 0.0);
        assert_eq!(a.detail, "x (try 1 of 8, next in 2.5 s)");
    }

    #[test]
    fn progress_is_only_reported_while_downloading() {
        let mut a = Attempt::start(&release(4, SHA_A, false), None);
        assert_eq!(a.status(Some(0.5)).progress, Some(0.5));
        a.set(State::Active, "serving revision 4");
        assert_eq!(a.status(Some(0.5)).progress, None);
        assert!(!State::Active.in_progress() && State::Verifying.in_progress());
    }
}
