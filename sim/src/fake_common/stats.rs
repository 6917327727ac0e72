//! Building blocks of the fakes' stats recorders, which every session of a fake shares:
//! counters are atomics, lists and the rest sit behind a mutex held only to push or copy,
//! and lists stop growing at a cap so a long load run cannot eat the memory.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Longest kept list (protocol errors, client messages, texts, …).
pub(crate) const MAX_RECORDS: usize = 10_000;

/// Appends `item` unless `list` already holds `MAX_RECORDS`.
pub(crate) fn push_capped<T>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_RECORDS {
        list.push(item);
    }
}

/// Locks `m` even if a panic elsewhere poisoned it: what it guards (stats, faults,
/// tokens) stays usable, and hiding it would hide the stats.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Sessions opened so far and still open.
#[derive(Default)]
pub(crate) struct Sessions {
    opened: AtomicU64,
    active: AtomicU64,
}

impl Sessions {
    /// Runs one session, counted open for as long as `session` runs.
    pub async fn during<F: Future>(&self, session: F) -> F::Output {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        let out = session.await;
        // Saturating: never wraps even if the counts went wrong.
        let _ = self
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
        out
    }

    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }
}

/// Audio length summed in microseconds, exact across rates.
#[derive(Default)]
pub(crate) struct AudioTime(AtomicU64);

impl AudioTime {
    pub fn add(&self, samples: usize, rate: u32) {
        let us = samples as u64 * 1_000_000 / u64::from(rate.max(1));
        self.0.fetch_add(us, Ordering::Relaxed);
    }

    pub fn ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed) / 1000
    }
}

/// `N` counters that only go up by one, indexed by a fake's `Count` enum.
pub(crate) struct Counters<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Counters<N> {
    /// Counts one; an index past the end is ignored.
    pub fn add(&self, index: usize) {
        if let Some(c) = self.0.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn get(&self, index: usize) -> u64 {
        self.0.get(index).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_count_while_they_run() {
        let s = Sessions::default();
        let inside = s.during(async { (s.opened(), s.active()) }).await;
        assert_eq!(inside, (1, 1));
        assert_eq!((s.opened(), s.active()), (1, 0));
    }

    #[test]
    fn audio_time_counters_and_caps() {
        let t = AudioTime::default();
        t.add(480, 24_000);
        t.add(480, 24_000);
        t.add(160, 8_000);
        assert_eq!(t.ms(), 60);
        let c = Counters::<2>::default();
        c.add(1);
        c.add(1);
        c.add(5);
        assert_eq!((c.get(0), c.get(1), c.get(5)), (0, 2, 0));
        let mut list: Vec<usize> = (0..MAX_RECORDS).collect();
        push_capped(&mut list, 1);
        assert_eq!(list.len(), MAX_RECORDS);
        let m = Mutex::new(1);
        let _ = std::panic::catch_unwind(|| {
            let _g = m.lock();
            panic!("poisons the lock");
        });
        assert_eq!(*lock(&m), 1);
    }
}
