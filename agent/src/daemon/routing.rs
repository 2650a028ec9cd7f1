//! The daemon's side of brand routing (the rules are `hallmark_core::brands`; the barcodes read for
//! routing are `codes::frame_gtins`): handing a dropped detector's memory back to the system.

/// Gives freed heap pages back to the system after a detector is unloaded (glibc keeps them
/// otherwise: measured, dropping a detector left VmRSS unchanged until this ran, then 19 MB lower).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns free heap pages to the system; it takes no pointers.
        unsafe {
            malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn vm_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Measures what one and two loaded detectors add to the resident memory, and the load time.
    #[test]
    #[ignore = "a measurement (needs ONNX Runtime); run with --ignored --nocapture"]
    fn measure_rss() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let trust = crate::bundle::TrustedKeys::from_pem_files(&[
            repo.join("models/keys/demo-publisher.pub.pem")
        ])
        .unwrap();
        let runtime = crate::runtime::Runtime::load(crate::runtime::RuntimeOptions {
            intra_threads: Some(2),
            ..Default::default()
        })
        .unwrap();
        let frame = vec![114u8; 640 * 480 * 3];
        let start = vm_rss_kib();
        let mut last = start;
        let mut keep = Vec::new();
        for brand in ["northwind", "aurora", "northwind"] {
            let bundle =
                crate::bundle::Bundle::open(&repo.join("models").join(brand), &trust).unwrap();
            let opened = vm_rss_kib();
            println!("{brand}: bundle opened, VmRSS +{} KiB", opened - last);
            last = opened;
            let t = Instant::now();
            let mut d = crate::detector::Detector::new(&runtime, &bundle).unwrap();
            let built = t.elapsed();
            d.detect(crate::detector::Frame::rgb(640, 480, &frame))
                .unwrap();
            let now = vm_rss_kib();
            println!(
                "{brand}: model {} bytes, built in {built:?}, VmRSS +{} KiB ({:.2}x the model); total +{} KiB",
                bundle.model_bytes().len(),
                now - last,
                ((now - last) * 1024) as f64 / bundle.model_bytes().len() as f64,
                now - start
            );
            last = now;
            keep.push(d);
        }
        drop(keep.pop());
        println!("one dropped: total +{} KiB", vm_rss_kib() - start);
        release_freed_memory();
        println!(
            "after release_freed_memory: total +{} KiB",
            vm_rss_kib() - start
        );
    }
}
