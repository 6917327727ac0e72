//! The insights job queue on Redis Streams with consumer groups.
//!
//! Keys (one hash tag, so the Lua scripts also work on Redis Cluster), for prefix `p`:
//! - `{pqueue}:stream`: jobs ready to run; each worker group reads it through a consumer
//!   group, so several workers on several machines share the work, each entry going to one.
//! - `{pqueue}:delayed`: a sorted set of retries (and delayed jobs) scored by due time;
//!   [`Queue::promote_due`] moves due ones back onto the stream (every [`Consumer::next`]
//!   calls it, so no separate scheduler is needed).
//! - `{pqueue}:dead`: the dead-letter stream (reason, error, attempts, time, the job).
//!
//! Life of a job: [`Queue::enqueue`] → [`Consumer::next`] → the worker then either
//! [`Consumer::ack`]s (XACK + XDEL: a finished job leaves the stream, so the stream only
//! holds unfinished work and never needs trimming; hence one consumer group per queue, as a
//! second group would lose the entries the first one deletes), [`Consumer::retry`]s (acked and re-added
//! after an exponential backoff, or dead-lettered after `max_attempts`) or
//! [`Consumer::reject`]s (dead-lettered now). A worker that dies leaves its entry pending;
//! after `visibility_timeout` another consumer reclaims it (XAUTOCLAIM). Long jobs call
//! [`Consumer::extend`] to say they are alive.
//!
//! Delivery is at least once; exactly once is impossible with Streams (a worker can finish
//! the work and die before its ack, or stall past the timeout while another takes over).
//! [`Job::id`] is stable across deliveries and retries: workers make their effects
//! idempotent on it (or on the call and stage). [`Consumer::ack`] returns `false` when the
//! entry had already been settled by someone else, which is how a duplicate run shows.
//!
//! Per-stage status on the call row belongs to the worker: the return values
//! ([`RetryOutcome`], [`DeadLettered`]) and [`Consumer::on_dead_letter`] (for entries
//! dead-lettered inside `next`, e.g. poison) tell it what to record.

mod config;
mod consumer;
mod dead_letter;
mod error;
mod job;
mod metrics;
mod reply;
mod retry;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;

pub use config::QueueConfig;
pub use consumer::{Consumer, DeadLettered, Delivery, RetryOutcome};
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use error::QueueError;
pub use job::Job;
pub use metrics::{QueueCounters, QueueMetrics};
pub use retry::backoff_delay;

use metrics::QueueCounters as Counters;
use scripts::Scripts;

/// How long one non-blocking command may take before Redis counts as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Names of the queue's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    pub stream: String,
    pub delayed: String,
    pub dead: String,
}

impl QueueKeys {
    pub fn new(prefix: &str) -> Self {
        let tag = format!("{{{prefix}queue}}");
        Self {
            stream: format!("{tag}:stream"),
            delayed: format!("{tag}:delayed"),
            dead: format!("{tag}:dead"),
        }
    }
}

/// What is waiting, for health pages and gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Entries in the stream (not yet acked: new or being worked on).
    pub stream: u64,
    /// Taken by a consumer of the group and not yet acked.
    pub pending: u64,
    /// Waiting for their retry time.
    pub delayed: u64,
    pub dead: u64,
}

pub(crate) struct Shared {
    pub client: Client,
    pub keys: QueueKeys,
    pub config: QueueConfig,
    pub counters: Counters,
    pub scripts: Scripts,
}

/// A handle on one queue; cheap to clone, shares one Redis connection and the counters.
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
}

/// Connects a client and waits (up to 5 s) for its first connection; it then reconnects by
/// itself. The URL may hold a password: errors only say it is bad.
pub(crate) async fn connect_client(client: &Client) -> Result<(), QueueError> {
    client.connect();
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.wait_for_connect())
        .await
        .map_err(|_| QueueError::Unavailable("cannot connect to Redis within 5 s".into()))
        .and_then(|r| r.map_err(QueueError::from));
    if let Err(e) = connected {
        // Stop its reconnect loop: nobody will use this client.
        let _ = tokio::time::timeout(Duration::from_secs(1), client.quit()).await;
        return Err(e);
    }
    Ok(())
}

impl Queue {
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Self, QueueError> {
        Self::connect_with(redis_url, prefix, QueueConfig::default()).await
    }

    pub async fn connect_with(
        redis_url: &str,
        prefix: &str,
        config: QueueConfig,
    ) -> Result<Self, QueueError> {
        let redis_config = Config::from_url(redis_url)
            .map_err(|_| QueueError::Unavailable("the Redis URL is not valid".into()))?;
        let client = Builder::from_config(redis_config)
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            .with_connection_config(|c| c.connection_timeout = CONNECT_TIMEOUT)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build()?;
        connect_client(&client).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                keys: QueueKeys::new(prefix),
                config,
                counters: Counters::default(),
                scripts: Scripts::new(),
            }),
        })
    }

    pub fn keys(&self) -> &QueueKeys {
        &self.shared.keys
    }

    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    /// What this process did so far.
    pub fn metrics(&self) -> QueueMetrics {
        self.shared.counters.snapshot()
    }

    /// Adds a job to the stream now; returns its stream id. The job's `attempt` is kept
    /// (at least 1).
    pub async fn enqueue(&self, job: &Job) -> Result<String, QueueError> {
        let id: String = self
            .shared
            .client
            .xadd(
                &self.shared.keys.stream,
                false,
                None::<()>,
                "*",
                job.to_fields(),
            )
            .await?;
        Counters::add(&self.shared.counters.enqueued, 1);
        Ok(id)
    }

    /// Adds a job that becomes visible after `delay` (Redis time).
    pub async fn enqueue_after(&self, job: &Job, delay: Duration) -> Result<(), QueueError> {
        let member = delayed_member(&job.to_fields())?;
        let _: i64 = self
            .shared
            .scripts
            .schedule
            .run(
                &self.shared.client,
                vec![self.shared.keys.delayed.clone()],
                vec![delay_ms(delay).to_string(), member],
            )
            .await?;
        Counters::add(&self.shared.counters.enqueued, 1);
        Ok(())
    }

    /// Moves due delayed jobs back onto the stream; returns how many. Atomic (one script),
    /// so concurrent callers never promote a job twice.
    pub async fn promote_due(&self) -> Result<u64, QueueError> {
        promote_due(&self.shared).await
    }

    /// A consumer named `consumer_name` (unique per worker, e.g. host + pid) in `group`
    /// (created if missing, starting from the oldest entry so nothing enqueued before is
    /// skipped). It gets its own connection: blocking reads must not stall other commands.
    pub async fn consumer(&self, group: &str, consumer_name: &str) -> Result<Consumer, QueueError> {
        create_group(&self.shared, group).await?;
        let blocking = self.shared.client.clone_new();
        connect_client(&blocking).await?;
        Ok(Consumer::new(
            self.shared.clone(),
            blocking,
            group.to_string(),
            consumer_name.to_string(),
        ))
    }

    /// Sizes of the stream, the group's pending list, the delayed set and the dead letters.
    pub async fn depth(&self, group: &str) -> Result<QueueDepth, QueueError> {
        let client = &self.shared.client;
        let keys = &self.shared.keys;
        let stream: u64 = client.xlen(&keys.stream).await?;
        let delayed: u64 = client.zcard(&keys.delayed).await?;
        let dead: u64 = client.xlen(&keys.dead).await?;
        // XPENDING summary: [count, min id, max id, consumers]; NOGROUP when nobody read yet.
        let pending = match client
            .xpending::<Value, _, _, _>(&keys.stream, group, ())
            .await
        {
            Ok(summary) => summary
                .into_array()
                .first()
                .and_then(Value::as_u64)
                .unwrap_or(0),
            Err(e) if e.details().contains("NOGROUP") => 0,
            Err(e) => return Err(e.into()),
        };
        Ok(QueueDepth {
            stream,
            pending,
            delayed,
            dead,
        })
    }

    /// The oldest `count` dead letters.
    pub async fn dead_letters(&self, count: u64) -> Result<Vec<DeadLetter>, QueueError> {
        let raw: Value = self
            .shared
            .client
            .xrange(&self.shared.keys.dead, "-", "+", Some(count))
            .await?;
        Ok(reply::entries(raw)?
            .into_iter()
            .map(dead_letter::decode)
            .collect())
    }
}

pub(crate) async fn promote_due(shared: &Shared) -> Result<u64, QueueError> {
    let keys = &shared.keys;
    let moved: u64 = shared
        .scripts
        .promote_due
        .run(
            &shared.client,
            vec![keys.delayed.clone(), keys.stream.clone(), keys.dead.clone()],
            vec![
                shared.config.promote_batch.max(1).to_string(),
                shared.config.dead_letter_max_len.to_string(),
            ],
        )
        .await?;
    Counters::add(&shared.counters.promoted, moved);
    Ok(moved)
}

pub(crate) async fn create_group(shared: &Shared, group: &str) -> Result<(), QueueError> {
    let created: Result<Value, _> = shared
        .client
        .xgroup_create(&shared.keys.stream, group, "0", true)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A delayed entry: the stream fields as a JSON list of strings, which the promote script
/// unpacks straight into XADD.
pub(crate) fn delayed_member(fields: &[(&str, String)]) -> Result<String, QueueError> {
    let flat: Vec<&str> = fields.iter().flat_map(|(k, v)| [*k, v.as_str()]).collect();
    serde_json::to_string(&flat).map_err(|e| QueueError::Encode(e.to_string()))
}

pub(crate) fn delay_ms(delay: Duration) -> u64 {
    delay.as_millis().min(u64::MAX as u128) as u64
}
