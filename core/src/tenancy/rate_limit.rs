//! Requests per minute per tenant: a token bucket per key, in this process's memory.
//!
//! A bucket holds up to `per_minute` tokens (a tenant may spend its whole minute at once)
//! and refills at `per_minute / 60` tokens a second. A request takes one token; with none
//! left it is refused with the time until the next one. Buckets that have been idle long
//! enough to be full again are swept, since a full bucket is the same as a missing one.
//! Limits are per instance: with N instances behind a balancer a tenant gets up to N times
//! its rate, which is what a per-instance protection is for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// How often at most the idle buckets are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    by_key: HashMap<Uuid, Bucket>,
    last_sweep: Instant,
}

/// Per-tenant token buckets. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    default_per_minute: u32,
    inner: Arc<Mutex<Buckets>>,
}

impl RateLimiter {
    /// `default_per_minute` applies to tenants without a rate of their own (at least 1).
    pub fn new(default_per_minute: u32) -> Self {
        Self {
            default_per_minute: default_per_minute.max(1),
            inner: Arc::new(Mutex::new(Buckets {
                by_key: HashMap::new(),
                last_sweep: Instant::now(),
            })),
        }
    }

    pub fn default_per_minute(&self) -> u32 {
        self.default_per_minute
    }

    /// Takes one request from `tenant`'s bucket; `Err(retry_after)` when it is empty.
    /// `per_minute` is the tenant's own rate (`None`: the default).
    pub fn check(&self, tenant: Uuid, per_minute: Option<u32>) -> Result<(), Duration> {
        self.check_at(tenant, per_minute, Instant::now())
    }

    /// [`RateLimiter::check`] at a given instant (tests drive the clock).
    pub fn check_at(
        &self,
        tenant: Uuid,
        per_minute: Option<u32>,
        now: Instant,
    ) -> Result<(), Duration> {
        let capacity = f64::from(per_minute.unwrap_or(self.default_per_minute).max(1));
        let per_second = capacity / 60.0;
        let mut buckets = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(buckets.last_sweep) >= SWEEP_EVERY {
            buckets.last_sweep = now;
            // Idle for a whole minute: refilled completely at any rate.
            buckets
                .by_key
                .retain(|_, b| now.saturating_duration_since(b.updated) < SWEEP_EVERY);
        }
        let bucket = buckets.by_key.entry(tenant).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        // `min` also applies a lowered rate at once.
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }

    /// Buckets held (tests of the sweep).
    pub fn tracked(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_spends_its_minute_then_waits_for_the_refill() {
        let limiter = RateLimiter::new(600);
        let (t, start) = (Uuid::new_v4(), Instant::now());
        for _ in 0..3 {
            assert!(limiter.check_at(t, Some(3), start).is_ok());
        }
        let wait = limiter.check_at(t, Some(3), start).unwrap_err();
        // 3 a minute: one token every 20 s.
        assert!((wait.as_secs_f64() - 20.0).abs() < 0.01, "{wait:?}");
        let later = start + Duration::from_secs(10);
        let wait = limiter.check_at(t, Some(3), later).unwrap_err();
        assert!((wait.as_secs_f64() - 10.0).abs() < 0.01, "{wait:?}");
        assert!(limiter
            .check_at(t, Some(3), start + Duration::from_secs(20))
            .is_ok());
        assert!(limiter
            .check_at(t, Some(3), start + Duration::from_secs(20))
            .is_err());
    }

    #[test]
    fn tenants_have_separate_buckets_and_the_default_rate() {
        let limiter = RateLimiter::new(2);
        let (a, b, now) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        assert!(limiter.check_at(a, None, now).is_ok());
        assert!(limiter.check_at(a, None, now).is_ok());
        assert!(limiter.check_at(a, None, now).is_err());
        assert!(limiter.check_at(b, None, now).is_ok());
        assert!(limiter.check_at(b, Some(100), now).is_ok());
    }

    #[test]
    fn a_lowered_rate_applies_at_once() {
        let limiter = RateLimiter::new(600);
        let (t, now) = (Uuid::new_v4(), Instant::now());
        assert!(limiter.check_at(t, Some(1000), now).is_ok());
        // 999 tokens left, but the new rate holds at most 1.
        assert!(limiter.check_at(t, Some(1), now).is_ok());
        assert!(limiter.check_at(t, Some(1), now).is_err());
    }

    #[test]
    fn idle_buckets_are_swept() {
        let limiter = RateLimiter::new(60);
        let now = Instant::now();
        for _ in 0..5 {
            limiter.check_at(Uuid::new_v4(), None, now).unwrap();
        }
        assert_eq!(limiter.tracked(), 5);
        let busy = Uuid::new_v4();
        limiter
            .check_at(busy, None, now + Duration::from_secs(59))
            .unwrap();
        limiter
            .check_at(busy, None, now + Duration::from_secs(61))
            .unwrap();
        assert_eq!(limiter.tracked(), 1);
    }
}
