//! Fleet model updates end to end: `hallmark publish` announces a signed bundle on a real mosquitto,
//! a real HTTP server serves it, and `hallmark run` (real ONNX Runtime, sample replay) takes it
//! without a restart — or refuses it with a cause while the old model keeps serving.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const BRAND: &str = "northwind";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hallmark"));
    c.current_dir(repo()).env_remove("HALLMARK_MQTT_PREFIX");
    c
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A publisher key pair in `dir`: (private, public).
fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    run_ok(bin().arg("keygen").arg("--out").arg(dir));
    (dir.join("publisher.key.pem"), dir.join("publisher.pub.pem"))
}

/// The shipped northwind bundle as revision `revision` in a new folder (signed later by `publish`).
fn bundle(revision: u64, selftest: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo().join("models").join(BRAND);
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    // Every file the shipped manifest lists.
    for f in manifest["files"].as_object().unwrap().keys() {
        if let Some(parent) = Path::new(f).parent() {
            std::fs::create_dir_all(dir.path().join(parent)).unwrap();
        }
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    manifest["revision"] = revision.into();
    if let Some(verdict) = selftest {
        let st = dir.path().join("selftest");
        std::fs::create_dir(&st).unwrap();
        let sample = std::fs::read_dir(repo().join("models/samples/northwind"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "jpg" || x == "png"))
            .unwrap();
        let name = sample.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(&sample, st.join(&name)).unwrap();
        std::fs::write(
            st.join("expected.json"),
            format!(r#"{{"images": [{{"file": "{name}", "verdict": "{verdict}"}}]}}"#),
        )
        .unwrap();
    }
    // The self-test named too: `publish` signs the manifest as it is, and devices refuse a file it
    // does not name.
    manifest["files"] =
        serde_json::to_value(hallmark_agent::bundle::list_files(dir.path()).unwrap()).unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir
}

/// `hallmark publish` of `bundle` with `key` into the file server, announced on `broker`.
fn publish(
    bundle: &Path,
    key: &Path,
    files: &FileServer,
    broker: u16,
    thing: Option<&str>,
) -> Value {
    let mut cmd = bin();
    cmd.arg("publish")
        .arg(bundle)
        .arg("--key")
        .arg(key)
        .arg("--url-base")
        .arg(&files.url)
        .arg("--out")
        .arg(files.dir.path())
        .arg("--broker")
        .arg(format!("127.0.0.1:{broker}"));
    if let Some(t) = thing {
        cmd.arg("--thing").arg(t);
    }
    let out = run_ok(&mut cmd);
    serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap_or(Value::Null)
}

fn agent_env(broker: u16, http: u16, thing: &str, trusted: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("HALLMARK_MQTT_ENABLED", "true".into()),
        ("HALLMARK_MQTT_HOST", "127.0.0.1".into()),
        ("HALLMARK_MQTT_PORT", broker.to_string()),
        ("HALLMARK_AGENT_THING", thing.into()),
        ("HALLMARK_MQTT_TELEMETRY_INTERVAL_S", "0".into()),
        ("HALLMARK_HTTP_LISTEN", format!("127.0.0.1:{http}")),
        (
            "HALLMARK_TRUST_PUBLIC_KEYS",
            format!("{},{}", demo_public_key().display(), trusted.display()),
        ),
        ("HALLMARK_SOURCE_LOOP", "true".into()),
        ("HALLMARK_SOURCE_FPS", "30".into()),
    ]
}

fn status_topic(thing: &str) -> String {
    format!("hallmark/things/{thing}/models/{BRAND}/status")
}

/// The statuses seen so far for `thing` (as JSON).
fn statuses(sub: &Subscriber, thing: &str) -> Vec<Value> {
    let topic = status_topic(thing);
    sub.messages()
        .iter()
        .filter(|m| m.topic == topic && !m.payload.is_empty())
        .map(Message::json)
        .collect()
}

fn wait_state(sub: &Subscriber, thing: &str, revision: u64, state: &str, agent: &Agent) -> Value {
    let mut found = Value::Null;
    let ok = wait_until(Duration::from_secs(120), || {
        found = statuses(sub, thing)
            .into_iter()
            .rev()
            .find(|s| s["revision"] == revision && s["state"] == state)
            .unwrap_or(Value::Null);
        !found.is_null()
    });
    assert!(
        ok,
        "no {state} status for revision {revision}: {:?}\n{}",
        statuses(sub, thing),
        agent.stderr()
    );
    found
}

/// The model revision of the verdicts printed after the first `skip`.
fn revisions_after(agent: &Agent, skip: usize) -> Vec<u64> {
    agent
        .lines()
        .iter()
        .skip(skip)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["model_revision"].as_u64())
        .collect()
}

fn dropped(http: u16) -> f64 {
    http_get(http, "/metrics")
        .and_then(|(_, p)| metric(&p, "hallmark_frames_dropped_total"))
        .unwrap_or(-1.0)
}

#[test]
fn a_published_revision_is_downloaded_verified_and_swapped_in_without_a_restart_or_a_dropped_frame()
{
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-upd", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let http = free_port();
    let agent = Agent::spawn(hallmark_run(
        state.path(),
        &agent_env(broker.port, http, "kiosk-a", &public),
    ));
    assert!(
        wait_until(Duration::from_secs(60), || agent.ids().len() >= 3),
        "{}",
        agent.stderr()
    );
    let pid = agent.child.id();
    assert!(revisions_after(&agent, 0).iter().all(|&r| r == rev(0)));
    let dropped_before = dropped(http);
    let rev8 = bundle(rev(1), Some("counterfeit"));
    let release = publish(rev8.path(), &key, &files, broker.port, None);
    let active = wait_state(&sub, "kiosk-a", rev(1), "active", &agent);
    eprintln!("status: {active}");
    assert!(
        active["detail"]
            .as_str()
            .unwrap()
            .contains("self-test passed"),
        "{active}"
    );
    // Statuses went downloading → verifying → active.
    let states: Vec<String> = statuses(&sub, "kiosk-a")
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect();
    assert!(
        states.contains(&"downloading".into()) && states.contains(&"verifying".into()),
        "{states:?}"
    );
    // Later verdicts come from the new revision, from the same process: once the first one does, every
    // one after it (frames already in flight at the swap finish on the shipped revision).
    assert!(
        wait_until(Duration::from_secs(30), || {
            let r = revisions_after(&agent, 0);
            r.iter()
                .position(|&x| x == rev(1))
                .is_some_and(|i| r.len() >= i + 3)
        }),
        "{}",
        agent.stderr()
    );
    let r = revisions_after(&agent, 0);
    let first8 = r.iter().position(|&x| x == rev(1)).unwrap();
    assert!(
        r[..first8].iter().all(|&x| x == rev(0)) && r[first8..].iter().all(|&x| x == rev(1)),
        "{r:?}"
    );
    assert_eq!(agent.child.id(), pid);
    assert_eq!(dropped(http), dropped_before, "the swap dropped no frame");
    assert_eq!(dropped_before, 0.0);
    assert!(
        wait_until(Duration::from_secs(10), || sub
            .on("/online")
            .iter()
            .any(|m| m.json()["models"][BRAND] == rev(1))),
        "online says the new revision"
    );
    // The operator's view lists the device on the new revision, not behind the fleet release.
    let table = run_ok(
        bin()
            .args(["fleet", "status", "--json", "--broker"])
            .arg(format!("127.0.0.1:{}", broker.port)),
    );
    assert!(table.contains("kiosk-a"), "{table}");
    let _ = release;
    let (code, _, err) = agent.terminate();
    assert_eq!(code, Some(0), "{err}");
    // The store holds the new revision as active, and it verifies.
    let list = run_ok(
        bin()
            .args(["models", "verify", "--store"])
            .env("HALLMARK_AGENT_STATE_DIR", state.path())
            .env(
                "HALLMARK_TRUST_PUBLIC_KEYS",
                format!("{},{}", demo_public_key().display(), public.display()),
            ),
    );
    assert!(list.contains(&format!("revision={}", rev(1))), "{list}");
}

#[test]
fn bad_releases_are_refused_with_their_cause_and_the_old_model_keeps_serving() {
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let other = tempfile::tempdir().unwrap();
    let (untrusted_key, _) = keygen(other.path());
    let sub = Subscriber::start(broker.port, "t-bad", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::spawn(hallmark_run(
        state.path(),
        &agent_env(broker.port, free_port(), "kiosk-b", &public),
    ));
    assert!(wait_until(Duration::from_secs(60), || !agent
        .ids()
        .is_empty()));
    let fleet = format!("hallmark/fleet/models/{BRAND}");

    // Malformed and unknown-schema releases.
    sub.publish_retained(&fleet, b"{not json".to_vec());
    assert!(wait_until(Duration::from_secs(20), || statuses(
        &sub, "kiosk-b"
    )
    .iter()
    .any(
        |s| s["state"] == "rejected" && s["detail"].as_str().unwrap_or("").contains("release")
    )));
    sub.publish_retained(
        &fleet,
        br#"{"schema":"hallmark.release/9","brand":"northwind","revision":9,"url":"http://x/y.tar","sha256":"00","size":1}"#.to_vec(),
    );
    assert!(wait_until(Duration::from_secs(20), || statuses(
        &sub, "kiosk-b"
    )
    .iter()
    .any(|s| s["detail"].as_str().unwrap_or("").contains("schema"))));

    // Signed by a key the device does not trust.
    let b9 = bundle(rev(2), None);
    publish(b9.path(), &untrusted_key, &files, broker.port, None);
    let r = wait_state(&sub, "kiosk-b", rev(2), "rejected", &agent);
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("trust")
            || r["detail"].as_str().unwrap().contains("signature"),
        "{r}"
    );

    // A self-test the model fails.
    let b10 = bundle(rev(3), Some("no_product"));
    publish(b10.path(), &key, &files, broker.port, None);
    let r = wait_state(&sub, "kiosk-b", rev(3), "rejected", &agent);
    assert!(r["detail"].as_str().unwrap().contains("self-test"), "{r}");

    // Tampered model bytes behind a correct archive digest. Revision rev(4) is packed, not announced:
    // an announced valid revision could be taken before its archive is tampered with (it was, on a
    // loaded machine).
    let b11 = bundle(rev(4), None);
    run_ok(
        bin()
            .arg("publish")
            .arg(b11.path())
            .arg("--key")
            .arg(&key)
            .arg("--url-base")
            .arg(&files.url)
            .arg("--out")
            .arg(files.dir.path()),
    );
    let tar_path = files.dir.path().join(format!("{BRAND}-{}.tar", rev(4)));
    let mut bytes = std::fs::read(&tar_path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x5a;
    std::fs::write(&tar_path, &bytes).unwrap();
    let digest = sha256_hex(&bytes);
    let release = serde_json::json!({"schema": "hallmark.release/1", "brand": BRAND, "revision": rev(5),
        "url": format!("{}/{BRAND}-{}.tar", files.url, rev(4)), "sha256": digest, "size": bytes.len()});
    // Announced as revision rev(5) whose archive is rev(4)'s with a byte flipped.
    sub.publish_retained(&fleet, release.to_string().into_bytes());
    let r = wait_state(&sub, "kiosk-b", rev(5), "rejected", &agent);
    eprintln!("tampered: {r}");

    // A file that is not there: failed with the cause, retried later.
    let missing = serde_json::json!({"schema": "hallmark.release/1", "brand": BRAND, "revision": rev(6),
        "url": format!("{}/none.tar", files.url), "sha256": "a".repeat(64), "size": 1000});
    sub.publish_retained(&fleet, missing.to_string().into_bytes());
    let r = wait_state(&sub, "kiosk-b", rev(6), "failed", &agent);
    assert!(r["detail"].as_str().unwrap().contains("404"), "{r}");

    // A signed tar with a file its manifest does not name (a script slipped in beside the model).
    let b12 = bundle(rev(7), Some("counterfeit"));
    run_ok(
        bin()
            .arg("publish")
            .arg(b12.path())
            .arg("--key")
            .arg(&key)
            .arg("--url-base")
            .arg(&files.url)
            .arg("--out")
            .arg(files.dir.path()),
    );
    let signed = files.dir.path().join(format!("{BRAND}-{}.tar", rev(7)));
    let mut out = tar::Builder::new(Vec::new());
    let mut original = tar::Archive::new(std::fs::File::open(&signed).unwrap());
    for entry in original.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        out.append_data(&mut header, path, &mut entry).unwrap();
    }
    let script = b"#!/bin/sh\necho owned\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(script.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    out.append_data(&mut header, "run.sh", &script[..]).unwrap();
    let bytes = out.into_inner().unwrap();
    std::fs::write(files.dir.path().join("extra.tar"), &bytes).unwrap();
    let release = serde_json::json!({"schema": "hallmark.release/1", "brand": BRAND, "revision": rev(7),
        "url": format!("{}/extra.tar", files.url), "sha256": sha256_hex(&bytes), "size": bytes.len()});
    sub.publish_retained(&fleet, release.to_string().into_bytes());
    let r = wait_state(&sub, "kiosk-b", rev(7), "rejected", &agent);
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("not named in the signed manifest's files, refused: run.sh"),
        "{r}"
    );

    // Through all of it the shipped revision kept judging.
    let seen = agent.lines().len();
    assert!(wait_until(Duration::from_secs(20), || revisions_after(
        &agent, seen
    )
    .len()
        >= 2));
    assert!(revisions_after(&agent, 0).iter().all(|&r| r == rev(0)));
    let (code, _, err) = agent.terminate();
    assert_eq!(code, Some(0), "{err}");
}

/// The first status for `revision` that ends a try (active, rejected, failed, rolled_back) among those
/// after the first `after` statuses of `thing`.
fn wait_end(sub: &Subscriber, thing: &str, revision: u64, after: usize, agent: &Agent) -> Value {
    let mut found = Value::Null;
    let ok = wait_until(Duration::from_secs(120), || {
        found = statuses(sub, thing)
            .into_iter()
            .skip(after)
            .find(|s| {
                s["revision"] == revision
                    && ["active", "rejected", "failed", "rolled_back"]
                        .contains(&s["state"].as_str().unwrap_or(""))
            })
            .unwrap_or(Value::Null);
        !found.is_null()
    });
    assert!(
        ok,
        "no final status for revision {revision}: {:?}\n{}",
        statuses(sub, thing),
        agent.stderr()
    );
    found
}

/// `hallmark publish BUNDLE --rollback --supersedes N` with `key`, into `out` (no broker): the release.
fn rollback_release(
    bundle: &Path,
    key: &Path,
    files: &FileServer,
    out: &Path,
    supersedes: u64,
) -> Value {
    let stdout = run_ok(
        bin()
            .arg("publish")
            .arg(bundle)
            .arg("--key")
            .arg(key)
            .arg("--url-base")
            .arg(&files.url)
            .arg("--out")
            .arg(out)
            .args(["--rollback", "--supersedes", &supersedes.to_string()]),
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap()
}

/// Anti-rollback holds against whoever can publish on the release topic: `"rollback": true` for a
/// revision the device once ran, over a genuine signed archive, is refused (`rejected`, with why), and
/// so is a statement signed by a key the device does not trust; a statement signed by the publisher
/// takes the device back, after which the revision it withdrew needs a statement too, and the
/// statement itself cannot be replayed once the publisher has moved on.
#[test]
fn a_downgrade_over_mqtt_needs_a_rollback_statement_signed_by_a_trusted_key() {
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let other = tempfile::tempdir().unwrap();
    let (untrusted, _) = keygen(other.path());
    let sub = Subscriber::start(broker.port, "t-downgrade", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let thing = "kiosk-d";
    let agent = Agent::spawn(hallmark_run(
        state.path(),
        &agent_env(broker.port, free_port(), thing, &public),
    ));
    assert!(wait_until(Duration::from_secs(60), || !agent
        .ids()
        .is_empty()));
    let fleet = format!("hallmark/fleet/models/{BRAND}");
    let (b1, b2) = (bundle(rev(1), None), bundle(rev(2), None));
    let r1 = publish(b1.path(), &key, &files, broker.port, None);
    wait_state(&sub, thing, rev(1), "active", &agent);
    let r2 = publish(b2.path(), &key, &files, broker.port, None);
    wait_state(&sub, thing, rev(2), "active", &agent);

    // The attack: rev(1)'s genuine, signed archive announced again with "rollback": true.
    let mut back = r1.clone();
    back["rollback"] = true.into();
    let n = statuses(&sub, thing).len();
    sub.publish_retained(&fleet, back.to_string().into_bytes());
    let r = wait_end(&sub, thing, rev(1), n, &agent);
    eprintln!("unsigned downgrade: {r}");
    assert_eq!(r["state"], "rejected", "{r}");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "revision {} is below the active revision {}",
            rev(1),
            rev(2)
        )) && detail.contains("rollback statement signed by a trusted publisher key"),
        "{detail}"
    );

    // A statement signed by a key the device does not trust, on the same genuine archive.
    let elsewhere = tempfile::tempdir().unwrap();
    let forged = rollback_release(b1.path(), &untrusted, &files, elsewhere.path(), rev(2));
    let mut release = r1.clone();
    release["rollback"] = true.into();
    release["rollback_statement"] = forged["rollback_statement"].clone();
    let n = statuses(&sub, thing).len();
    sub.publish_retained(&fleet, release.to_string().into_bytes());
    let r = wait_end(&sub, thing, rev(1), n, &agent);
    assert_eq!(r["state"], "rejected", "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("its rollback statement is refused: rollback statement: manifest.sig does not verify against any of the 2 trusted public key(s)"),
        "{r}"
    );
    // Meanwhile the active revision kept serving.
    let seen = agent.lines().len();
    assert!(wait_until(Duration::from_secs(20), || revisions_after(
        &agent, seen
    )
    .len()
        >= 2));
    assert!(revisions_after(&agent, seen).iter().all(|&r| r == rev(2)));

    // Signed by the publisher: the device goes back.
    let n = statuses(&sub, thing).len();
    let signed = rollback_release(b1.path(), &key, &files, files.dir.path(), rev(2));
    assert_eq!(signed["sha256"], r1["sha256"], "the same archive");
    sub.publish_retained(&fleet, signed.to_string().into_bytes());
    let r = wait_end(&sub, thing, rev(1), n, &agent);
    assert_eq!(r["state"], "active", "{r}");
    assert!(
        r["detail"].as_str().unwrap().contains(&format!(
            "rolled back under a rollback statement signed by {}",
            public.display()
        )),
        "{r}"
    );
    let seen = agent.lines().len();
    assert!(wait_until(Duration::from_secs(30), || revisions_after(
        &agent, seen
    )
    .len()
        >= 2));
    assert!(revisions_after(&agent, seen).iter().all(|&r| r == rev(1)));

    // The withdrawn revision does not come back with a release alone.
    let n = statuses(&sub, thing).len();
    sub.publish_retained(&fleet, r2.to_string().into_bytes());
    let r = wait_end(&sub, thing, rev(2), n, &agent);
    assert_eq!(r["state"], "rejected", "{r}");
    assert!(
        r["detail"].as_str().unwrap().contains(&format!(
            "revision {} was withdrawn by a signed rollback",
            rev(2)
        )),
        "{r}"
    );

    // A new revision moves the device on; the old statement is then not replayed.
    let b3 = bundle(rev(3), None);
    publish(b3.path(), &key, &files, broker.port, None);
    wait_state(&sub, thing, rev(3), "active", &agent);
    let n = statuses(&sub, thing).len();
    sub.publish_retained(&fleet, signed.to_string().into_bytes());
    let r = wait_end(&sub, thing, rev(1), n, &agent);
    assert_eq!(r["state"], "rejected", "{r}");
    assert!(
        r["detail"].as_str().unwrap().contains(&format!(
            "supersedes revisions up to {} only, and this device has already run or withdrawn revision {}",
            rev(2),
            rev(3)
        )),
        "{r}"
    );
    let (code, _, err) = agent.terminate();
    assert_eq!(code, Some(0), "{err}");
}

/// A signed rollback below the configured (shipped) revision sticks across a restart: the agent serves
/// the store's rolled-back revision, not the configured one the rollback withdrew.
#[test]
fn a_signed_rollback_below_the_configured_bundle_survives_a_restart() {
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-below", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let thing = "kiosk-r";
    let env = agent_env(broker.port, free_port(), thing, &public);
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    assert!(wait_until(Duration::from_secs(60), || !agent
        .ids()
        .is_empty()));
    let older = bundle(rev(0) - 1, None);
    let release = rollback_release(older.path(), &key, &files, files.dir.path(), rev(0));
    sub.publish_retained(
        &format!("hallmark/fleet/models/{BRAND}"),
        release.to_string().into_bytes(),
    );
    wait_state(&sub, thing, rev(0) - 1, "active", &agent);
    agent.terminate();
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    assert!(wait_until(Duration::from_secs(60), || agent.ids().len() >= 2));
    assert!(
        revisions_after(&agent, 0).iter().all(|&r| r == rev(0) - 1),
        "{:?}\n{}",
        revisions_after(&agent, 0),
        agent.stderr()
    );
    agent.terminate();
}

#[test]
fn a_revision_swapped_in_is_still_served_in_the_devices_encoding_after_a_restart() {
    // A device running the uint8 variant: the store's newer revision must come back at start in that
    // encoding, not as its main model (another input type, which start-up would refuse and so serve
    // the older configured bundle instead).
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-restart-u8", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let thing = "kiosk-u8";
    let mut env = agent_env(broker.port, free_port(), thing, &public);
    env.push(("HALLMARK_MODEL_VARIANT", "u8".into()));
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    assert!(wait_until(Duration::from_secs(60), || !agent
        .ids()
        .is_empty()));
    let newer = bundle(rev(1), None);
    publish(newer.path(), &key, &files, broker.port, None);
    wait_state(&sub, thing, rev(1), "active", &agent);
    agent.terminate();
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    assert!(wait_until(Duration::from_secs(60), || agent.ids().len() >= 2));
    let stderr = agent.stderr();
    assert!(
        revisions_after(&agent, 0).iter().all(|&r| r == rev(1)),
        "{:?}\n{stderr}",
        revisions_after(&agent, 0)
    );
    assert!(stderr.contains("variant=u8"), "{stderr}");
    agent.terminate();
}

#[test]
fn a_canary_release_wins_over_the_fleet_release_for_that_device_only() {
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-canary", &["hallmark/#"]);
    let b8 = bundle(rev(1), None);
    let b9 = bundle(rev(2), None);
    publish(b8.path(), &key, &files, broker.port, None);
    publish(b9.path(), &key, &files, broker.port, Some("canary"));
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let canary = Agent::spawn(hallmark_run(
        s1.path(),
        &agent_env(broker.port, free_port(), "canary", &public),
    ));
    let other = Agent::spawn(hallmark_run(
        s2.path(),
        &agent_env(broker.port, free_port(), "other", &public),
    ));
    wait_state(&sub, "canary", rev(2), "active", &canary);
    wait_state(&sub, "other", rev(1), "active", &other);
    assert!(statuses(&sub, "other")
        .iter()
        .all(|s| s["revision"] != rev(2)));
    canary.terminate();
    other.terminate();
}

#[test]
fn a_sigkill_during_an_update_leaves_exactly_one_consistent_revision() {
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-kill-upd", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let env = agent_env(broker.port, free_port(), "kiosk-k", &public);
    let trust = format!("{},{}", demo_public_key().display(), public.display());
    let mut revision = rev(0);
    for delay_ms in [150u64, 600, 1200] {
        let agent = Agent::spawn(hallmark_run(state.path(), &env));
        assert!(wait_until(Duration::from_secs(60), || !agent
            .ids()
            .is_empty()));
        revision += 1;
        let b = bundle(revision, Some("counterfeit"));
        publish(b.path(), &key, &files, broker.port, None);
        std::thread::sleep(Duration::from_millis(delay_ms));
        agent.kill();
        // Whatever the moment: the store opens, one revision is active, and it verifies.
        let out = run_ok(
            bin()
                .args(["models", "verify", "--store"])
                .env("HALLMARK_AGENT_STATE_DIR", state.path())
                .env("HALLMARK_TRUST_PUBLIC_KEYS", &trust),
        );
        eprintln!("after a kill at {delay_ms} ms: {}", out.trim());
    }
    // The next start serves the newest revision (taking the retained release if it had not yet).
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    wait_state(&sub, "kiosk-k", revision, "active", &agent);
    assert!(wait_until(Duration::from_secs(30), || {
        let r = revisions_after(&agent, 0);
        r.iter()
            .position(|&x| x == revision)
            .is_some_and(|i| r.len() >= i + 2)
    }));
    let r = revisions_after(&agent, 0);
    let first = r.iter().position(|&x| x == revision).unwrap();
    assert!(r[first..].iter().all(|&x| x == revision), "{r:?}");
    agent.terminate();
}

#[test]
fn a_stale_status_left_by_a_killed_agent_is_corrected_to_the_active_revision_at_start() {
    // A kill between the swap and the "active" status leaves the store on the new revision and the
    // retained status at "verifying": the fleet's dashboard would show an update that never ends.
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-stale", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let env = agent_env(broker.port, free_port(), "kiosk-s", &public);
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    let b = bundle(rev(1), Some("counterfeit"));
    publish(b.path(), &key, &files, broker.port, None);
    wait_state(&sub, "kiosk-s", rev(1), "active", &agent);
    agent.terminate();
    let stale = format!(
        r#"{{"revision": {}, "state": "verifying", "detail": "signature, model digest, self-test", "progress": null}}"#,
        rev(1)
    );
    sub.publish_retained(&status_topic("kiosk-s"), stale.into_bytes());
    assert!(wait_until(Duration::from_secs(10), || statuses(
        &sub, "kiosk-s"
    )
    .last()
    .is_some_and(|s| s["state"] == "verifying")));
    let seen = statuses(&sub, "kiosk-s").len();

    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    let ok = wait_until(Duration::from_secs(60), || {
        statuses(&sub, "kiosk-s")[seen..]
            .iter()
            .any(|s| s["revision"] == rev(1) && s["state"] == "active")
    });
    assert!(ok, "{:?}\n{}", statuses(&sub, "kiosk-s"), agent.stderr());
    // Said once, not on every redelivery of the retained release.
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<_> = statuses(&sub, "kiosk-s")[seen..].to_vec();
    assert_eq!(after.len(), 1, "{after:?}");
    agent.terminate();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn with_two_brands_a_release_updates_its_brand_only_and_online_lists_both() {
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-upd-2", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    // Two coded samples, one of each brand, so frames alternate between them.
    let replay = tempfile::tempdir().unwrap();
    for (i, (brand, stem)) in [
        ("aurora", "aurora-test-0002"),
        (BRAND, "northwind-test-0005"),
    ]
    .iter()
    .enumerate()
    {
        std::fs::copy(
            repo().join(format!("models/samples/{brand}/{stem}.jpg")),
            replay.path().join(format!("{i:02}-{stem}.jpg")),
        )
        .unwrap();
    }
    let http = free_port();
    let mut env = agent_env(broker.port, http, "kiosk-2", &public);
    env.extend([
        (
            "HALLMARK_MODEL_BUNDLES",
            "models/northwind,models/aurora".to_string(),
        ),
        ("HALLMARK_MODEL_MEMORY_BUDGET_MIB", "10".into()),
        ("HALLMARK_SOURCE_PATH", replay.path().display().to_string()),
    ]);
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    let aurora_rev = manifest_revision("aurora");
    assert!(
        wait_until(Duration::from_secs(60), || sub
            .on("/online")
            .iter()
            .any(|m| m.json()["models"]["aurora"] == aurora_rev
                && m.json()["models"][BRAND] == rev(0))),
        "online lists both brands: {}",
        agent.stderr()
    );
    let rev8 = bundle(rev(1), None);
    publish(rev8.path(), &key, &files, broker.port, None);
    wait_state(&sub, "kiosk-2", rev(1), "active", &agent);
    assert!(
        wait_until(Duration::from_secs(10), || sub
            .on("/online")
            .iter()
            .any(|m| m.json()["models"][BRAND] == rev(1)
                && m.json()["models"]["aurora"] == aurora_rev)),
        "online says northwind's new revision, aurora unchanged"
    );
    // After the swap, Northwind frames are judged by the new revision and Aurora frames still by theirs.
    let skip = agent.lines().len();
    let by_brand = || -> Vec<(String, u64)> {
        agent
            .lines()
            .iter()
            .skip(skip + 4)
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| {
                (
                    v["brand"].as_str().unwrap().to_string(),
                    v["model_revision"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || {
            let seen = by_brand();
            seen.iter().any(|(b, _)| b == BRAND) && seen.iter().any(|(b, _)| b == "aurora")
        }),
        "{}",
        agent.stderr()
    );
    for (brand, revision) in by_brand() {
        let want = if brand == BRAND { rev(1) } else { aurora_rev };
        assert_eq!(revision, want, "{brand}");
    }
    let page = http_get(http, "/metrics").unwrap().1;
    assert!(
        metric(&page, "hallmark_model_evictions_total").unwrap_or(0.0) > 0.0,
        "{page}"
    );
    let (code, _, err) = agent.terminate();
    assert_eq!(code, Some(0), "{err}");
}

/// The shipped Northwind revision plus `ahead` (the releases these tests publish must be newer).
fn rev(ahead: u64) -> u64 {
    manifest_revision(BRAND) + ahead
}

fn manifest_revision(brand: &str) -> u64 {
    let m: Value = serde_json::from_slice(
        &std::fs::read(repo().join(format!("models/{brand}/manifest.json"))).unwrap(),
    )
    .unwrap();
    m["revision"].as_u64().unwrap()
}

/// A server that answers at once and then sends one byte every 300 ms, forever.
fn dripping_server() -> String {
    use axum::body::Body;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(|| async {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        tokio::spawn(async move {
            loop {
                if tx.send(Ok(vec![0u8])).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        (
            [(axum::http::header::CONTENT_LENGTH, "10485760")],
            Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
            .into_response()
    });
    format!("http://{}/slow.tar", serve(app))
}

/// A release stuck on a server that drips bytes never holds a newer one back: the newer release
/// message interrupts the download, and the newer revision goes active.
#[test]
fn a_newer_release_supersedes_a_download_in_progress() {
    let broker = Broker::start();
    let files = FileServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let sub = Subscriber::start(broker.port, "t-supersede", &["hallmark/#"]);
    let state = tempfile::tempdir().unwrap();
    let mut env = agent_env(broker.port, free_port(), "kiosk-s", &public);
    // A stall is not what ends the slow download here.
    env.push(("HALLMARK_MODEL_DOWNLOAD_STALL_S", "600".into()));
    let agent = Agent::spawn(hallmark_run(state.path(), &env));
    assert!(
        wait_until(Duration::from_secs(60), || agent.ids().len() >= 3),
        "{}",
        agent.stderr()
    );
    let slow = serde_json::json!({
        "schema": "hallmark.release/1", "brand": BRAND, "revision": rev(1),
        "url": dripping_server(), "sha256": "ab".repeat(32), "size": 10485760,
    });
    sub.publish_retained(
        &format!("hallmark/fleet/models/{BRAND}"),
        slow.to_string().into_bytes(),
    );
    wait_state(&sub, "kiosk-s", rev(1), "downloading", &agent);
    std::thread::sleep(Duration::from_secs(2));
    let newer = bundle(rev(2), Some("counterfeit"));
    publish(newer.path(), &key, &files, broker.port, None);
    let started = std::time::Instant::now();
    wait_state(&sub, "kiosk-s", rev(2), "active", &agent);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // (Its `failed` status is retained state the next status replaces before it goes out.)
    assert!(
        agent
            .stderr()
            .contains("download interrupted by a newer release message"),
        "{}",
        agent.stderr()
    );
    let (code, _, err) = agent.terminate();
    assert_eq!(code, Some(0), "{err}");
}
