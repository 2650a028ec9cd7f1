//! The verdict spool's commit times on this machine's disk: a durable (fsync'd) append of one
//! verdict event, of a batch of eight, and the non-durable removal after a PUBACK.
//! `cargo bench -p hallmark-agent --bench spool`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use hallmark_agent::delivery::spool::Spool;

/// About the size of a verdict event with two detections and a barcode.
const EVENT_BYTES: usize = 1400;

fn spool(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = Spool::open(&dir.path().join("spool.redb"), 64 << 20)
        .expect("spool")
        .spool;
    let event = vec![b'x'; EVENT_BYTES];
    let mut g = c.benchmark_group("spool");
    g.sample_size(50);
    g.bench_function("append_1_durable", |b| {
        b.iter(|| spool.append(&[&event]).expect("append"))
    });
    let batch: Vec<&[u8]> = (0..8).map(|_| event.as_slice()).collect();
    g.bench_function("append_8_durable", |b| {
        b.iter(|| spool.append(&batch).expect("append"))
    });
    g.bench_function("remove_1_after_puback", |b| {
        b.iter_batched(
            || spool.append(&[&event]).expect("append").seqs,
            |seqs| spool.remove(&seqs).expect("remove"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, spool);
criterion_main!(benches);
