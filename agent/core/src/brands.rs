//! Many brands on one device: which brand a frame shows ([`Router`] by a barcode's GS1 prefix, else
//! [`Sight`]: every brand's detector looks, and the one that sees its products best wins) and which
//! brands' detectors are in memory ([`Registry`]).
//!
//! Every configured bundle is verified at start and kept (its model bytes are in memory already); a
//! brand's detector is built when a frame first needs it and unloaded, least recently used first, when
//! the detectors in memory would otherwise pass `model.memory_budget_mib`. The brand a frame is routed
//! to is never the one unloaded for it. A detector's memory is estimated from its model's size
//! ([`ESTIMATE_FACTOR`]), measured with ONNX Runtime's CPU provider.
//!
//! Every part is pure (the registry is handed a loader; the router a list of GTINs read; sight the
//! scores), so their rules are tested without a model. Routing by sight costs one inference per brand
//! on a frame no code routed, and the detectors it needs must fit the memory budget together, or each
//! such frame reloads them.

use std::time::{Duration, Instant};

use hallmark_detect::Detection;

/// Estimated resident memory of one loaded detector, as a multiple of its model's bytes.
///
/// Measured (`cargo test -p hallmark-agent --lib daemon::brands::tests::measure_rss -- --ignored
/// --nocapture`; CPU provider, 2 intra-op threads, the shipped 7.2 MB YOLOv5n bundles, each after one
/// inference): a second and a third detector each added 3.2–5.0 MB of VmRSS (0.46–0.71× the model);
/// the first added 35 MB, most of it the runtime's one-off state (allocators, kernels, threads), which
/// no eviction gives back. The bundle's own bytes (1×) stay in memory whether its detector is loaded or
/// not. 1 rounds the per-detector cost up.
pub const ESTIMATE_FACTOR: u64 = 1;

/// A brand's detector's estimated memory, from its model's size.
pub fn estimate(model_bytes: usize) -> u64 {
    model_bytes as u64 * ESTIMATE_FACTOR
}

/// One served brand.
struct Entry<S, D> {
    brand: String,
    /// What a detector is built from (the verified bundle and its manifest).
    source: S,
    /// Estimated memory of its detector.
    cost: u64,
    detector: Option<D>,
    last_use: u64,
}

/// What [`Registry::ensure_loaded`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Loaded {
    /// Brands unloaded to make room (least recently used first).
    pub evicted: Vec<String>,
    /// Set when the detector had to be built: how long that took.
    pub built_in: Option<Duration>,
}

/// The served brands, their sources and the detectors in memory, within a memory budget.
pub struct Registry<S, D> {
    entries: Vec<Entry<S, D>>,
    budget: u64,
    tick: u64,
    pub loads: u64,
    pub evictions: u64,
    /// Time spent building detectors on demand, in all.
    pub load_time: Duration,
}

impl<S, D> Registry<S, D> {
    pub fn new(budget: u64) -> Self {
        Registry {
            entries: Vec::new(),
            budget,
            tick: 0,
            loads: 0,
            evictions: 0,
            load_time: Duration::ZERO,
        }
    }

    /// Adds a brand (or replaces its source, unloading its detector) with the detector's estimated cost.
    pub fn add(&mut self, brand: &str, source: S, cost: u64) {
        match self.entries.iter_mut().find(|e| e.brand == brand) {
            Some(e) => {
                e.source = source;
                e.cost = cost;
                e.detector = None;
            }
            None => self.entries.push(Entry {
                brand: brand.to_string(),
                source,
                cost,
                detector: None,
                last_use: 0,
            }),
        }
    }

    pub fn brands(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.brand.as_str())
    }

    pub fn source(&self, brand: &str) -> Option<&S> {
        self.entry(brand).map(|e| &e.source)
    }

    /// `brand`'s detector, if it is in memory.
    pub fn detector(&self, brand: &str) -> Option<&D> {
        self.entry(brand).and_then(|e| e.detector.as_ref())
    }

    /// Brands whose detector is in memory.
    pub fn loaded(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.detector.is_some())
            .map(|e| e.brand.as_str())
            .collect()
    }

    /// Estimated memory of the detectors in memory.
    /// Unloads the least recently used detectors other than `keep` until `need` more bytes fit the
    /// budget (or nothing else is loaded); returns the brands unloaded.
    fn evict_for(&mut self, keep: usize, need: u64) -> Vec<String> {
        let mut evicted = Vec::new();
        while self.in_memory() + need > self.budget {
            let Some(victim) = self
                .entries
                .iter()
                .enumerate()
                .filter(|(j, e)| *j != keep && e.detector.is_some())
                .min_by_key(|(_, e)| e.last_use)
                .map(|(j, _)| j)
            else {
                break;
            };
            self.entries[victim].detector = None;
            self.evictions += 1;
            evicted.push(self.entries[victim].brand.clone());
        }
        evicted
    }

    pub fn in_memory(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.detector.is_some())
            .map(|e| e.cost)
            .sum()
    }

    fn entry(&self, brand: &str) -> Option<&Entry<S, D>> {
        self.entries.iter().find(|e| e.brand == brand)
    }

    fn index(&self, brand: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.brand == brand)
    }

    /// The brand's detector, built with `load` when it is not in memory, after unloading the least
    /// recently used others while the estimate would pass the budget (a brand that does not fit even
    /// alone is loaded all the same: a device must serve the brand in front of it). `None` for a brand
    /// not served.
    pub fn ensure_loaded<E>(
        &mut self,
        brand: &str,
        load: impl FnOnce(&S) -> Result<D, E>,
    ) -> Option<Result<(&mut D, Loaded), E>> {
        let i = self.index(brand)?;
        self.tick += 1;
        self.entries[i].last_use = self.tick;
        let mut done = Loaded::default();
        if self.entries[i].detector.is_none() {
            let need = self.entries[i].cost;
            done.evicted = self.evict_for(i, need);
            let started = Instant::now();
            match load(&self.entries[i].source) {
                Ok(d) => {
                    let took = started.elapsed();
                    self.loads += 1;
                    self.load_time += took;
                    done.built_in = Some(took);
                    self.entries[i].detector = Some(d);
                }
                Err(e) => return Some(Err(e)),
            }
        }
        let d = self.entries[i].detector.as_mut().expect("loaded above");
        Some(Ok((d, done)))
    }

    /// Puts a detector built elsewhere (an update, or the one a failed update replaced) in as the
    /// brand's, with its source; returns what it replaced. The brand counts as just used; others are
    /// unloaded (least recently used first) while the estimate passes the budget.
    #[allow(clippy::type_complexity)]
    pub fn replace(
        &mut self,
        brand: &str,
        source: S,
        detector: Option<D>,
        cost: u64,
    ) -> (Option<(S, Option<D>)>, Vec<String>) {
        self.tick += 1;
        let tick = self.tick;
        let old = match self.index(brand) {
            Some(i) => {
                let e = &mut self.entries[i];
                let old_source = std::mem::replace(&mut e.source, source);
                let old_detector = std::mem::replace(&mut e.detector, detector);
                e.cost = cost;
                e.last_use = tick;
                Some((old_source, old_detector))
            }
            None => {
                self.entries.push(Entry {
                    brand: brand.to_string(),
                    source,
                    cost,
                    detector,
                    last_use: tick,
                });
                None
            }
        };
        let keep = self.index(brand).expect("just set");
        let evicted = self.evict_for(keep, 0);
        (old, evicted)
    }
}

/// The index of the first brand whose GS1 prefixes one of `gtins` matches.
pub fn brand_of<'a>(
    gtins: impl IntoIterator<Item = &'a str>,
    prefixes: &[&[String]],
) -> Option<usize> {
    gtins.into_iter().find_map(|g| {
        prefixes
            .iter()
            .position(|ps| ps.iter().any(|p| hallmark_barcode::gs1::in_prefix(g, p)))
    })
}

/// A brand and the GS1 company prefixes of its GTINs.
#[derive(Debug, Clone)]
pub struct BrandPrefixes {
    pub brand: String,
    pub prefixes: Vec<String>,
}

/// How a frame's brand is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A GTIN read in the frame has this brand's GS1 prefix.
    Code(usize),
    /// Every brand's detector looks, and [`Sight`] decides (reading the frame's codes when unsure).
    Sight,
}

impl Route {
    /// The metric label of what decided.
    pub fn by(self) -> &'static str {
        match self {
            Route::Code(_) => "code",
            Route::Sight => "sight",
        }
    }
}

/// Routes a frame by the barcodes read in it: the brand whose GS1 prefix a GTIN matches.
#[derive(Debug, Clone)]
pub struct Router {
    brands: Vec<BrandPrefixes>,
}

impl Router {
    pub fn new(brands: Vec<BrandPrefixes>) -> Router {
        Router { brands }
    }

    pub fn brand(&self, i: usize) -> &str {
        &self.brands[i].brand
    }

    /// The route of GTINs (14-digit) read in one frame.
    pub fn route<'a>(&self, gtins: impl IntoIterator<Item = &'a str>) -> Route {
        let prefixes: Vec<&[String]> = self.brands.iter().map(|b| b.prefixes.as_slice()).collect();
        brand_of(gtins, &prefixes).map_or(Route::Sight, Route::Code)
    }
}

/// How strongly one brand's detector sees its own products in a frame: over the items its detections
/// make (a pack boxed as genuine and as counterfeit is one item), the sum of each item's best score.
/// Another brand's detector on the same frame sees nothing, or weak boxes on packs it does not know.
pub fn sight_score(detections: &[Detection]) -> f32 {
    crate::verdict::group(detections)
        .iter()
        .map(|item| detections[item.anchor()].score)
        .sum()
}

/// Sight is unsure when the two best brands' [`sight_score`]s are closer than this (about a third of
/// one pack seen with confidence): then a barcode read in the frame decides, when one names a brand.
pub const SIGHT_MARGIN: f32 = 0.3;

/// Decides, by sight, the brand of a frame: the brand whose detector sees its products most strongly
/// ([`sight_score`]); when sight is unsure ([`SIGHT_MARGIN`]), the brand a barcode in the frame names,
/// if one does. Never the previous frame's brand alone: that is only the tie-break, for a frame in which
/// no detector sees anything (an empty view, which every brand calls `no_product`), then the default
/// brand.
pub struct Sight {
    default: usize,
    last: Option<usize>,
}

impl Sight {
    pub fn new(default: usize) -> Sight {
        Sight {
            default,
            last: None,
        }
    }

    /// The brand (an index into `scores`) of a frame whose brands' sight scores are `scores`, and what
    /// decided; `by_code` reads the frame's barcodes, only when sight is unsure.
    pub fn choose(
        &mut self,
        scores: &[f32],
        by_code: impl FnOnce() -> Option<usize>,
    ) -> (usize, Route) {
        let mut ranked: Vec<f32> = scores.to_vec();
        ranked.sort_by(|a, b| b.total_cmp(a));
        let (best, second) = (
            ranked.first().copied().unwrap_or(0.0),
            ranked.get(1).copied().unwrap_or(0.0),
        );
        let (chosen, route) = if best <= 0.0 {
            (self.last.unwrap_or(self.default), Route::Sight)
        } else if let Some(i) = (best - second < SIGHT_MARGIN)
            .then(by_code)
            .flatten()
            .filter(|&i| i < scores.len())
        {
            (i, Route::Code(i))
        } else {
            let i = match self.last {
                Some(l) if scores.get(l) == Some(&best) => l,
                _ => scores
                    .iter()
                    .position(|&s| s == best)
                    .unwrap_or(self.default),
            };
            (i, Route::Sight)
        };
        self.last = Some(chosen);
        (chosen, route)
    }

    /// A frame was routed to `brand` otherwise (by a code).
    pub fn settle(&mut self, brand: usize) {
        self.last = Some(brand);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(budget: u64) -> Registry<&'static str, String> {
        let mut r = Registry::new(budget);
        for b in ["a", "b", "c"] {
            r.add(b, b, 10);
        }
        r
    }

    fn load(s: &&str) -> Result<String, String> {
        Ok(format!("detector {s}"))
    }

    #[test]
    fn brands_load_on_demand_and_the_least_recently_used_goes_first() {
        let mut r = registry(20);
        assert!(r.loaded().is_empty());
        let (d, l) = r.ensure_loaded("a", load).unwrap().unwrap();
        assert_eq!(d, "detector a");
        assert!(l.built_in.is_some() && l.evicted.is_empty());
        r.ensure_loaded("b", load).unwrap().unwrap();
        // Used again: built once.
        let (_, l) = r.ensure_loaded("a", load).unwrap().unwrap();
        assert_eq!(l, Loaded::default());
        assert_eq!(r.loaded(), ["a", "b"]);
        // c needs room: b was used longest ago.
        let (_, l) = r.ensure_loaded("c", load).unwrap().unwrap();
        assert_eq!(l.evicted, ["b"]);
        assert_eq!(r.loaded(), ["a", "c"]);
        assert_eq!((r.loads, r.evictions), (3, 1));
        assert_eq!(r.in_memory(), 20);
        assert!(r.ensure_loaded("d", load).is_none(), "not served");
    }

    #[test]
    fn a_budget_for_one_keeps_only_the_brand_in_use() {
        let mut r = registry(15);
        for b in ["a", "b", "a", "a", "c", "b"] {
            let (d, _) = r.ensure_loaded(b, load).unwrap().unwrap();
            assert_eq!(*d, format!("detector {b}"));
            assert_eq!(r.loaded(), [b]);
        }
        assert_eq!((r.loads, r.evictions), (5, 4));
        // A budget below one model still serves the brand asked for.
        let mut r = registry(5);
        r.ensure_loaded("c", load).unwrap().unwrap();
        assert_eq!(r.loaded(), ["c"]);
    }

    #[test]
    fn a_failed_load_leaves_the_brand_unloaded_and_is_reported() {
        let mut r = registry(100);
        let e = r
            .ensure_loaded("a", |_| Err::<String, _>("bad model"))
            .unwrap()
            .unwrap_err();
        assert_eq!(e, "bad model");
        assert!(r.loaded().is_empty());
        assert_eq!(r.loads, 0);
    }

    #[test]
    fn replacing_a_brand_swaps_its_detector_and_keeps_within_the_budget() {
        let mut r = registry(20);
        r.ensure_loaded("a", load).unwrap().unwrap();
        r.ensure_loaded("b", load).unwrap().unwrap();
        let (old, evicted) = r.replace("a", "a2", Some("new a".into()), 10);
        assert_eq!(old, Some(("a", Some("detector a".to_string()))));
        assert!(evicted.is_empty());
        assert_eq!(r.source("a"), Some(&"a2"));
        // A bigger model: b goes.
        let (_, evicted) = r.replace("a", "a3", Some("big a".into()), 15);
        assert_eq!(evicted, ["b"]);
        let (d, l) = r.ensure_loaded("a", load).unwrap().unwrap();
        assert_eq!((d.as_str(), l), ("big a", Loaded::default()));
    }

    fn router() -> Router {
        Router::new(vec![
            BrandPrefixes {
                brand: "northwind".into(),
                prefixes: vec!["9501101".into()],
            },
            BrandPrefixes {
                brand: "aurora".into(),
                prefixes: vec!["0614141".into()],
            },
        ])
    }

    #[test]
    fn a_gtin_routes_to_its_brand_and_a_frame_without_one_is_decided_by_sight() {
        let r = router();
        assert_eq!(r.route([]), Route::Sight, "nothing read");
        assert_eq!(r.route(["00614141200283"]), Route::Code(1));
        assert_eq!(r.brand(1), "aurora");
        assert_eq!(r.route(["12345678901231"]), Route::Sight, "unknown prefix");
        assert_eq!(r.route(["09501101530003"]), Route::Code(0));
        assert_eq!(
            r.route(["00000000000000", "00614141200115"]),
            Route::Code(1),
            "the first GTIN with a known prefix"
        );
    }

    #[test]
    fn sight_picks_the_brand_that_sees_its_products_best_never_the_last_brand_alone() {
        let mut s = Sight::new(0);
        let unread = || panic!("a sure sight reads no code");
        let no_code = || None;
        assert_eq!(
            s.choose(&[0.0, 0.0], unread),
            (0, Route::Sight),
            "nothing seen, nothing before: the default"
        );
        s.settle(1);
        assert_eq!(
            s.choose(&[0.9, 0.3], unread).0,
            0,
            "the last brand does not win by being last"
        );
        assert_eq!(
            s.choose(&[0.0, 0.0], unread).0,
            0,
            "an empty view stays with the last brand"
        );
        s.settle(1);
        assert_eq!(s.choose(&[0.0, 0.0], unread).0, 1);
        assert_eq!(
            s.choose(&[0.5, 0.5], no_code).0,
            1,
            "a tie without a code goes to the last brand"
        );
        assert_eq!(s.choose(&[0.2, 0.5, 1.4], unread), (2, Route::Sight));
    }

    #[test]
    fn an_unsure_sight_reads_the_codes_and_a_code_decides() {
        let mut s = Sight::new(0);
        assert_eq!(s.choose(&[0.74, 0.72], || Some(1)), (1, Route::Code(1)));
        assert_eq!(
            s.choose(&[0.74, 0.72], || None),
            (0, Route::Sight),
            "no code: the better sight"
        );
        assert_eq!(
            s.choose(&[0.95, 0.5], || Some(1)),
            (0, Route::Sight),
            "a margin of 0.45 is sure: no code read"
        );
        assert_eq!(
            s.choose(&[0.74, 0.72], || Some(7)).0,
            0,
            "a code of no served brand is ignored"
        );
    }

    #[test]
    fn a_sight_score_counts_each_pack_once_at_its_best() {
        let d = |class, score, x: f32| Detection {
            class,
            score,
            bbox: [x, 0.0, x + 100.0, 100.0],
        };
        // One pack boxed as genuine (0.9) and counterfeit (0.3), and a second pack (0.8).
        let score = sight_score(&[d(0, 0.9, 0.0), d(1, 0.3, 2.0), d(0, 0.8, 300.0)]);
        assert!((score - 1.7).abs() < 1e-6, "{score}");
        assert_eq!(sight_score(&[]), 0.0);
    }
}
