//! Retry delays: exponential backoff with jitter.

use std::time::Duration;

use rand::Rng;

/// Delay before attempt `failed_attempt + 1`: `base * 2^(failed_attempt - 1)` capped at
/// `cap`, then "equal jitter" (a random point in the upper half) so that jobs failing
/// together (a provider outage) do not all come back at the same instant, while no retry
/// comes sooner than half its nominal delay.
pub fn backoff_delay(failed_attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exponent = failed_attempt.saturating_sub(1).min(31);
    let nominal = base.saturating_mul(1u32 << exponent).min(cap);
    let half = nominal / 2;
    let jitter_ms = half.as_millis().min(u64::MAX as u128) as u64;
    let extra = if jitter_ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    };
    (nominal - half) + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        for (attempt, nominal_s) in [(1u32, 1u64), (2, 2), (3, 4), (5, 16), (9, 256), (10, 300)] {
            let nominal = Duration::from_secs(nominal_s);
            for _ in 0..50 {
                let d = backoff_delay(attempt, base, cap);
                assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
            }
        }
        // Huge attempt numbers neither overflow nor exceed the cap.
        assert!(backoff_delay(u32::MAX, base, cap) <= cap);
        assert_eq!(backoff_delay(3, Duration::ZERO, cap), Duration::ZERO);
    }
}
