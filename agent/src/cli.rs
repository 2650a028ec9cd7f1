//! The command line (`hallmark --help`): parses arguments, builds the typed configuration and calls
//! the component for each command. Errors leave here as `anyhow` with context; `main` prints them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::bundle::{generate_signing_key, Bundle, Manifest, SigningKeyFile, TrustedKeys};
use crate::config::{project_path, Config, LogFormat};
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::{bench, fleet, logging, scan};
use sha2::{Digest, Sha256};

/// Hallmark: decides whether the product in front of a camera is genuine or counterfeit.
#[derive(Debug, Parser)]
#[command(name = "hallmark", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (TOML); every key has a default and a HALLMARK_<SECTION>_<KEY> override.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ONNX Runtime shared library (default: runtime.ort_lib, then ORT_DYLIB_PATH, then .venv).
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads for inference (default: runtime.intra_threads, else the physical cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Run this variant of each bundle, or per brand (`northwind=quarter-turns,aurora=fast-224`; a brand
    /// not named runs its main model) (default: model.variant, else the main model).
    #[arg(long, global = true, value_name = "NAME")]
    pub variant: Option<String>,
    /// auto, fp32, fp16 or int8 (default: model.precision, else auto).
    #[arg(long, global = true, value_name = "PRECISION")]
    pub precision: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The agent daemon: capture (camera or replay) → detector → one verdict per item → stdout, evidence,
    /// the kiosk controller. With no config: the demo bundle on a replay of its sample images, kiosk mode.
    /// Stops on SIGINT/SIGTERM (finishing the frames in flight) or when a non-looping replay ends.
    Run,
    /// Detect and judge products in image files or folders; one JSON object per image on stdout.
    Scan {
        /// Model bundle folder (default: model.bundle, i.e. the shipped demo bundle models/northwind).
        /// Repeat for several brands: each image goes to the brand whose GS1 prefix a barcode in it
        /// carries, else to the first.
        #[arg(long, value_name = "BUNDLE")]
        model: Vec<PathBuf>,
        /// Write a copy of each image with boxes, labels and the verdict drawn on it into DIR.
        #[arg(long, value_name = "DIR")]
        annotate: Option<PathBuf>,
        /// Image files or folders (JPEG, PNG, WebP).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Per-stage medians, and the whole pipeline against a bare ONNX Runtime run, side by side.
    Bench {
        /// Model bundle folder (default: model.bundle).
        #[arg(long, value_name = "BUNDLE")]
        model: Option<PathBuf>,
        /// Folder of images (default: models/samples/<brand>).
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Timed rounds.
        #[arg(long, default_value_t = 200, value_name = "N")]
        iterations: usize,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Instead: run the whole daemon for SECONDS on a preloaded, unthrottled replay of the images
        /// and compare its frames per second with a bare ONNX Runtime run in the same process.
        #[arg(long, value_name = "SECONDS")]
        daemon: Option<f64>,
    },
    /// The local model store (agent.state_dir/models), and bundle folders.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Make a publisher key pair: publisher.key.pem (PKCS#8, mode 0600) and publisher.pub.pem (SPKI,
    /// what agents list in trust.public_keys). Refuses to overwrite.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Sign a bundle with KEY, pack it as DIR/<brand>-<revision>.tar and announce the release
    /// (retained, QoS 1) on the fleet topic, or on one device's topic with --thing (a canary).
    /// Without --broker the release JSON is printed only.
    Publish {
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
        /// The publisher's private key (PKCS#8 PEM).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Where DIR is served; the release's url is URL/<file>.
        #[arg(long, value_name = "URL")]
        url_base: String,
        /// Folder the .tar is written to.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Announce to this device only (`{prefix}/things/THING/models/{brand}`).
        #[arg(long, value_name = "THING")]
        thing: Option<String>,
        /// The MQTT broker to announce on (without it the release is only printed); TLS and a client
        /// certificate come from mqtt.ca, mqtt.cert and mqtt.key as for the agent.
        #[arg(long, value_name = "HOST:PORT")]
        broker: Option<String>,
        /// Topic prefix (default: mqtt.prefix).
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Ask devices to go back to this (lower) revision, with a rollback statement signed by KEY
        /// (devices refuse a rollback without one). Needs --supersedes.
        #[arg(long, requires = "supersedes")]
        rollback: bool,
        /// With --rollback: the highest revision the rollback withdraws (normally the one devices run
        /// now). Devices that have run anything above it refuse the statement, and after it no release
        /// without a statement brings back a revision up to it.
        #[arg(long, value_name = "REV", requires = "rollback")]
        supersedes: Option<u64>,
    },
    /// The fleet as seen on the broker.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// What a device was unsure of, for labelling and the brand's next upload.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Counterfeit and inconclusive verdicts whose evidence pictures are still in STATE/evidence/, as a
    /// COCO dataset (OUT/annotations.json, OUT/images/) pre-labelled with the model's boxes. Events come
    /// from STATE/spool.redb (stop the agent first) and from --events files (JSON lines, as `hallmark run`
    /// prints them or the fleet's store keeps them).
    Export {
        /// The agent's state folder (default: agent.state_dir).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Verdict events, JSON lines (repeat for several files).
        #[arg(long, value_name = "FILE")]
        events: Vec<PathBuf>,
        /// Where the dataset is written.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Each device: online, the revision active per brand, the last update state and its cause, and
    /// whether it is BEHIND the release meant for it.
    Status {
        /// The MQTT broker (default: mqtt.host:mqtt.port); TLS from mqtt.ca, mqtt.cert, mqtt.key.
        #[arg(long, value_name = "HOST:PORT")]
        broker: Option<String>,
        /// Topic prefix (default: mqtt.prefix).
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// How long to collect the retained messages, in milliseconds.
        #[arg(long, default_value_t = 1500, value_name = "MS")]
        wait_ms: u64,
        /// Print the view as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Check bundles' signature, manifest and model digest; with --store, every brand's active
    /// revision in the store.
    Verify {
        #[arg(required_unless_present = "store", value_name = "BUNDLE")]
        bundles: Vec<PathBuf>,
        #[arg(long)]
        store: bool,
    },
    /// List the store (brand, revisions, active, previous), or with DIR the bundle folders in DIR.
    List {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Verify a bundle folder or .tar against the trusted keys and install it into the store.
    Install {
        #[arg(value_name = "BUNDLE_OR_TAR")]
        source: PathBuf,
        /// Also make it the active revision of its brand.
        #[arg(long)]
        activate: bool,
    },
    /// Make the previous revision of BRAND active again.
    Rollback {
        #[arg(value_name = "BRAND")]
        brand: String,
    },
}

/// How long `publish` waits for the broker's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load_env(cli.global.config.as_deref())?;
    if let Some(lib) = cli.global.ort_lib {
        config.runtime.ort_lib = Some(lib);
    }
    if let Some(n) = cli.global.threads {
        config.runtime.intra_threads = Some(n).filter(|&n| n > 0);
    }
    if let Some(v) = cli.global.variant {
        config.runtime.encoding.variant = Some(v).filter(|v| !v.is_empty());
    }
    if let Some(p) = cli.global.precision {
        config.runtime.encoding.precision = p
            .parse()
            .map_err(|m: String| anyhow::anyhow!("--precision: {m}"))?;
    }
    // The daemon logs as configured (JSON for a log pipeline); one-shot commands keep text.
    match cli.command {
        Command::Run => logging::init(config.log.format, logging::DAEMON_FILTER),
        _ => logging::init(LogFormat::Text, logging::COMMAND_FILTER),
    }
    match cli.command {
        Command::Run => {
            let summary = crate::daemon::run(config, shutdown_signal())?;
            eprintln!(
                "hallmark: run ended: {} frames, {} verdicts ({} counterfeit), {} frames dropped, {} skipped",
                summary.frames, summary.verdicts, summary.counterfeit, summary.dropped, summary.skipped
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            model,
            annotate,
            paths,
        } => {
            let bundles = if model.is_empty() {
                vec![config.bundle().to_path_buf()]
            } else {
                model
            };
            let mut pipelines = bundles
                .iter()
                .map(|b| Pipeline::open(config.runtime.clone(), b, &config.public_keys))
                .collect::<Result<Vec<_>, _>>()?;
            let inputs = scan::collect_inputs(&paths)?;
            let stdout = std::io::stdout();
            let summary = scan::scan(
                &mut pipelines,
                &inputs,
                config.image,
                annotate.as_deref(),
                &mut stdout.lock(),
            )?;
            if summary.failed > 0 {
                eprintln!(
                    "hallmark: {} of {} images could not be scanned",
                    summary.failed,
                    summary.failed + summary.scanned
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            model,
            images,
            iterations,
            json,
            daemon,
        } => {
            let bundle = model.unwrap_or_else(|| config.bundle().to_path_buf());
            if let Some(seconds) = daemon {
                config.bundles = vec![bundle];
                let brand = crate::bundle::Bundle::open(
                    config.bundle(),
                    &TrustedKeys::from_pem_files(&config.public_keys)?,
                )?
                .manifest()
                .brand
                .clone();
                let dir =
                    images.unwrap_or_else(|| project_path(&format!("models/samples/{brand}")));
                let report = crate::bench_daemon::run(&config, &dir, seconds)?;
                let mut out = std::io::stdout().lock();
                if json {
                    writeln!(out, "{}", serde_json::to_string(&report)?)?;
                } else {
                    writeln!(out, "{}", report.human())?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut pipeline =
                Pipeline::open(config.runtime.clone(), &bundle, &config.public_keys)?;
            let dir = images.unwrap_or_else(|| {
                project_path(&format!("models/samples/{}", pipeline.manifest().brand))
            });
            if !dir.is_dir() {
                bail!(
                    "image folder {} does not exist (give --images DIR)",
                    dir.display()
                );
            }
            let files = scan::collect_inputs(std::slice::from_ref(&dir))?;
            let report = bench::run(&mut pipeline, &files, iterations, config.image)?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                writeln!(out, "{}", report.human())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { command } => models(command, &config),
        Command::Keygen { out } => keygen(&out),
        Command::Evidence {
            command: EvidenceCommand::Export { state, events, out },
        } => {
            let state = state.unwrap_or_else(|| config.agent.state_dir.clone());
            let s = crate::evidence_export::export(&state, &events, &out)?;
            println!(
                "{}: {} images ({} raw frames) from {} counterfeit and inconclusive verdicts; {} named a picture no longer there, {} unreadable",
                out.display(),
                s.images,
                s.raw_frames,
                s.events,
                s.no_picture,
                s.unreadable
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish {
            bundle,
            key,
            url_base,
            out,
            thing,
            broker,
            prefix,
            rollback,
            supersedes,
        } => {
            let prefix = prefix.unwrap_or_else(|| config.mqtt.prefix.clone());
            let port = broker
                .as_deref()
                .and_then(|b| fleet::parse_broker(b).ok())
                .map_or(0, |(_, port)| port);
            let tls = operator_tls(&config, port)?;
            publish(&Publish {
                bundle: &bundle,
                key: &key,
                url_base: &url_base,
                out: &out,
                thing: thing.as_deref(),
                broker: broker.as_deref(),
                prefix: &prefix,
                rollback: supersedes.filter(|_| rollback),
                tls,
                max_bytes: config.updates.max_bundle_bytes,
            })
        }
        Command::Fleet {
            command:
                FleetCommand::Status {
                    broker,
                    prefix,
                    wait_ms,
                    json,
                },
        } => {
            let broker =
                broker.unwrap_or_else(|| format!("{}:{}", config.mqtt.host, config.mqtt.port));
            let (host, port) = fleet::parse_broker(&broker).map_err(anyhow::Error::msg)?;
            let prefix = prefix.unwrap_or_else(|| config.mqtt.prefix.clone());
            let messages = fleet::publish::collect(
                &host,
                port,
                &fleet::status::filters(&prefix),
                Duration::from_millis(wait_ms),
                Duration::from_secs(10),
                &operator_tls(&config, port)?,
                fleet::status::MAX_PAYLOAD,
            )?;
            let view = fleet::status::build(&prefix, &messages);
            for skipped in &view.skipped {
                eprintln!("hallmark: fleet status: {skipped}");
            }
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&view)?)?;
            } else {
                write!(out, "{}", fleet::status::table(&view))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::OpenOptionsExt;
    let private = out.join("publisher.key.pem");
    let public = out.join("publisher.pub.pem");
    for p in [&private, &public] {
        if p.exists() {
            bail!("{} already exists; not overwriting a key", p.display());
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let key = generate_signing_key();
    let write = |path: &Path, text: &str, mode: u32| -> anyhow::Result<()> {
        // create_new: a file that appeared meanwhile is still never overwritten.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        Ok(())
    };
    write(&private, &key.private_pem()?, 0o600)?;
    write(&public, &key.public_pem()?, 0o644)?;
    println!("{}\n{}", private.display(), public.display());
    Ok(ExitCode::SUCCESS)
}

struct Publish<'a> {
    bundle: &'a Path,
    key: &'a Path,
    url_base: &'a str,
    out: &'a Path,
    thing: Option<&'a str>,
    broker: Option<&'a str>,
    prefix: &'a str,
    /// A rollback: the highest revision it supersedes.
    rollback: Option<u64>,
    tls: fleet::publish::Tls,
    /// The configured bundle limit (`model.max_bundle_mib`): what devices accept.
    max_bytes: u64,
}

/// TLS for `publish` and `fleet status` from the configuration's `mqtt.ca` (+ `cert`/`key`), as the
/// agent connects: a fleet operator reaches AWS IoT Core the same way a device does.
fn operator_tls(config: &Config, port: u16) -> anyhow::Result<fleet::publish::Tls> {
    let Some(ca) = &config.mqtt.ca else {
        return Ok(None);
    };
    let files = crate::delivery::tls::TlsFiles {
        ca,
        client: config.mqtt.cert.as_deref().zip(config.mqtt.key.as_deref()),
        alpn_443: port == 443,
    };
    Ok(Some(crate::delivery::tls::client_config(&files)?))
}

fn publish(p: &Publish<'_>) -> anyhow::Result<ExitCode> {
    let key = SigningKeyFile::from_pem_file(p.key)?;
    let manifest_path = p.bundle.join("manifest.json");
    let manifest_bytes = std::fs::read(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = Manifest::parse(&manifest_bytes)
        .with_context(|| format!("{} is not a valid manifest", manifest_path.display()))?;
    let broker = p
        .broker
        .map(fleet::parse_broker)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let Some(supersedes) = p.rollback.filter(|&s| s <= manifest.revision) {
        bail!(
            "--supersedes {supersedes}: a rollback to revision {} withdraws revisions above it",
            manifest.revision
        );
    }
    let sig = key.sign_manifest(&manifest_bytes);
    std::fs::create_dir_all(p.out).with_context(|| format!("cannot create {}", p.out.display()))?;
    let name = format!("{}-{}.tar", manifest.brand, manifest.revision);
    let tar = p.out.join(&name);
    let tmp = p.out.join(format!(".{name}.tmp"));
    crate::store::archive::pack(
        p.bundle,
        &tmp,
        &[("manifest.sig", sig.as_bytes())],
        p.max_bytes,
    )
    .with_context(|| format!("cannot pack {}", p.bundle.display()))?;
    // Design: check the archive the way a device will (unpack, signature with the new key, model
    // digest) before announcing it: a release every device would reject is caught here.
    let check = p
        .out
        .join(format!(".check-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir(&check)?;
    let checked = crate::store::archive::unpack(&tmp, &check, p.max_bytes)
        .map_err(anyhow::Error::from)
        .and_then(|()| Bundle::open(&check, &key.trusted()).map_err(anyhow::Error::from));
    let _ = std::fs::remove_dir_all(&check);
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!(
            "the packed bundle {} does not verify",
            p.bundle.display()
        )));
    }
    std::fs::rename(&tmp, &tar).with_context(|| format!("cannot write {}", tar.display()))?;
    let bytes = std::fs::read(&tar)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let mut release = fleet::Release::new(
        &manifest.brand,
        manifest.revision,
        p.url_base,
        &name,
        &sha256,
        bytes.len() as u64,
        p.rollback.is_some(),
    );
    if let Some(supersedes) = p.rollback {
        // Signed with the key that signs the bundle: devices trust it through the same keys.
        let document = crate::update::rollback::Document {
            schema: crate::update::rollback::SCHEMA.to_string(),
            brand: manifest.brand.clone(),
            revision: manifest.revision,
            manifest_sha256: hex::encode(Sha256::digest(&manifest_bytes)),
            supersedes,
            created: Some(crate::clock::rfc3339_utc(std::time::SystemTime::now())),
        };
        release.rollback_statement = Some(crate::update::Statement::sign(&key, &document));
    }
    let json = serde_json::to_string(&release)?;
    println!("{json}");
    if let Some((host, port)) = broker {
        let topic = match p.thing {
            Some(thing) => fleet::thing_topic(p.prefix, thing, &manifest.brand),
            None => fleet::fleet_topic(p.prefix, &manifest.brand),
        };
        fleet::publish::publish(
            &host,
            port,
            &topic,
            json.as_bytes(),
            true,
            PUBLISH_TIMEOUT,
            &p.tls,
        )?;
        eprintln!(
            "hallmark: published {name} (revision {}) to {topic}",
            manifest.revision
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn models(command: ModelsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let trust = TrustedKeys::from_pem_files(&config.public_keys)?;
    let mut out = std::io::stdout().lock();
    match command {
        ModelsCommand::Verify { bundles, store } => {
            let mut failed = 0;
            if store {
                let store = Store::open(&store_root(config))?;
                let entries = store.list()?;
                for e in entries.iter().filter(|e| e.active.is_some()) {
                    match store.verify(&e.brand, &trust) {
                        Ok(i) => writeln!(
                            out,
                            "ok {} brand={} revision={} active",
                            i.dir.display(),
                            i.brand,
                            i.revision
                        )?,
                        Err(e) => {
                            failed += 1;
                            eprintln!("hallmark: {e}");
                        }
                    }
                }
                if !entries.iter().any(|e| e.active.is_some()) {
                    eprintln!(
                        "hallmark: no active revision in the store {}",
                        store.root().display()
                    );
                }
            }
            for dir in &bundles {
                match Bundle::open(dir, &trust) {
                    Ok(b) => {
                        let m = b.manifest();
                        let variants: Vec<&str> =
                            m.variants.iter().map(|v| v.name.as_str()).collect();
                        writeln!(
                            out,
                            "ok {} brand={} revision={} signed-by={}{}",
                            dir.display(),
                            m.brand,
                            m.revision,
                            b.signer().display(),
                            if variants.is_empty() {
                                String::new()
                            } else {
                                format!(" variants={}", variants.join(","))
                            }
                        )?;
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("hallmark: {e}");
                    }
                }
            }
            Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        ModelsCommand::List { dir: None } => {
            let store = Store::open(&store_root(config))?;
            writeln!(out, "BRAND\tACTIVE\tPREVIOUS\tREVISIONS")?;
            let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            for e in store.list()? {
                let revs: Vec<String> = e.revisions.iter().map(u64::to_string).collect();
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    e.brand,
                    opt(e.active),
                    opt(e.previous),
                    revs.join(",")
                )?;
            }
            // The provider each brand really runs on, as the agent on this state folder recorded it.
            let serving = config.agent.state_dir.join("serving.json");
            if let Some(s) = crate::observe::serving::Serving::read(&serving) {
                writeln!(out, "{}", s.describe(crate::observe::serving::alive(s.pid)))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Install { source, activate } => {
            let store = Store::open(&store_root(config))?;
            // Design: one limit for every way a bundle arrives: an operator's install is held to what
            // a release may carry (`model.max_bundle_mib`), so a bundle a device would refuse over MQTT
            // is not taken by hand either.
            let i = store.install(&source, &trust, config.updates.max_bundle_bytes)?;
            if activate {
                store.activate(&i.brand, i.revision)?;
            }
            writeln!(
                out,
                "installed {} revision {} in {}{}",
                i.brand,
                i.revision,
                i.dir.display(),
                if activate { " (active)" } else { "" }
            )?;
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Rollback { brand } => {
            let store = Store::open(&store_root(config))?;
            let from = store.active(&brand)?;
            let to = store.rollback(&brand)?;
            let from = from.map_or_else(|| "-".to_string(), |v| v.to_string());
            writeln!(out, "{brand}: rolled back from revision {from} to {to}")?;
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::List { dir: Some(dir) } => {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("manifest.json").is_file())
                .collect();
            entries.sort();
            for p in entries {
                match Bundle::open(&p, &trust) {
                    Ok(b) => writeln!(
                        out,
                        "{}\t{}\trevision {}\tverified",
                        p.display(),
                        b.manifest().brand,
                        b.manifest().revision
                    )?,
                    Err(e) => writeln!(out, "{}\t-\t-\tINVALID: {e}", p.display())?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The model store's folder.
fn store_root(config: &Config) -> PathBuf {
    config.agent.state_dir.join("models")
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

/// An error and its causes on one line, each said once. The library's errors put their cause in their
/// own message ("model bundle x: {source}") and keep it as their source too, so anyhow's `{:#}` said it
/// twice; a cause whose text the line already holds is left out.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod one_line_tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("has no variant \"fast\"")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("model bundle b: {source}")]
    struct Outer {
        source: Inner,
    }

    #[test]
    fn a_cause_already_in_its_errors_message_is_said_once_and_context_is_kept() {
        let e = anyhow::Error::new(Outer { source: Inner });
        assert_eq!(one_line(&e), "model bundle b: has no variant \"fast\"");
        let e = e.context("scanning x");
        assert_eq!(
            one_line(&e),
            "scanning x: model bundle b: has no variant \"fast\""
        );
        let plain = anyhow::anyhow!("io failed").context("reading y");
        assert_eq!(one_line(&plain), "reading y: io failed");
    }
}
