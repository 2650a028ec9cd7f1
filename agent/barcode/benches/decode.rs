//! Criterion benchmarks of `decode_crop` on representative item crops: a reference label read at once,
//! the same label turned 45° (read after the turned views), a Northwind sample-scene pack whose
//! barcode is legible, and one whose barcode is not (every view tried, nothing read).
//!
//! Run with `cargo bench -p hallmark-barcode --bench decode`. The decode rate and per-crop
//! percentiles over all crops come from `examples/measure.rs` (see the README).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hallmark_barcode::decode_crop;

fn bench(c: &mut Criterion) {
    let refs = common::reference_crops();
    let samples = common::sample_crops();
    let pick = |set: &[common::Crop], source: &str| {
        set.iter()
            .find(|c| c.source == source)
            .map(|c| common::turned(c, 0.0))
    };
    let cases = [
        (
            "reference earl-grey 360x500",
            refs.iter()
                .find(|c| c.class == "earl-grey")
                .map(|c| common::turned(c, 0.0)),
        ),
        (
            "reference ibuprofen-200 520x320 (+DataMatrix)",
            refs.iter()
                .find(|c| c.class == "ibuprofen-200")
                .map(|c| common::turned(c, 0.0)),
        ),
        (
            "reference earl-grey turned 45deg",
            refs.iter()
                .find(|c| c.class == "earl-grey")
                .map(|c| common::turned(c, 45.0)),
        ),
        (
            "sample pack, legible (northwind-test-0005#0)",
            pick(&samples, "northwind/northwind-test-0005.jpg#0"),
        ),
        (
            "sample pack, illegible (northwind-test-0003#3)",
            pick(&samples, "northwind/northwind-test-0003.jpg#3"),
        ),
    ];
    let mut group = c.benchmark_group("decode_crop");
    for (name, crop) in cases {
        let Some(crop) = crop else {
            panic!("missing crop for {name}")
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                decode_crop(
                    black_box(&crop.rgb),
                    crop.width,
                    crop.height,
                    crop.width as usize * 3,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
