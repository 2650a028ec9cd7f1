//! Recent history for telemetry: a bounded ring of durations giving percentiles, and a frame-rate
//! estimate over the last few seconds. Pure: time comes in as arguments, so both are testable without
//! sleeping. The Prometheus histograms keep the long-run view; these answer "how is it now".

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Latency percentiles in milliseconds (the telemetry payload's).
pub use hallmark_proto::telemetry::Percentiles;

/// The last `capacity` durations of one stage (the oldest is forgotten first).
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    capacity: usize,
    samples: VecDeque<Duration>,
}

impl LatencyWindow {
    /// At least one sample is kept.
    pub fn new(capacity: usize) -> LatencyWindow {
        let capacity = capacity.max(1);
        LatencyWindow {
            capacity,
            samples: VecDeque::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, d: Duration) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(d);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Nearest-rank percentiles of the samples held; `None` when there are none. Sorting a copy of a
    /// thousand values costs microseconds and happens once per telemetry period, not per frame.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = self.samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Some(Percentiles {
            p50: nearest_rank(&ms, 0.50),
            p90: nearest_rank(&ms, 0.90),
            p99: nearest_rank(&ms, 0.99),
        })
    }
}

/// The smallest sample with at least `q` of the samples at or below it (`sorted` is not empty).
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Frames per second over the last `span`, from the frames' arrival times (at most `capacity` kept:
/// at higher rates the estimate covers a shorter span, still correct).
#[derive(Debug, Clone)]
pub struct RateWindow {
    span: Duration,
    capacity: usize,
    times: VecDeque<Instant>,
}

impl RateWindow {
    pub fn new(span: Duration, capacity: usize) -> RateWindow {
        RateWindow {
            span,
            capacity: capacity.max(2),
            times: VecDeque::new(),
        }
    }

    pub fn push(&mut self, now: Instant) {
        if self.times.len() == self.capacity {
            self.times.pop_front();
        }
        self.times.push_back(now);
        self.prune(now);
    }

    /// Events per second: the intervals between the events in the span, over the time from the first
    /// of them to `now`. Measuring to `now` (not to the last event) lets the figure fall when frames
    /// stop, reaching 0 once they have all left the span.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.prune(now);
        let (Some(first), n) = (self.times.front(), self.times.len()) else {
            return 0.0;
        };
        let elapsed = now.saturating_duration_since(*first).as_secs_f64();
        if n < 2 || elapsed <= 0.0 {
            return 0.0;
        }
        (n - 1) as f64 / elapsed
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&t) = self.times.front() {
            if now.saturating_duration_since(t) > self.span {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_samples_held() {
        let mut w = LatencyWindow::new(1000);
        assert_eq!(w.percentiles(), None);
        // 1..=100 ms, pushed in reverse so that the window has to sort.
        for v in (1..=100).rev() {
            w.push(ms(v));
        }
        let p = w.percentiles().unwrap();
        assert_eq!((p.p50, p.p90, p.p99), (50.0, 90.0, 99.0));
        let mut one = LatencyWindow::new(10);
        one.push(Duration::from_micros(2500));
        let p = one.percentiles().unwrap();
        assert_eq!((p.p50, p.p90, p.p99), (2.5, 2.5, 2.5));
    }

    #[test]
    fn the_window_forgets_the_oldest_samples_first() {
        let mut w = LatencyWindow::new(4);
        for v in [1000, 1000, 1000, 1000, 1, 2, 3, 4] {
            w.push(ms(v));
        }
        assert_eq!(w.len(), 4);
        let p = w.percentiles().unwrap();
        assert_eq!((p.p50, p.p99), (2.0, 4.0), "the 1 s samples are gone");
        let mut tiny = LatencyWindow::new(0);
        tiny.push(ms(7));
        tiny.push(ms(9));
        assert_eq!(tiny.len(), 1);
    }

    #[test]
    fn rate_is_frames_per_second_and_falls_to_zero_when_frames_stop() {
        let t0 = Instant::now();
        let mut r = RateWindow::new(Duration::from_secs(5), 4096);
        assert_eq!(r.rate(t0), 0.0);
        r.push(t0);
        assert_eq!(r.rate(t0), 0.0, "one frame is no rate");
        // 30 fps for 3 s.
        for i in 1..=90 {
            r.push(t0 + Duration::from_micros(i * 33_333));
        }
        let now = t0 + Duration::from_micros(90 * 33_333);
        assert!((r.rate(now) - 30.0).abs() < 0.1, "{}", r.rate(now));
        // Frames stop: the estimate falls, then is 0 once they have all left the 5 s span.
        let later = now + Duration::from_secs(3);
        assert!(r.rate(later) < 20.0 && r.rate(later) > 0.0);
        assert_eq!(r.rate(now + Duration::from_secs(6)), 0.0);
    }

    #[test]
    fn rate_is_right_when_the_capacity_bounds_the_span() {
        let t0 = Instant::now();
        let mut r = RateWindow::new(Duration::from_secs(5), 100);
        // 1000 fps for 1 s: only the last 100 are kept, the rate is still 1000.
        for i in 0..1000 {
            r.push(t0 + Duration::from_millis(i));
        }
        let rate = r.rate(t0 + Duration::from_millis(999));
        assert!((rate - 1000.0).abs() < 1.0, "{rate}");
    }
}
