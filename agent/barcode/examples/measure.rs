//! Decode rate and time per item crop, for each compiled-in engine, on the item crops of the shipped
//! reference artwork and sample scenes (the measurement in the README). Single thread. Time is the
//! thread's CPU time (what one core spends, whatever else the machine runs), and the wall-clock p50
//! beside it.
//!
//! ```sh
//! cargo run --release -p hallmark-barcode --features rxing --example measure [-- --repeat N] [--verbose]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use hallmark_barcode::{decode_crop_with, Barcode, Engine, Format};

/// CPU time consumed by this thread, in ms.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Tally {
    crops: usize,
    ean_right: usize,
    ean_wrong: usize,
    dm_expected: usize,
    dm_right: usize,
    ms: Vec<f64>,
    wall_ms: Vec<f64>,
}

fn run(engine: Engine, crops: &[common::Crop], repeat: usize, verbose: bool) -> Tally {
    let mut t = Tally {
        crops: crops.len(),
        ean_right: 0,
        ean_wrong: 0,
        dm_expected: 0,
        dm_right: 0,
        ms: Vec::new(),
        wall_ms: Vec::new(),
    };
    for c in crops {
        let stride = c.width as usize * 3;
        let mut found: Vec<Barcode> = Vec::new();
        let mut times = Vec::with_capacity(repeat);
        let mut walls = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let (start, cpu) = (Instant::now(), thread_cpu_ms());
            found = decode_crop_with(engine, &c.rgb, c.width, c.height, stride);
            times.push(thread_cpu_ms() - cpu);
            walls.push(start.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        walls.sort_by(f64::total_cmp);
        t.ms.push(percentile(&times, 0.5));
        t.wall_ms.push(percentile(&walls, 0.5));
        let want = format!("{:0>14}", c.printed);
        let linear: Vec<&Barcode> = found.iter().filter(|b| b.format.is_linear()).collect();
        if linear
            .iter()
            .any(|b| b.gtin.as_deref() == Some(want.as_str()))
        {
            t.ean_right += 1;
        }
        t.ean_wrong += linear
            .iter()
            .filter(|b| b.gtin.as_deref() != Some(want.as_str()))
            .count();
        if let Some(dm) = &c.datamatrix_gtin {
            t.dm_expected += 1;
            if found
                .iter()
                .any(|b| b.format == Format::DataMatrix && b.gtin.as_deref() == Some(dm.as_str()))
            {
                t.dm_right += 1;
            }
        }
        if verbose {
            let got: Vec<String> = found
                .iter()
                .map(|b| format!("{:?} {} ok={}", b.format, b.text, b.check_digit_ok))
                .collect();
            println!(
                "{:<10} {:<40} {:>4}x{:<4} {:>7.2} ms  want {}  got {:?}",
                engine.name(),
                c.source,
                c.width,
                c.height,
                t.ms.last().unwrap_or(&0.0),
                c.printed,
                got
            );
        }
    }
    t.ms.sort_by(f64::total_cmp);
    t.wall_ms.sort_by(f64::total_cmp);
    t
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let verbose = args.iter().any(|a| a == "--verbose");
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--dump")
        .and_then(|i| args.get(i + 1))
    {
        // Writes the sample-scene crops as PNGs, to look at what the decoder is given.
        for c in common::sample_crops() {
            let name = c.source.replace(['/', '#'], "_").replace(".jpg", "") + ".png";
            if let Err(e) = image::save_buffer(
                format!("{dir}/{name}"),
                &c.rgb,
                c.width,
                c.height,
                image::ColorType::Rgb8,
            ) {
                eprintln!("{name}: {e}");
            }
        }
        return;
    }
    let sets = [
        ("reference PNGs", common::reference_crops()),
        (
            "reference PNGs turned 15°…345°",
            common::turned_reference_crops(),
        ),
        (
            "reference PNGs scaled 0.5…0.9, turned",
            common::scaled_reference_crops(),
        ),
        ("sample-scene crops", common::sample_crops()),
    ];
    println!("| engine | crops | EAN-13/UPC-A right GTIN | wrong GTIN read | GS1 DataMatrix right GTIN | CPU p50 ms | CPU p95 ms | CPU max ms | wall p50 ms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (set, crops) in &sets {
        for &engine in Engine::ALL {
            let t = run(engine, crops, repeat, verbose);
            println!(
                "| {} ({set}) | {} | {}/{} | {} | {}/{} | {:.2} | {:.2} | {:.2} | {:.2} |",
                engine.name(),
                t.crops,
                t.ean_right,
                t.crops,
                t.ean_wrong,
                t.dm_right,
                t.dm_expected,
                percentile(&t.ms, 0.5),
                percentile(&t.ms, 0.95),
                t.ms.last().unwrap_or(&f64::NAN),
                percentile(&t.wall_ms, 0.5),
            );
        }
    }
}
