//! The number of physical cores, the default for intra-op threads (hyper-threads share a core's
//! arithmetic units and slow convolution down rather than up).

use std::collections::HashSet;

/// Physical cores from `/proc/cpuinfo` (distinct physical id / core id pairs), or the available
/// parallelism where that cannot be read.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(text) => count_cores(&text)
            .filter(|&n| n > 0)
            .unwrap_or(logical)
            .min(logical),
        Err(_) => logical,
    }
}

/// The intra-op threads to run: as asked (0 or none: the physical cores), never more than the logical
/// cores the machine has (100,000 asked for once took 1.2 GB and hung the start).
pub fn bounded(asked: Option<usize>) -> usize {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    match asked.filter(|&n| n > 0) {
        Some(n) if n > logical => {
            tracing::warn!(
                asked = n,
                cores = logical,
                "runtime.intra_threads is more than this machine's cores; using {logical}"
            );
            logical
        }
        Some(n) => n,
        None => physical_cores(),
    }
}

fn count_cores(cpuinfo: &str) -> Option<usize> {
    let mut cores = HashSet::new();
    for block in cpuinfo.split("\n\n") {
        let field = |name: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        if let Some(core) = field("core id") {
            cores.insert((field("physical id").unwrap_or_default(), core));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperthreads_of_one_core_count_once() {
        let info = "processor: 0\nphysical id: 0\ncore id: 0\n\nprocessor: 1\nphysical id: 0\ncore id: 0\n\n\
                    processor: 2\nphysical id: 0\ncore id: 1\n";
        assert_eq!(count_cores(info), Some(2));
    }

    #[test]
    fn cpuinfo_without_core_ids_gives_none() {
        assert_eq!(count_cores("processor: 0\n"), None);
    }

    #[test]
    fn at_least_one_core() {
        assert!(physical_cores() >= 1);
    }
}
