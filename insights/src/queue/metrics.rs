//! Counters for Prometheus: plain atomics, shared by a queue and its consumers, counting what
//! this process did (each process exports its own; the dashboard sums them).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct QueueCounters {
    pub(crate) enqueued: AtomicU64,
    pub(crate) acked: AtomicU64,
    /// Acks of an entry someone else had already settled: the job ran twice.
    pub(crate) duplicates: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) promoted: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) reclaimed: AtomicU64,
}

impl QueueCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> QueueMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        QueueMetrics {
            enqueued: get(&self.enqueued),
            acked: get(&self.acked),
            duplicates: get(&self.duplicates),
            retried: get(&self.retried),
            promoted: get(&self.promoted),
            dead_lettered: get(&self.dead_lettered),
            reclaimed: get(&self.reclaimed),
        }
    }
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueMetrics {
    pub enqueued: u64,
    pub acked: u64,
    pub duplicates: u64,
    pub retried: u64,
    pub promoted: u64,
    pub dead_lettered: u64,
    pub reclaimed: u64,
}
