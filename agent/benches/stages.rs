//! Criterion benchmarks of the detector's stages: letterbox of a decoded 1920×1080 frame, decode + NMS
//! and scale-back of a full `[1, 6300, 11]` output, and, when the shipped demo bundle and ONNX Runtime
//! are there, the whole detector next to a bare `session.run` on the same input.
//!
//! Run with `cargo bench -p hallmark-agent --bench stages`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hallmark_agent::config::{project_path, DEFAULT_BUNDLE, DEFAULT_PUBLIC_KEY};
use hallmark_agent::detector::{
    decode, postprocess, Candidate, Frame, Layout, Letterbox, Preprocessor, Settings,
};
use hallmark_agent::{Pipeline, RuntimeOptions};

/// A deterministic `w`×`h` test frame with structure (gradients and blocks), so the resize does real work.
fn test_frame(w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&[
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                (((x / 64) ^ (y / 64)) * 37) as u8,
            ]);
        }
    }
    v
}

/// A YOLOv5 output where a few hundred candidates clear the threshold in overlapping clusters.
fn synthetic_output(n: usize, classes: usize) -> Vec<f32> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut v = Vec::with_capacity(n * (5 + classes));
    for i in 0..n {
        let cluster = (i % 12) as f32;
        v.extend_from_slice(&[
            40.0 + cluster * 20.0 + rnd() * 8.0,
            60.0 + cluster * 15.0 + rnd() * 8.0,
            40.0 + rnd() * 10.0,
            50.0 + rnd() * 10.0,
        ]);
        v.push(if i % 20 == 0 {
            0.3 + rnd() * 0.7
        } else {
            rnd() * 0.2
        });
        for _ in 0..classes {
            v.push(rnd());
        }
    }
    v
}

fn stages(c: &mut Criterion) {
    let rgb = test_frame(1920, 1080);
    let frame = Frame::rgb(1920, 1080, &rgb);
    let mut pre = Preprocessor::new();
    let mut tensor = vec![0f32; 3 * 320 * 320];
    let mut bytes = vec![0u8; 3 * 320 * 320];
    c.bench_function("letterbox 1920x1080 -> 320x320", |b| {
        b.iter(|| pre.run(black_box(frame), 320, 320, &mut tensor).unwrap())
    });
    // The two input layouts side by side: float32 NCHW /255 (the main model) and packed uint8 (a
    // variant that normalises in its graph), from the camera size of the samples.
    let rgb_sd = test_frame(960, 720);
    let sd = Frame::rgb(960, 720, &rgb_sd);
    c.bench_function("letterbox 960x720 -> 320x320 float32 NCHW", |b| {
        b.iter(|| pre.run(black_box(sd), 320, 320, &mut tensor).unwrap())
    });
    c.bench_function("letterbox 960x720 -> 320x320 uint8 NHWC", |b| {
        b.iter(|| pre.run_u8(black_box(sd), 320, 320, &mut bytes).unwrap())
    });

    let layout = Layout::Yolov5 {
        candidates: 6300,
        classes: 6,
    };
    let output = synthetic_output(6300, 6);
    let lb = Letterbox::new(1920, 1080, 320, 320);
    let settings = Settings {
        confidence: 0.25,
        iou: 0.45,
        max_detections: 300,
    };
    let (mut cands, mut order, mut keep, mut dets): (Vec<Candidate>, _, _, _) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    c.bench_function("postprocess [1,6300,11] (decode + NMS + scale)", |b| {
        b.iter(|| {
            decode::decode(layout, black_box(&output), settings.confidence, &mut cands).unwrap();
            postprocess(&cands, &lb, settings, &mut order, &mut keep, &mut dets);
            black_box(dets.len())
        })
    });

    // With the real model, when the checkout has it.
    let bundle = project_path(DEFAULT_BUNDLE);
    let key = project_path(DEFAULT_PUBLIC_KEY);
    match Pipeline::open(RuntimeOptions::default(), &bundle, &[key]) {
        Ok(mut p) => {
            c.bench_function("detector: frame -> detections (1920x1080)", |b| {
                b.iter(|| p.detector.detect(frame).map(|(d, _)| d.len()).unwrap())
            });
            p.detector.preprocess(frame).unwrap();
            c.bench_function("bare session.run", |b| {
                b.iter(|| p.detector.run_bare().unwrap())
            });
        }
        Err(e) => eprintln!("skipping the model benchmarks: {e}"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(3));
    targets = stages
}
criterion_main!(benches);
