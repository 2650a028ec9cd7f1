//! `hallmark publish`: sign a bundle, pack it, check it as a device will, and announce the release.
//! Reads only the broker and the bundle limit from the configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use sha2::{Digest, Sha256};

use crate::bundle::{Bundle, Manifest, SigningKeyFile};
use crate::config::Operator;
use crate::fleet;

/// How long `publish` waits for the broker's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// The publisher's private key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Where DIR is served; the release's url is URL/<file>.
    #[arg(long, value_name = "URL")]
    pub url_base: String,
    /// Folder the .tar is written to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Announce to this device only (`{prefix}/things/THING/models/{brand}`).
    #[arg(long, value_name = "THING")]
    pub thing: Option<String>,
    /// The MQTT broker to announce on (without it the release is only printed); TLS and a client
    /// certificate come from mqtt.ca, mqtt.cert and mqtt.key as for the agent.
    #[arg(long, value_name = "HOST:PORT")]
    pub broker: Option<String>,
    /// Topic prefix (default: mqtt.prefix).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Ask devices to go back to this (lower) revision, with a rollback statement signed by KEY
    /// (devices refuse a rollback without one). Needs --supersedes.
    #[arg(long, requires = "supersedes")]
    pub rollback: bool,
    /// With --rollback: the highest revision the rollback withdraws (normally the one devices run
    /// now). Devices that have run anything above it refuse the statement, and after it no release
    /// without a statement brings back a revision up to it.
    #[arg(long, value_name = "REV", requires = "rollback")]
    pub supersedes: Option<u64>,
}

pub fn run(args: &PublishArgs, operator: &Operator) -> anyhow::Result<ExitCode> {
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| operator.broker.prefix.clone());
    let port = args
        .broker
        .as_deref()
        .and_then(|b| fleet::parse_broker(b).ok())
        .map_or(0, |(_, port)| port);
    let tls = operator_tls(operator, port)?;
    publish(&Publish {
        bundle: &args.bundle,
        key: &args.key,
        url_base: &args.url_base,
        out: &args.out,
        thing: args.thing.as_deref(),
        broker: args.broker.as_deref(),
        prefix: &prefix,
        rollback: args.supersedes.filter(|_| args.rollback),
        tls,
        max_bytes: operator.max_bundle_bytes,
    })
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
pub(super) fn operator_tls(operator: &Operator, port: u16) -> anyhow::Result<fleet::publish::Tls> {
    let Some(ca) = &operator.broker.ca else {
        return Ok(None);
    };
    let files = crate::delivery::tls::TlsFiles {
        ca,
        client: operator
            .broker
            .cert
            .as_deref()
            .zip(operator.broker.key.as_deref()),
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
            created: Some(hallmark_core::clock::rfc3339_utc(
                std::time::SystemTime::now(),
            )),
        };
        release.statement = Some(crate::update::rollback::sign(&key, &document));
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
