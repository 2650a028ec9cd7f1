//! Every parser that takes bytes from outside, fed arbitrary bytes and mutations of good input
//! (proptest; CI-sized: a few hundred cases each): a release payload and a command from MQTT, a
//! bundle manifest, a bundle archive's tar walk. Each must answer with an error, never a panic.
//! (The link codec and GS1 element strings have their own: `firmware/link` and `agent/barcode`.)

use std::path::Path;

use hallmark_proto::command;
use hallmark_proto::release;
use hallmark_proto::Manifest;
use proptest::prelude::*;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `good` with some bytes replaced, inserted or removed (positions and bytes from `edits`).
fn mutate(good: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = good.to_vec();
    for &(at, byte, how) in edits {
        if out.is_empty() {
            out.push(byte);
            continue;
        }
        let at = at % out.len();
        match how % 3 {
            0 => out[at] = byte,
            1 => out.insert(at, byte),
            _ => {
                out.remove(at);
            }
        }
    }
    out
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..24)
}

const RELEASE: &[u8] = br#"{"schema":"hallmark.release/1","brand":"northwind","revision":28,"url":"https://models.example.com/hallmark/northwind-28.tar","sha256":"f13fc19d04872ae8ba45fa8a1c648d2ea36a2bb3fabd845e2eb6f70fc68fbe18","size":29531136,"rollback":false}"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_release_payload_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048), e in edits()) {
        let _ = release::parse(&bytes, 256 << 20);
        let _ = release::parse(&mutate(RELEASE, &e), 256 << 20);
    }

    #[test]
    fn a_command_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048), e in edits()) {
        let _ = command::parse(&bytes);
        let _ = command::parse(&mutate(br#"{"command":"scan"}"#, &e));
    }

    #[test]
    fn a_manifest_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096), e in edits()) {
        let good = std::fs::read(repo().join("models/northwind/manifest.json")).unwrap();
        let _ = Manifest::parse(&bytes);
        let _ = Manifest::parse(&mutate(&good, &e));
    }
}

/// A small bundle-shaped tar (manifest, a few small files in a folder) to mutate.
fn small_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", br#"{"schema":"hallmark.model/1"}"#);
    add("manifest.sig", b"c2lnbmF0dXJl\n");
    add("model.onnx", &[7u8; 3000]);
    add("selftest/expected.json", br#"{"images":[]}"#);
    b.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_bundle_archive_walk_never_panics(e in edits(), noise in prop::collection::vec(any::<u8>(), 0..8192)) {
        let dir = tempfile::tempdir().unwrap();
        for (i, bytes) in [mutate(&small_tar(), &e), noise].iter().enumerate() {
            let tar = dir.path().join(format!("{i}.tar"));
            std::fs::write(&tar, bytes).unwrap();
            let into = dir.path().join(format!("out-{i}"));
            std::fs::create_dir(&into).unwrap();
            let _ = hallmark_agent::store::archive::unpack(&tar, &into, 1 << 20);
        }
    }
}
