//! Lock-free Prometheus metric primitives and text exposition.
//!
//! Small on purpose: counters, gauges and fixed-bucket histograms backed by atomics, so
//! recording on the audio path costs a few nanoseconds and never blocks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram with fixed upper bounds (in the unit the name says, e.g. seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in micro-units, to keep it an integer atomic.
    sum_micros: AtomicU64,
}

/// Latency buckets in seconds, from 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Writes metrics in the Prometheus text format.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn counter(&mut self, name: &str, help: &str, c: &Counter) {
        let _ = writeln!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            c.get()
        );
    }

    pub fn gauge(&mut self, name: &str, help: &str, g: &Gauge) {
        let _ = writeln!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
            g.get()
        );
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in h.bounds.iter().zip(&h.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(self.out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = h.count();
        let _ = writeln!(self.out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(self.out, "{name}_sum {sum}\n{name}_count {count}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let mut e = Exposition::default();
        e.histogram("x_seconds", "x", &h);
        let text = e.finish();
        assert!(text.contains("x_seconds_bucket{le=\"0.1\"} 1"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"1\"} 2"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("x_seconds_count 3"), "{text}");
    }
}
