//! The updater: fleet releases → a new model serving, between two frames, or a status saying why not.
//!
//! It runs on its own thread, so detection never waits for it:
//! release (MQTT) → [`decide`] → download (resumable, size-limited, SHA-256) → install into the store
//! (archive checks, Ed25519 signature, model digest) → build the detector from the verified bytes →
//! self-test → hand it to the inference loop, which swaps it in between two frames → the store's
//! active pointer moves (atomically) → status `active`. Any failure leaves the serving model as it
//! is and ends in `failed` (retried with backoff, then given up) or `rejected` (never retried for the
//! same bytes), with its cause. A model that fails at run time after the swap is swapped back by the
//! inference loop at once; the updater then rolls the store back and reports `rolled_back`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bundle::{Bundle, Manifest, TrustedKeys};
use crate::config::Config;
use crate::delivery::{Inbound, Publisher};
use crate::detector::{Detector, InputShape};
use crate::observe::Observer;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::store::Store;
use crate::update::{
    decide, Attempt, Decision, Downloader, Fault, Floor, Grant, Release, Releases, Retry, State,
    Status, Timeouts,
};

use super::selftest;

/// A model ready to serve, handed to the inference loop.
pub struct Swap {
    pub detector: Detector,
    /// The verified bundle (kept: the detector is rebuilt from it after an eviction); its brand is
    /// the manifest's.
    pub bundle: Bundle,
    pub manifest: Arc<Manifest>,
    /// The inference loop says whether it swapped (it refuses while it has no frames to judge with
    /// the old model… it never refuses today; the channel only confirms the moment).
    pub done: Sender<()>,
}

/// From the inference loop: the model swapped in failed at run time and was swapped back.
#[derive(Debug)]
pub struct RuntimeFault {
    pub brand: String,
    pub revision: u64,
    pub cause: String,
}

/// What the updater needs from the daemon.
pub struct Wiring {
    /// Release messages (newest per topic; closed at shutdown).
    pub releases: Arc<crate::update::Inbox>,
    pub faults: Receiver<RuntimeFault>,
    pub swaps: Sender<Swap>,
    pub publisher: Publisher,
    pub observer: Arc<Observer>,
    pub stop: Arc<AtomicBool>,
    /// The kiosk/conveyor screen's status ("updating northwind 40 %"), through the judge's link.
    pub screen: Sender<hallmark_host_link::link::Status>,
}

/// The controller screen's status for an update step: updating while it runs, idle when it ends.
pub fn screen_status(
    brand: &str,
    state: State,
    progress: Option<f64>,
) -> hallmark_host_link::link::Status {
    use hallmark_host_link::link::Status as Screen;
    if !state.in_progress() {
        return Screen::Idle;
    }
    let mut text = hallmark_link::Text::new();
    for c in brand.chars() {
        if text.push(c).is_err() {
            break;
        }
    }
    let percent = match state {
        State::Verifying | State::BuildingEngine => 100.0,
        _ => progress.unwrap_or(0.0) * 100.0,
    };
    Screen::ModelUpdating {
        brand: text,
        progress: hallmark_link::Progress(percent.clamp(0.0, 100.0) as u8),
    }
}

pub struct Updater {
    store: Store,
    trust: TrustedKeys,
    runtime_options: RuntimeOptions,
    runtime: Option<Runtime>,
    downloads: PathBuf,
    downloader: Option<Downloader>,
    prefix: String,
    thing: String,
    max_bundle: u64,
    keep: usize,
    timeouts: Timeouts,
    image_limits: crate::imageio::ImageLimits,
    /// The brands served and their revisions now.
    serving: BTreeMap<String, u64>,
    /// The served models' input (size and type): a new model must match to swap in place; each detector decodes its own output.
    shape: InputShape,
    releases: Releases,
    attempts: HashMap<String, Attempt>,
    /// Retries waiting, per brand: when, for which release.
    retry_at: HashMap<String, (Instant, Release)>,
    retry: Retry,
    w: Wiring,
}

impl Updater {
    pub fn new(
        config: &Config,
        store: Store,
        trust: TrustedKeys,
        serving: &BTreeMap<String, u64>,
        shape: InputShape,
        w: Wiring,
    ) -> Updater {
        // What serves now counts as run: a release alone cannot take the device below it.
        for (brand, &revision) in serving {
            if let Err(e) = store.observe(brand, revision) {
                tracing::error!(%brand, revision, error = %e, "cannot record the served revision in the store's anti-rollback state");
            }
        }
        Updater {
            store,
            trust,
            runtime_options: config.runtime.clone(),
            runtime: None,
            downloads: config.agent.state_dir.join("downloads"),
            downloader: None,
            prefix: config.mqtt.prefix.clone(),
            thing: config.agent.thing.clone(),
            max_bundle: config.updates.max_bundle_bytes,
            keep: config.updates.keep_revisions,
            timeouts: Timeouts {
                stall: config.updates.download_stall,
                min_rate: config.updates.download_min_rate,
                ..Timeouts::default()
            },
            image_limits: config.image,
            serving: serving.clone(),
            shape,
            releases: Releases::new(),
            attempts: HashMap::new(),
            retry_at: HashMap::new(),
            retry: Retry::default(),
            w,
        }
    }

    pub fn run(mut self) {
        lower_priority();
        loop {
            if self.w.stop.load(Ordering::Relaxed) {
                return;
            }
            while let Ok(fault) = self.w.faults.try_recv() {
                self.on_fault(fault);
            }
            let now = Instant::now();
            let due: Vec<Release> = self
                .retry_at
                .values()
                .filter(|(at, _)| now >= *at)
                .map(|(_, r)| r.clone())
                .collect();
            for release in due {
                self.retry_at.remove(&release.brand);
                self.consider(&release, true);
            }
            match self.w.releases.take(Duration::from_millis(200)) {
                Some(msg) => self.on_message(msg),
                None if self.w.releases.closed() => return,
                None => {}
            }
        }
    }

    fn status_topic(&self, brand: &str) -> String {
        self.w.publisher.topics().model_status(brand)
    }

    fn report(&self, brand: &str, status: &Status) {
        tracing::info!(brand, revision = status.revision, state = status.state.as_str(), detail = %status.detail, "model update");
        let _ = self
            .w
            .screen
            .send(screen_status(brand, status.state, status.progress));
        self.w
            .publisher
            .publish_retained(self.status_topic(brand), status.to_json());
    }

    fn on_message(&mut self, msg: Inbound) {
        let change = self.releases.on_message(
            &msg.topic,
            &msg.payload,
            &self.prefix,
            &self.thing,
            self.max_bundle,
        );
        match change {
            None => {}
            Some(Err(e)) => {
                // A malformed release names no revision it could be for; the brand comes from the topic.
                let brand = crate::update::topic_brand(&msg.topic, &self.prefix, &self.thing)
                    .map(|(_, b)| b)
                    .unwrap_or_default();
                tracing::warn!(topic = %msg.topic, error = %e, "release refused");
                if self.serving.contains_key(&brand) {
                    self.report(
                        &brand,
                        &Status {
                            revision: 0,
                            state: State::Rejected,
                            detail: e.to_string(),
                            progress: None,
                        },
                    );
                }
            }
            Some(Ok(change)) if self.serving.contains_key(&change.brand) => {
                if let Some(release) = self.releases.effective(&change.brand).cloned() {
                    self.consider(&release, false);
                }
            }
            Some(Ok(change)) => {
                tracing::debug!(brand = %change.brand, "release for a brand this device does not serve; ignored");
            }
        }
    }

    /// Acts on the effective release of a served brand.
    fn consider(&mut self, release: &Release, retrying: bool) {
        let last = self.attempts.get(&release.brand);
        if !retrying
            && self
                .retry_at
                .get(&release.brand)
                .is_some_and(|(_, r)| r == release)
        {
            // The same release again (a retained redelivery) while its retry waits: keep the schedule.
            return;
        }
        let serving = self.serving.get(&release.brand).copied();
        let guard = match self.store.guard(&release.brand) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(brand = %release.brand, error = %e, "cannot read the store's anti-rollback state");
                Default::default()
            }
        };
        let floor = Floor {
            highest: guard.highest.max(serving),
            withdrawn: guard.rollback.map(|r| r.supersedes),
        };
        // A carried statement is checked before anything is downloaded: its signature against the
        // trusted keys, its brand and revision against the release's, and that it supersedes all this
        // device has run (an older statement is not replayed).
        let grant = release.statement.as_ref().map(|s| {
            crate::update::rollback::verify(s, &self.trust, &release.brand, release.revision)
                .and_then(|g| {
                    g.check_device(serving, floor.highest, floor.withdrawn)
                        .map(|()| g)
                })
        });
        let signed = grant
            .as_ref()
            .map(|g| g.as_ref().map(|_| ()).map_err(ToString::to_string));
        match decide(serving, &floor, release, last, signed) {
            Decision::Ignore(why) => {
                tracing::info!(brand = %release.brand, revision = release.revision, %why, "release ignored");
            }
            Decision::Refuse(cause) => {
                tracing::warn!(brand = %release.brand, revision = release.revision, %cause, "release refused");
                self.retry_at.remove(&release.brand);
                let attempt = Attempt::start(release, last);
                self.attempts.insert(release.brand.clone(), attempt);
                self.fail(&release.brand, Fault::Permanent, cause, release);
            }
            Decision::ConfirmActive => {
                self.report(
                    &release.brand,
                    &Status {
                        revision: release.revision,
                        state: State::Active,
                        detail: format!(
                            "serving revision {} (found active in the store at start)",
                            release.revision
                        ),
                        progress: None,
                    },
                );
            }
            decision @ (Decision::Install | Decision::Rollback) => {
                self.retry_at.remove(&release.brand);
                let attempt = Attempt::start(release, last);
                self.attempts.insert(release.brand.clone(), attempt);
                let grant = match decision {
                    Decision::Rollback => grant.and_then(Result::ok),
                    _ => None,
                };
                self.install(release, grant);
            }
        }
    }

    fn attempt(&mut self, brand: &str) -> &mut Attempt {
        self.attempts
            .get_mut(brand)
            .expect("an attempt is started before it is used")
    }

    fn set(&mut self, brand: &str, state: State, detail: String, progress: Option<f64>) {
        let status = {
            let a = self.attempt(brand);
            a.set(state, detail);
            a.status(progress)
        };
        self.report(brand, &status);
    }

    fn fail(&mut self, brand: &str, fault: Fault, cause: String, release: &Release) {
        let unit = rand::random::<f64>();
        let retry = self.retry.clone();
        let (delay, status) = {
            let a = self.attempt(brand);
            let delay = a.fail(fault, &cause, &retry, unit);
            (delay, a.status(None))
        };
        self.report(brand, &status);
        if let Some(d) = delay {
            self.retry_at
                .insert(brand.to_string(), (Instant::now() + d, release.clone()));
        }
    }

    /// Download → install → load → self-test → swap → activate. `grant`: the signed rollback statement
    /// that lets this release go back (checked against the bundle that arrives, then recorded).
    fn install(&mut self, release: &Release, grant: Option<Grant>) {
        let brand = release.brand.clone();
        let started = Instant::now();
        self.set(
            &brand,
            State::Downloading,
            format!("revision {}", release.revision),
            Some(0.0),
        );
        let downloader = match self.downloader.take() {
            Some(d) => d,
            None => match Downloader::new(self.timeouts) {
                Ok(d) => d,
                Err(e) => {
                    return self.fail(&brand, e.fault(), e.cause(), release);
                }
            },
        };
        let mut last_report = Instant::now();
        let publisher = self.w.publisher.clone();
        let screen = self.w.screen.clone();
        let topic = self.status_topic(&brand);
        let revision = release.revision;
        let status_brand = brand.clone();
        let mut progress = |done: u64, total: u64| {
            // Design: the status topic is for people; one update a second is plenty.
            if last_report.elapsed() >= Duration::from_secs(1) && total > 0 {
                last_report = Instant::now();
                let status = Status {
                    revision,
                    state: State::Downloading,
                    detail: format!("{done} of {total} bytes"),
                    progress: Some(done as f64 / total as f64),
                };
                publisher.publish_retained(topic.clone(), status.to_json());
                let _ = screen.send(screen_status(
                    &status_brand,
                    State::Downloading,
                    status.progress,
                ));
            }
        };
        // Design: a newer message for this brand (or shutdown) interrupts the download at once; the
        // `.part` stays for a resume when the same release comes back.
        self.w.releases.installing(Some(&brand));
        let fetched = crate::update::stage(
            release,
            &downloader,
            &self.downloads,
            &mut progress,
            self.w.releases.interrupt(),
        );
        self.w.releases.installing(None);
        self.downloader = Some(downloader);
        let archive = match fetched {
            Ok(p) => p,
            Err(crate::update::DownloadError::Cancelled) if self.w.releases.closed() => return,
            Err(crate::update::DownloadError::Cancelled) => {
                tracing::info!(%brand, revision = release.revision, "download interrupted by a newer release message for this brand");
                return self.fail(
                    &brand,
                    Fault::Transient,
                    "interrupted by a newer release message for this brand".into(),
                    release,
                );
            }
            Err(e) => return self.fail(&brand, e.fault(), e.cause(), release),
        };
        self.set(
            &brand,
            State::Verifying,
            "signature, model digest, self-test".into(),
            None,
        );
        match self.install_archive(release, &archive, grant.as_ref()) {
            Ok(dir) => match self.verify_and_load(release, &dir) {
                Ok((detector, bundle, tested)) => {
                    self.swap_in(release, detector, bundle, &dir, tested, started, grant)
                }
                Err((fault, cause)) => {
                    if fault == Fault::Permanent {
                        // Installed, then refused: never a fallback for a broken active pointer.
                        if let Err(e) = self.store.refuse(&brand, release.revision) {
                            tracing::error!(error = %e, "cannot record a refused revision in the store");
                        }
                    }
                    self.fail(&brand, fault, cause, release)
                }
            },
            Err((fault, cause)) => self.fail(&brand, fault, cause, release),
        }
        let _ = crate::update::remove_stale(&self.downloads, &[]);
    }

    /// Installs the archive into the store (archive rules, signature, manifest, every file's digest),
    /// checks it is the release's brand and revision and, under a rollback statement, the very manifest
    /// the statement names; returns the revision's folder.
    fn install_archive(
        &mut self,
        release: &Release,
        archive: &std::path::Path,
        grant: Option<&Grant>,
    ) -> Result<PathBuf, (Fault, String)> {
        let rejected = |cause: String| (Fault::Permanent, cause);
        let installed = self
            .store
            .install(archive, &self.trust, self.max_bundle)
            .map_err(|e| rejected(e.to_string()))?;
        if installed.brand != release.brand || installed.revision != release.revision {
            return Err(rejected(format!(
                "the archive holds {} revision {}, the release announced {} revision {}",
                installed.brand, installed.revision, release.brand, release.revision
            )));
        }
        if let Some(g) = grant {
            let path = installed.dir.join("manifest.json");
            let manifest = std::fs::read(&path)
                .map_err(|e| (Fault::Transient, format!("{}: {e}", path.display())))?;
            g.check_manifest(&manifest)
                .map_err(|e| rejected(e.to_string()))?;
        }
        Ok(installed.dir)
    }

    /// Builds and self-tests the installed revision's detector. Nothing serves it yet.
    fn verify_and_load(
        &mut self,
        release: &Release,
        dir: &std::path::Path,
    ) -> Result<(Detector, Bundle, selftest::Outcome), (Fault, String)> {
        let rejected = |cause: String| (Fault::Permanent, cause);
        let options = &self.runtime_options;
        let bundle = Bundle::open(dir, &self.trust)
            .and_then(|b| b.select(&options.encoding, options.prefers_gpu()))
            .map_err(|e| rejected(e.to_string()))?;
        if self.runtime.is_none() {
            let mut runtime = Runtime::load(self.runtime_options.clone())
                .map_err(|e| (Fault::Transient, e.to_string()))?;
            runtime.report_engine_builds(crate::service::engine_building);
            self.runtime = Some(runtime);
        }
        let runtime = self.runtime.as_ref().expect("loaded above");
        // Design: the engine is built here, before the swap (Detector::load warms the model up), and
        // the status says so: `active` can be minutes away on a first build.
        let (publisher, topic) = (self.w.publisher.clone(), self.status_topic(&release.brand));
        let building = || {
            let status = Status {
                revision: release.revision,
                state: State::BuildingEngine,
                detail: "TensorRT engine (a first build takes minutes; then cached in the state directory)".into(),
                progress: None,
            };
            publisher.publish_retained(topic, status.to_json());
        };
        let mut detector = Detector::load(runtime, &bundle, building)
            .map_err(|e| rejected(format!("the model does not load: {e}")))?;
        let shape = detector.input_shape();
        if shape != self.shape {
            return Err(rejected(format!(
                "the model's input ({shape}) differs from the serving models' ({}); a restart takes it",
                self.shape
            )));
        }
        let manifest = Arc::new(bundle.manifest().clone());
        let tested =
            selftest::run(dir, &mut detector, &manifest, self.image_limits).map_err(rejected)?;
        Ok((detector, bundle, tested))
    }

    #[allow(clippy::too_many_arguments)]
    fn swap_in(
        &mut self,
        release: &Release,
        detector: Detector,
        bundle: Bundle,
        dir: &std::path::Path,
        tested: selftest::Outcome,
        started: Instant,
        grant: Option<Grant>,
    ) {
        let brand = release.brand.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if self
            .w
            .swaps
            .send(Swap {
                detector,
                manifest: Arc::new(bundle.manifest().clone()),
                bundle,
                done: done_tx,
            })
            .is_err()
            || done_rx.recv_timeout(Duration::from_secs(30)).is_err()
        {
            // The daemon is stopping: nothing changed.
            return self.fail(
                &brand,
                Fault::Transient,
                "the agent is stopping".into(),
                release,
            );
        }
        let was = self
            .serving
            .insert(brand.clone(), release.revision)
            .unwrap_or_default();
        // Design: the pointer moves after the swap; a crash in between restarts on the old revision,
        // which is consistent, and the retained release then installs the new one again. A signed
        // rollback is recorded with it: what it withdraws no release alone brings back.
        let activated = match &grant {
            Some(g) => self
                .store
                .activate_rollback(&brand, release.revision, g.supersedes),
            None => self.store.activate(&brand, release.revision),
        };
        if let Err(e) = activated {
            tracing::error!(error = %e, "the store's active pointer could not be moved; the new model serves until a restart");
        }
        if let Ok(pruned) = self.store.prune(&brand, self.keep) {
            if !pruned.is_empty() {
                tracing::info!(brand = %brand, ?pruned, "older revisions removed");
            }
        }
        self.w.observer.model_loaded(&brand, release.revision);
        self.w.publisher.set_models(self.serving.clone());
        let test = match tested {
            selftest::Outcome::Passed(n) => format!("self-test passed ({n} images)"),
            selftest::Outcome::Absent => "no self-test in the bundle".into(),
        };
        let signed = grant.map_or_else(String::new, |g| {
            format!(
                "; rolled back under a rollback statement signed by {} (withdraws revisions up to {})",
                g.signer.display(),
                g.supersedes
            )
        });
        self.set(
            &brand,
            State::Active,
            format!(
                "serving revision {} (was {was}){signed}; {test}; {} ms from release to active; {}",
                release.revision,
                started.elapsed().as_millis(),
                dir.display()
            ),
            None,
        );
    }

    fn on_fault(&mut self, fault: RuntimeFault) {
        tracing::error!(brand = %fault.brand, revision = fault.revision, cause = %fault.cause, "the new model failed while serving; rolled back");
        let failed = self
            .serving
            .get(&fault.brand)
            .copied()
            .unwrap_or(fault.revision);
        let back_to = match self.store.rollback(&fault.brand) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "store rollback failed");
                failed
            }
        };
        self.serving.insert(fault.brand.clone(), back_to);
        self.w.observer.model_loaded(&fault.brand, back_to);
        self.w.publisher.set_models(self.serving.clone());
        let status = Status {
            revision: failed,
            state: State::RolledBack,
            detail: format!(
                "revision {failed} failed while serving ({}); back to {back_to}",
                fault.cause
            ),
            progress: None,
        };
        if let Some(a) = self.attempts.get_mut(&fault.brand) {
            a.set(State::RolledBack, status.detail.clone());
        }
        self.report(&fault.brand, &status);
    }
}

/// Design: unpacking, hashing, graph optimisation and the self-test of a new model share the cores
/// with live inference; at a lower priority they take what inference leaves, so an update does not
/// make a camera drop frames. (Sessions run on the runtime's shared pool, whose threads keep their
/// priority: only this thread's own work is demoted.)
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on this thread's own id.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 10)
        };
        if rc != 0 {
            tracing::debug!("could not lower the updater's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hallmark_host_link::link::Status as Screen;

    #[test]
    fn the_screen_says_updating_while_an_update_runs_and_idle_when_it_ends() {
        match screen_status("northwind", State::Downloading, Some(0.42)) {
            Screen::ModelUpdating { brand, progress } => {
                assert_eq!((brand.as_str(), progress.0), ("northwind", 42));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            screen_status("a-brand-name-longer-than-the-screen-has-room-for-at-all", State::Verifying, None),
            Screen::ModelUpdating { progress, .. } if progress.0 == 100
        ));
        for end in [
            State::Active,
            State::Failed,
            State::Rejected,
            State::RolledBack,
        ] {
            assert_eq!(screen_status("northwind", end, None), Screen::Idle);
        }
    }
}
