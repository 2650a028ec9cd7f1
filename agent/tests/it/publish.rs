//! Publishing for the fleet: `hallmark keygen`, `hallmark publish` (sign, pack, announce) and
//! `hallmark fleet status`, as an operator runs them, against a real mosquitto.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{demo_public_key, repo, wait_until, Broker, Subscriber};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn hallmark() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hallmark"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("HALLMARK_") || k == "AWS_IOT_THING_NAME" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(repo());
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn northwind() -> PathBuf {
    repo().join("models/northwind")
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    ok(hallmark()
        .args(["keygen", "--out"])
        .arg(dir)
        .output()
        .unwrap());
    (dir.join("publisher.key.pem"), dir.join("publisher.pub.pem"))
}

/// `hallmark publish` of the shipped bundle; returns the release it printed.
fn publish(key: &Path, out: &Path, extra: &[&str]) -> Value {
    let stdout = ok(hallmark()
        .arg("publish")
        .arg(northwind())
        .arg("--key")
        .arg(key)
        .args(["--url-base", "http://127.0.0.1:8000/models/"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap());
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn extract(tar: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    hallmark_agent::store::archive::unpack(tar, into, 64 << 20).unwrap();
}

fn verify_with(key: &Path, bundle: &Path) -> Output {
    hallmark()
        .args(["models", "verify"])
        .arg(bundle)
        .env("HALLMARK_TRUST_PUBLIC_KEYS", key)
        .output()
        .unwrap()
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (private, public) = keygen(tmp.path());
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&private)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(std::fs::read_to_string(&public)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let before = std::fs::read(&private).unwrap();
    let out = hallmark()
        .args(["keygen", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&private).unwrap(), before);
}

/// Runs `openssl` with `args`; its stdout, or a panic with its stderr.
fn openssl(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl on PATH");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// An operator keeps the key in their own tooling: OpenSSL 3 and Python `cryptography` read what
/// `hallmark keygen` writes (PKCS#8 v1 and SPKI, as `openssl genpkey` writes them), and the public key
/// OpenSSL derives from the private one is the one keygen wrote.
#[test]
fn keygen_writes_keys_that_openssl_and_python_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, public) = keygen(tmp.path());
    let derived = openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        private.as_os_str(),
        "-pubout".as_ref(),
    ]);
    assert_eq!(derived, std::fs::read_to_string(&public).unwrap());
    let text_form = openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        private.as_os_str(),
        "-noout".as_ref(),
        "-text".as_ref(),
    ]);
    assert!(text_form.contains("ED25519 Private-Key"), "{text_form}");
    // The exact DER openssl genpkey writes: 48 bytes, version 0, no public key attached.
    let der = openssl(&["asn1parse".as_ref(), "-in".as_ref(), private.as_os_str()]);
    assert!(
        der.contains("l=  46 cons: SEQUENCE") && !der.contains("cont [ 1 ]"),
        "{der}"
    );
    let python = repo().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "import sys\n\
             from cryptography.hazmat.primitives import serialization as s\n\
             k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)\n\
             p = s.load_pem_public_key(open(sys.argv[2], 'rb').read())\n\
             raw = s.Encoding.Raw, s.PublicFormat.Raw\n\
             assert k.public_key().public_bytes(*raw) == p.public_bytes(*raw)\n\
             print('ok')",
        )
        .arg(&private)
        .arg(&public)
        .output()
        .expect("the Python env (.venv)");
    assert_eq!(text(&out.stdout).trim(), "ok", "{}", text(&out.stderr));
}

/// A key made by `openssl genpkey -algorithm ed25519` signs a release, and the agent trusts its
/// public half from `openssl pkey -pubout`.
#[test]
fn a_key_made_by_openssl_signs_a_bundle_the_agent_trusts() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, public) = (tmp.path().join("k.pem"), tmp.path().join("p.pem"));
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "ed25519".as_ref(),
        "-out".as_ref(),
        private.as_os_str(),
    ]);
    openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        private.as_os_str(),
        "-pubout".as_ref(),
        "-out".as_ref(),
        public.as_os_str(),
    ]);
    let out = tmp.path().join("out");
    publish(&private, &out, &[]);
    let unpacked = tmp.path().join("u");
    extract(
        &out.join(format!("northwind-{}.tar", shipped_revision())),
        &unpacked,
    );
    let stdout = ok(verify_with(&public, &unpacked));
    assert!(stdout.starts_with("ok "), "{stdout}");
    // A key from an older `hallmark keygen` (PKCS#8 v2, the public key attached) still signs.
    let v2 = tmp.path().join("v2.pem");
    std::fs::write(
        &v2,
        "-----BEGIN PRIVATE KEY-----\n\
         MFECAQEwBQYDK2VwBCIEIHn5+RYUA45cY3fccmhqW4BKM+0bRS8DH6kVwJ0KZenY\n\
         gSEAwuJzLf07Z8tSmi5BHu88Vakvw23h4iT1QogzS8GOlgA=\n\
         -----END PRIVATE KEY-----\n",
    )
    .unwrap();
    publish(&v2, &tmp.path().join("out-v2"), &[]);
}

/// A file the signature does not cover is refused, by name, wherever a bundle is opened: `models verify`,
/// `models install` (folder and tar), `models verify --store`, `scan` and `run` at start, and `publish`,
/// which checks what it packs as a device will.
#[test]
fn a_file_the_signature_does_not_cover_is_refused_by_every_command_naming_it() {
    use hallmark_agent::store::archive;
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_public_key();
    let evil = tmp.path().join("evil");
    std::fs::create_dir(&evil).unwrap();
    archive::copy_dir(&northwind(), &evil, 1 << 30).unwrap();
    std::fs::write(evil.join("run.sh"), "#!/bin/sh\necho owned\n").unwrap();
    let tar = tmp.path().join("evil.tar");
    archive::pack(&evil, &tar, &[], 1 << 30).unwrap();
    let state = tmp.path().join("state");
    let refused = |what: &str, out: Output| {
        assert!(!out.status.success(), "{what}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains("not named in the signed manifest's files, refused: run.sh"),
            "{what}: {err}"
        );
    };
    let cmd = || {
        let mut c = hallmark();
        c.env("HALLMARK_TRUST_PUBLIC_KEYS", &demo)
            .env("HALLMARK_AGENT_STATE_DIR", &state);
        c
    };
    refused(
        "models verify",
        cmd()
            .args(["models", "verify"])
            .arg(&evil)
            .output()
            .unwrap(),
    );
    for source in [&evil, &tar] {
        refused(
            "models install",
            cmd()
                .args(["models", "install", "--activate"])
                .arg(source)
                .output()
                .unwrap(),
        );
    }
    let sample = repo().join("models/samples/northwind/northwind-test-0000.jpg");
    refused(
        "scan",
        cmd()
            .args(["scan", "--model"])
            .arg(&evil)
            .arg(&sample)
            .output()
            .unwrap(),
    );
    refused(
        "run",
        cmd()
            .arg("run")
            .env("HALLMARK_MODEL_BUNDLES", &evil)
            .output()
            .unwrap(),
    );
    let (private, _) = keygen(&tmp.path().join("keys"));
    refused(
        "publish",
        hallmark()
            .arg("publish")
            .arg(&evil)
            .arg("--key")
            .arg(&private)
            .args(["--url-base", "http://127.0.0.1:8000/models/"])
            .arg("--out")
            .arg(tmp.path().join("out"))
            .output()
            .unwrap(),
    );
    // A signed revision installed clean, a file slipped in beside it later: `verify --store` says so.
    ok(cmd()
        .args(["models", "install", "--activate"])
        .arg(northwind())
        .output()
        .unwrap());
    ok(cmd()
        .args(["models", "verify", "--store"])
        .output()
        .unwrap());
    let installed = state
        .join("models/northwind")
        .join(shipped_revision().to_string());
    std::fs::write(installed.join("run.sh"), "#!/bin/sh\n").unwrap();
    refused(
        "models verify --store",
        cmd()
            .args(["models", "verify", "--store"])
            .output()
            .unwrap(),
    );
}

/// One bundle size limit, from configuration: `models install` of a folder or a tar is held to
/// `model.max_bundle_mib`, as a release is (it took 2 GiB by hand while releases stopped at 256 MiB).
#[test]
fn models_install_is_held_to_the_configured_bundle_limit_as_a_release_is() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("northwind.tar");
    hallmark_agent::store::archive::pack(&northwind(), &tar, &[], 1 << 30).unwrap();
    let size = std::fs::metadata(&tar).unwrap().len();
    let limit_mib = (size >> 20) / 2;
    assert!(limit_mib >= 1);
    let install = |source: &Path, mib: u64| {
        hallmark()
            .args(["models", "install"])
            .arg(source)
            .env("HALLMARK_TRUST_PUBLIC_KEYS", demo_public_key())
            .env("HALLMARK_AGENT_STATE_DIR", tmp.path().join("state"))
            .env("HALLMARK_MODEL_MAX_BUNDLE_MIB", mib.to_string())
            .output()
            .unwrap()
    };
    for source in [&tar, &northwind()] {
        let out = install(source, limit_mib);
        assert!(!out.status.success(), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("over the limit of {} bytes", limit_mib << 20)),
            "{err}"
        );
    }
    // A release of that size is refused by the same setting.
    let release = format!(
        r#"{{"schema":"hallmark.release/1","brand":"northwind","revision":9,"url":"http://h/x.tar","sha256":"{}","size":{size}}}"#,
        "a".repeat(64)
    );
    let err = hallmark_agent::update::parse(release.as_bytes(), limit_mib << 20).unwrap_err();
    assert!(err.to_string().contains("above the limit"), "{err}");
    ok(install(&tar, 256));
}

/// The revision of the shipped Northwind bundle (what `publish` packs).
fn shipped_revision() -> u64 {
    let m: Value =
        serde_json::from_slice(&std::fs::read(northwind().join("manifest.json")).unwrap()).unwrap();
    m["revision"].as_u64().unwrap()
}

#[test]
fn a_published_tar_verifies_with_the_new_key_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, public) = keygen(&tmp.path().join("keys"));
    let out = tmp.path().join("out");
    let release = publish(&private, &out, &[]);
    let rev = shipped_revision();
    let tar = out.join(format!("northwind-{rev}.tar"));
    let bytes = std::fs::read(&tar).unwrap();
    assert_eq!(
        release,
        json!({"schema": "hallmark.release/1", "brand": "northwind", "revision": rev,
            "url": format!("http://127.0.0.1:8000/models/northwind-{rev}.tar"),
            "sha256": hex::encode(Sha256::digest(&bytes)), "size": bytes.len()})
    );
    // Nothing but the tar is left in the out folder.
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(format!("northwind-{rev}.tar"))]
    );

    let unpacked = tmp.path().join("unpacked");
    extract(&tar, &unpacked);
    let stdout = ok(verify_with(&public, &unpacked));
    assert!(
        stdout.starts_with("ok ") && stdout.contains(&format!("revision={rev}")),
        "{stdout}"
    );
    let demo = demo_public_key();
    let refused = verify_with(&demo, &unpacked);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("does not verify"),
        "{}",
        text(&refused.stderr)
    );
    // The same bundle and key give the same archive (and the same release digest).
    assert_eq!(publish(&private, &out, &[]), release);
    // And the store installs it when the key is trusted.
    let state = tmp.path().join("state");
    let stdout = ok(hallmark()
        .args(["models", "install", "--activate"])
        .arg(&tar)
        .env("HALLMARK_TRUST_PUBLIC_KEYS", &public)
        .env("HALLMARK_AGENT_STATE_DIR", &state)
        .output()
        .unwrap());
    assert!(
        stdout.contains(&format!("installed northwind revision {rev}")),
        "{stdout}"
    );
    let stdout = ok(hallmark()
        .args(["models", "list"])
        .env("HALLMARK_TRUST_PUBLIC_KEYS", &public)
        .env("HALLMARK_AGENT_STATE_DIR", &state)
        .output()
        .unwrap());
    assert!(
        stdout
            .lines()
            .any(|l| l == format!("northwind\t{rev}\t-\t{rev}")),
        "{stdout}"
    );
    ok(hallmark()
        .args(["models", "verify", "--store"])
        .env("HALLMARK_TRUST_PUBLIC_KEYS", &public)
        .env("HALLMARK_AGENT_STATE_DIR", &state)
        .output()
        .unwrap());
}

/// The pipeline signs with Python (`bundle.py`), publish with Rust: with the same key, the bytes of
/// `manifest.sig` must be the same (Ed25519 is deterministic). Runs where the demo private key was
/// generated (it is not in git).
#[test]
fn publish_signs_exactly_as_the_pipeline_does() {
    let key = repo().join("models/keys/demo-publisher.key.pem");
    if !key.is_file() {
        eprintln!("skipped: {} is absent", key.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    publish(&key, tmp.path(), &[]);
    let unpacked = tmp.path().join("u");
    extract(
        &tmp.path()
            .join(format!("northwind-{}.tar", shipped_revision())),
        &unpacked,
    );
    let ours = std::fs::read(unpacked.join("manifest.sig")).unwrap();
    let pipeline = std::fs::read(northwind().join("manifest.sig")).unwrap();
    let demo_pub = hallmark_agent::bundle::SigningKeyFile::from_pem_file(&key)
        .unwrap()
        .public_pem()
        .unwrap();
    if demo_pub.trim() == std::fs::read_to_string(demo_public_key()).unwrap().trim() {
        assert_eq!(text(&ours), text(&pipeline));
    }
    ok(verify_with(&demo_public_key(), &unpacked));
}

#[test]
fn the_release_is_retained_on_the_fleet_topic_and_on_the_canary_topic() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let (private, _) = keygen(&tmp.path().join("keys"));
    let addr = format!("127.0.0.1:{}", broker.port);
    let out = tmp.path().join("out");
    let fleet = publish(&private, &out, &["--broker", &addr]);
    let canary = publish(
        &private,
        &out,
        &[
            "--broker", &addr, "--thing", "kiosk-9", "--prefix", "hallmark",
        ],
    );
    assert_eq!(fleet, canary);

    // Subscribed after both were published: only retained messages can arrive.
    let sub = Subscriber::start(
        broker.port,
        "publish-test",
        &["hallmark/fleet/models/#", "hallmark/things/+/models/#"],
    );
    assert!(
        wait_until(Duration::from_secs(10), || sub.messages().len() >= 2),
        "{:?}",
        sub.messages()
    );
    let bytes = std::fs::read(out.join(format!("northwind-{}.tar", shipped_revision()))).unwrap();
    let mut topics = Vec::new();
    for m in sub.messages() {
        assert!(m.retain, "{} not retained", m.topic);
        let v = m.json();
        assert_eq!(v["sha256"], hex::encode(Sha256::digest(&bytes)));
        assert_eq!(v["size"], bytes.len());
        assert_eq!(v["revision"], shipped_revision());
        assert!(v.get("rollback").is_none());
        topics.push(m.topic);
    }
    topics.sort();
    assert_eq!(
        topics,
        [
            "hallmark/fleet/models/northwind",
            "hallmark/things/kiosk-9/models/northwind"
        ]
    );

    // A rollback release says so, and carries the statement, signed with the same key, that lets a
    // device go back: brand, revision, the manifest's digest and what it supersedes.
    let above = (shipped_revision() + 2).to_string();
    publish(
        &private,
        &out,
        &["--broker", &addr, "--rollback", "--supersedes", &above],
    );
    let mut rollback = Value::Null;
    assert!(wait_until(Duration::from_secs(10), || {
        rollback = sub
            .on("fleet/models/northwind")
            .iter()
            .map(|m| m.json())
            .find(|v| v["rollback"] == true)
            .unwrap_or(Value::Null);
        !rollback.is_null()
    }));
    let statement = &rollback["rollback_statement"];
    let doc: Value = serde_json::from_str(statement["document"].as_str().unwrap()).unwrap();
    let manifest = std::fs::read(northwind().join("manifest.json")).unwrap();
    assert_eq!(doc["schema"], "hallmark.rollback/1");
    assert_eq!(doc["brand"], "northwind");
    assert_eq!(doc["revision"], shipped_revision());
    assert_eq!(doc["supersedes"], shipped_revision() + 2);
    assert_eq!(
        doc["manifest_sha256"],
        hex::encode(Sha256::digest(&manifest))
    );
    let pem = std::fs::read_to_string(tmp.path().join("keys/publisher.pub.pem")).unwrap();
    let trust = hallmark_agent::bundle::TrustedKeys::from_keys(vec![
        hallmark_agent::bundle::TrustedKeys::parse(Path::new("k"), &pem).unwrap(),
    ]);
    let carried: hallmark_proto::Statement = serde_json::from_value(statement.clone()).unwrap();
    let grant =
        hallmark_agent::update::rollback::verify(&carried, &trust, "northwind", shipped_revision())
            .unwrap();
    assert_eq!(grant.supersedes, shipped_revision() + 2);
    // A rollback names what it supersedes, above the revision it goes back to.
    for bad in [&["--rollback"][..], &["--rollback", "--supersedes", "1"]] {
        let out = hallmark()
            .arg("publish")
            .arg(northwind())
            .arg("--key")
            .arg(&private)
            .args(["--url-base", "http://h/"])
            .arg("--out")
            .arg(&out)
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("supersedes"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn publishing_to_a_broker_that_is_not_there_fails_with_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, _) = keygen(&tmp.path().join("keys"));
    let port = support::free_port();
    let out = hallmark()
        .arg("publish")
        .arg(northwind())
        .arg("--key")
        .arg(&private)
        .args([
            "--url-base",
            "http://h",
            "--broker",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn fleet_status_lists_each_device_with_its_revisions_and_marks_the_one_behind() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let (private, _) = keygen(&tmp.path().join("keys"));
    let addr = format!("127.0.0.1:{}", broker.port);
    publish(&private, &tmp.path().join("out"), &["--broker", &addr]);
    // The fleet release is the shipped revision; kiosk-1 runs it, belt-2 is one behind and failed.
    let (now, old) = (shipped_revision(), shipped_revision() - 1);

    let sub = Subscriber::start(broker.port, "fake-devices", &["hallmark/things/+/online"]);
    let json = |v: Value| serde_json::to_vec(&v).unwrap();
    sub.publish_retained(
        "hallmark/things/kiosk-1/online",
        json(json!({"online": true, "version": "0.1.0", "models": {"northwind": now}})),
    );
    sub.publish_retained(
        "hallmark/things/kiosk-1/models/northwind/status",
        json(json!({"revision": now, "state": "active", "detail": "", "progress": 1.0})),
    );
    sub.publish_retained(
        "hallmark/things/belt-2/online",
        json(json!({"online": false, "version": "0.1.0", "models": {"northwind": old}})),
    );
    sub.publish_retained(
        "hallmark/things/belt-2/models/northwind/status",
        json(json!({"revision": now, "state": "failed", "detail": "download: HTTP 404", "progress": 0.0})),
    );
    assert!(wait_until(Duration::from_secs(10), || sub.messages().len() >= 2));

    let table = ok(hallmark()
        .args(["fleet", "status", "--broker", &addr, "--wait-ms", "800"])
        .output()
        .unwrap());
    let line = |thing: &str| {
        table
            .lines()
            .find(|l| l.starts_with(thing))
            .unwrap_or_else(|| panic!("{thing} missing:\n{table}"))
            .to_string()
    };
    let k = line("kiosk-1");
    assert!(
        k.contains("yes") && k.contains("northwind") && k.contains(&format!("active r{now}")),
        "{table}"
    );
    assert!(!k.contains("BEHIND"), "{table}");
    let b = line("belt-2");
    assert!(
        b.contains(" no ")
            && b.contains(&format!("failed r{now}"))
            && b.contains("download: HTTP 404"),
        "{table}"
    );
    assert!(b.ends_with("BEHIND"), "{table}");
    assert!(
        table.contains(&format!("fleet releases: northwind {now}")),
        "{table}"
    );

    let v: Value = serde_json::from_str(
        ok(hallmark()
            .args([
                "fleet",
                "status",
                "--json",
                "--wait-ms",
                "800",
                "--broker",
                &addr,
            ])
            .output()
            .unwrap())
        .trim(),
    )
    .unwrap();
    assert_eq!(v["releases"]["northwind"], now);
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{v}");
    let belt = devices.iter().find(|d| d["thing"] == "belt-2").unwrap();
    assert_eq!(belt["brands"][0]["active"], old);
    assert_eq!(belt["brands"][0]["behind"], true);
    let kiosk = devices.iter().find(|d| d["thing"] == "kiosk-1").unwrap();
    assert_eq!(kiosk["brands"][0]["behind"], false);
}

/// One device's retained message too large for a status (3 MB) or not readable does not take the whole
/// fleet's view down: `fleet status` skips it, says which device it came from, and lists the rest.
#[test]
fn fleet_status_skips_one_devices_oversized_or_malformed_message_and_lists_the_rest() {
    let broker = Broker::start();
    let addr = format!("127.0.0.1:{}", broker.port);
    let sub = Subscriber::start(broker.port, "fake-fleet", &["hallmark/things/+/online"]);
    let json = |v: Value| serde_json::to_vec(&v).unwrap();
    for thing in ["a-kiosk", "m-belt", "z-kiosk"] {
        sub.publish_retained(
            &format!("hallmark/things/{thing}/online"),
            json(json!({"online": true, "version": "0.1.0", "models": {"northwind": 7}})),
        );
    }
    let mut big = br#"{"online": true, "models": {"northwind": 7}, "pad": ""#.to_vec();
    big.resize(3_000_000, b'x');
    big.extend_from_slice(br#""}"#);
    sub.publish_retained("hallmark/things/huge/online", big);
    sub.publish_retained(
        "hallmark/things/broken/models/northwind/status",
        b"{\"state\": ".to_vec(),
    );
    assert!(wait_until(Duration::from_secs(10), || sub.messages().len() >= 4));

    let out = hallmark()
        .args([
            "fleet",
            "status",
            "--json",
            "--wait-ms",
            "800",
            "--broker",
            &addr,
        ])
        .output()
        .unwrap();
    let stdout = ok(out.clone());
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "device huge: skipped its retained message on hallmark/things/huge/online: 3000"
        ) && err.contains("bytes, over the limit of 65536"),
        "{err}"
    );
    assert!(
        err.contains("device broken: skipped its retained message on hallmark/things/broken/models/northwind/status: not readable"),
        "{err}"
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let things: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["thing"].as_str().unwrap())
        .collect();
    assert_eq!(
        things,
        ["a-kiosk", "broken", "huge", "m-belt", "z-kiosk"],
        "{v}"
    );
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["thing"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["broken", "huge"], "{v}");
    // The table too.
    let table = ok(hallmark()
        .args(["fleet", "status", "--wait-ms", "800", "--broker", &addr])
        .output()
        .unwrap());
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("z-kiosk") && l.contains("yes")),
        "{table}"
    );
}
