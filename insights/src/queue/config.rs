//! Queue tuning. The defaults suit call processing (a job takes seconds to minutes); tests
//! shrink the timings.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// A delivery not acked (nor extended) for this long is taken to belong to a dead worker
    /// and is handed to another consumer.
    pub visibility_timeout: Duration,
    /// First retry delay; doubles with every attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// Attempts (first run included) before a failing job goes to the dead-letter stream.
    pub max_attempts: u32,
    /// Deliveries of one stream entry (first read plus reclaims) before it is dead-lettered:
    /// a job that kills every worker that touches it must not be reclaimed forever.
    pub max_deliveries: u64,
    /// How many due delayed jobs one `promote_due` call moves at most.
    pub promote_batch: u32,
    /// Approximate cap on the dead-letter stream (`XADD MAXLEN ~`), so it cannot grow
    /// without bound. The job stream itself is never capped: that would drop work.
    pub dead_letter_max_len: u64,
    /// Longest error text kept in a dead letter.
    pub max_error_len: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(5 * 60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(5 * 60),
            max_attempts: 5,
            max_deliveries: 5,
            promote_batch: 100,
            dead_letter_max_len: 100_000,
            max_error_len: 2_000,
        }
    }
}
