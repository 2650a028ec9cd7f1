//! `hallmark models`: the local model store and bundle folders.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::bundle::{Bundle, TrustedKeys};
use crate::config::Config;
use crate::store::Store;

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

pub fn run(command: ModelsCommand, config: &Config) -> anyhow::Result<ExitCode> {
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
