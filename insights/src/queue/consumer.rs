//! A consumer in a group: takes jobs (reclaiming those of dead workers first) and settles
//! them (ack, retry, reject).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fred::prelude::*;

use super::dead_letter::{self, DeadLetterReason};
use super::job::Job;
use super::metrics::QueueCounters as Counters;
use super::reply::{self, RawEntry};
use super::retry::backoff_delay;
use super::{
    create_group, delay_ms, delayed_member, promote_due, QueueError, Shared, COMMAND_TIMEOUT,
};

/// A job handed to this consumer. Settle it with [`Consumer::ack`], [`Consumer::retry`] or
/// [`Consumer::reject`]; dropping it unsettled leaves it pending, and another consumer
/// reclaims it after the visibility timeout (as if this worker had died).
pub struct Delivery {
    pub job: Job,
    /// Id of the entry in the job stream.
    pub stream_id: String,
    /// 1 on the first delivery of this entry, more when it was reclaimed from a consumer
    /// that did not settle it (the job may have partly run: check for earlier effects).
    pub delivery_count: u64,
    /// Taken over from another consumer after its visibility timeout.
    pub reclaimed: bool,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// `fields` repeat the payload: Debug leaves them out (the job's Debug hides the payload).
impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("job", &self.job)
            .field("stream_id", &self.stream_id)
            .field("delivery_count", &self.delivery_count)
            .field("reclaimed", &self.reclaimed)
            .finish()
    }
}

/// A job that went to the dead-letter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLettered {
    /// Id in the dead-letter stream.
    pub dead_letter_id: String,
    pub reason: DeadLetterReason,
    pub error: String,
    pub attempts: u32,
    /// The job, when it could be decoded (not for poison).
    pub job: Option<Job>,
    /// Id the job had in the job stream.
    pub source_id: String,
}

/// What [`Consumer::retry`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryOutcome {
    /// Attempt `attempt` will become visible at `due_at` (Redis time).
    Scheduled {
        attempt: u32,
        delay: Duration,
        due_at: DateTime<Utc>,
    },
    /// Out of attempts: given up.
    DeadLettered(DeadLettered),
    /// Someone else had already settled this entry (a duplicate delivery): nothing done.
    AlreadySettled,
}

type DeadLetterHook = Box<dyn Fn(&DeadLettered) + Send + Sync>;

pub struct Consumer {
    shared: Arc<Shared>,
    /// Own connection for the blocking XREADGROUP.
    blocking: Client,
    group: String,
    name: String,
    /// Where the next XAUTOCLAIM scan resumes, so a long pending list is covered in turn.
    reclaim_cursor: String,
    on_dead_letter: Option<DeadLetterHook>,
}

impl Consumer {
    pub(crate) fn new(shared: Arc<Shared>, blocking: Client, group: String, name: String) -> Self {
        Self {
            shared,
            blocking,
            group,
            name,
            reclaim_cursor: "0-0".into(),
            on_dead_letter: None,
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Called for every entry this consumer dead-letters inside [`Consumer::next`] (poison,
    /// too many deliveries), so the worker can mark the call row. Keep it quick (e.g. send
    /// on a channel).
    pub fn on_dead_letter(&mut self, hook: impl Fn(&DeadLettered) + Send + Sync + 'static) {
        self.on_dead_letter = Some(Box::new(hook));
    }

    /// The next job: first promotes due retries, then reclaims one entry idle longer than
    /// the visibility timeout (its worker is presumed dead), else waits up to `block` for a
    /// new one (`Duration::ZERO`: no wait). `None` when there is nothing to do. Entries that
    /// cannot be decoded, or were delivered too often, are dead-lettered here and skipped.
    pub async fn next(&mut self, block: Duration) -> Result<Option<Delivery>, QueueError> {
        promote_due(&self.shared).await?;
        loop {
            if let Some(entry) = self.reclaim_one().await? {
                Counters::add(&self.shared.counters.reclaimed, 1);
                let deliveries = self.delivery_count(&entry.id).await?;
                if let Some(delivery) = self.admit(entry, deliveries, true).await? {
                    return Ok(Some(delivery));
                }
                continue;
            }
            let Some(entry) = self.read_new(block).await? else {
                return Ok(None);
            };
            if let Some(delivery) = self.admit(entry, 1, false).await? {
                return Ok(Some(delivery));
            }
        }
    }

    /// Decodes an entry into a delivery, or dead-letters it (then `None`).
    async fn admit(
        &self,
        entry: RawEntry,
        delivery_count: u64,
        reclaimed: bool,
    ) -> Result<Option<Delivery>, QueueError> {
        let job = match Job::from_fields(&entry.fields) {
            Ok(job) => job,
            Err(reason) => {
                self.dead_letter_in_next(&entry, DeadLetterReason::Poison, &reason, 0, None)
                    .await?;
                return Ok(None);
            }
        };
        if delivery_count > self.shared.config.max_deliveries {
            let error = format!(
                "delivered {delivery_count} times without being settled; \
                 the job may crash or hang its workers"
            );
            let attempt = job.attempt;
            self.dead_letter_in_next(
                &entry,
                DeadLetterReason::TooManyDeliveries,
                &error,
                attempt,
                Some(job),
            )
            .await?;
            return Ok(None);
        }
        Ok(Some(Delivery {
            job,
            stream_id: entry.id,
            delivery_count,
            reclaimed,
            fields: entry.fields,
        }))
    }

    async fn dead_letter_in_next(
        &self,
        entry: &RawEntry,
        reason: DeadLetterReason,
        error: &str,
        attempts: u32,
        job: Option<Job>,
    ) -> Result<(), QueueError> {
        tracing::warn!(
            stream_id = %entry.id,
            reason = reason.as_str(),
            error,
            "job dead-lettered"
        );
        if let Some(dead) = self
            .dead_letter(&entry.id, &entry.fields, reason, error, attempts, job)
            .await?
        {
            if let Some(hook) = &self.on_dead_letter {
                hook(&dead);
            }
        }
        Ok(())
    }

    async fn reclaim_one(&mut self) -> Result<Option<RawEntry>, QueueError> {
        let min_idle = delay_ms(self.shared.config.visibility_timeout);
        let reply: Result<Value, _> = self
            .shared
            .client
            .xautoclaim(
                &self.shared.keys.stream,
                &self.group,
                &self.name,
                min_idle,
                self.reclaim_cursor.as_str(),
                Some(1),
                false,
            )
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            // The stream key was deleted (and the group with it): nothing pending to reclaim.
            Err(e) if e.details().contains("NOGROUP") => {
                create_group(&self.shared, &self.group).await?;
                self.reclaim_cursor = "0-0".into();
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let (cursor, claimed) = reply::auto_claim(reply)?;
        self.reclaim_cursor = cursor;
        Ok(claimed.into_iter().next())
    }

    async fn delivery_count(&self, id: &str) -> Result<u64, QueueError> {
        let reply: Value = self
            .shared
            .client
            .xpending(&self.shared.keys.stream, &self.group, (id, id, 1))
            .await?;
        // Settled in between: count it as one more than a first delivery.
        Ok(reply::pending_deliveries(reply).unwrap_or(2))
    }

    async fn read_new(&self, block: Duration) -> Result<Option<RawEntry>, QueueError> {
        match self.read_new_once(block).await {
            // The stream key was deleted (and the group with it): recreate and read again.
            Err(QueueError::Unavailable(e)) if e.contains("NOGROUP") => {
                create_group(&self.shared, &self.group).await?;
                self.read_new_once(block).await
            }
            other => other,
        }
    }

    async fn read_new_once(&self, block: Duration) -> Result<Option<RawEntry>, QueueError> {
        let block_ms = delay_ms(block);
        let options = Options {
            timeout: Some(block + COMMAND_TIMEOUT),
            ..Default::default()
        };
        let reply: Value = self
            .blocking
            .with_options(&options)
            .xreadgroup(
                &self.group,
                &self.name,
                Some(1),
                (block_ms > 0).then_some(block_ms),
                false,
                &self.shared.keys.stream,
                ">",
            )
            .await?;
        Ok(reply::read_group(reply)?.into_iter().next())
    }

    /// The job is done: acks and deletes the entry. `false` when someone else had already
    /// settled it (this run was a duplicate).
    pub async fn ack(&self, delivery: &Delivery) -> Result<bool, QueueError> {
        let acked: i64 = self
            .shared
            .scripts
            .ack
            .run(
                &self.shared.client,
                vec![self.shared.keys.stream.clone()],
                vec![self.group.clone(), delivery.stream_id.clone()],
            )
            .await?;
        let counter = if acked == 1 {
            &self.shared.counters.acked
        } else {
            &self.shared.counters.duplicates
        };
        Counters::add(counter, 1);
        Ok(acked == 1)
    }

    /// The attempt failed with `error`: schedules the next one after an exponential
    /// backoff, or dead-letters the job once it has had `max_attempts`.
    pub async fn retry(
        &self,
        delivery: &Delivery,
        error: &str,
    ) -> Result<RetryOutcome, QueueError> {
        let config = &self.shared.config;
        let failed = delivery.job.attempt;
        if failed >= config.max_attempts {
            let dead = self
                .dead_letter(
                    &delivery.stream_id,
                    &delivery.fields,
                    DeadLetterReason::MaxAttempts,
                    error,
                    failed,
                    Some(delivery.job.clone()),
                )
                .await?;
            return Ok(dead.map_or(RetryOutcome::AlreadySettled, RetryOutcome::DeadLettered));
        }
        let mut next = delivery.job.clone();
        next.attempt = failed + 1;
        let delay = backoff_delay(failed, config.backoff_base, config.backoff_cap);
        let keys = &self.shared.keys;
        let due_ms: i64 = self
            .shared
            .scripts
            .retry
            .run(
                &self.shared.client,
                vec![keys.stream.clone(), keys.delayed.clone()],
                vec![
                    self.group.clone(),
                    delivery.stream_id.clone(),
                    delay_ms(delay).to_string(),
                    delayed_member(&next.to_fields())?,
                ],
            )
            .await?;
        if due_ms == 0 {
            Counters::add(&self.shared.counters.duplicates, 1);
            return Ok(RetryOutcome::AlreadySettled);
        }
        Counters::add(&self.shared.counters.retried, 1);
        Ok(RetryOutcome::Scheduled {
            attempt: next.attempt,
            delay,
            due_at: Utc
                .timestamp_millis_opt(due_ms)
                .single()
                .unwrap_or_else(Utc::now),
        })
    }

    /// The job must not be retried (bad input, no consent…): dead-letters it now. `None`
    /// when someone else had already settled it.
    pub async fn reject(
        &self,
        delivery: &Delivery,
        error: &str,
    ) -> Result<Option<DeadLettered>, QueueError> {
        self.dead_letter(
            &delivery.stream_id,
            &delivery.fields,
            DeadLetterReason::Rejected,
            error,
            delivery.job.attempt,
            Some(delivery.job.clone()),
        )
        .await
    }

    /// Heartbeat for a job that runs longer than the visibility timeout: resets its idle
    /// time. `false` when this consumer no longer owns it (reclaimed or settled): the worker
    /// should stop, someone else has the job.
    pub async fn extend(&self, delivery: &Delivery) -> Result<bool, QueueError> {
        let owned: i64 = self
            .shared
            .scripts
            .extend
            .run(
                &self.shared.client,
                vec![self.shared.keys.stream.clone()],
                vec![
                    self.group.clone(),
                    self.name.clone(),
                    delivery.stream_id.clone(),
                ],
            )
            .await?;
        Ok(owned == 1)
    }

    async fn dead_letter(
        &self,
        stream_id: &str,
        fields: &[(Vec<u8>, Vec<u8>)],
        reason: DeadLetterReason,
        error: &str,
        attempts: u32,
        job: Option<Job>,
    ) -> Result<Option<DeadLettered>, QueueError> {
        let config = &self.shared.config;
        let mut args = vec![
            self.group.clone(),
            stream_id.to_string(),
            config.dead_letter_max_len.to_string(),
        ];
        args.extend(dead_letter::fields(
            reason,
            error,
            attempts,
            stream_id,
            fields,
            config.max_error_len,
        ));
        let keys = &self.shared.keys;
        let id: Option<String> = self
            .shared
            .scripts
            .dead_letter
            .run(
                &self.shared.client,
                vec![keys.stream.clone(), keys.dead.clone()],
                args,
            )
            .await?;
        let Some(dead_letter_id) = id else {
            Counters::add(&self.shared.counters.duplicates, 1);
            return Ok(None);
        };
        Counters::add(&self.shared.counters.dead_lettered, 1);
        Ok(Some(DeadLettered {
            dead_letter_id,
            reason,
            error: error.to_string(),
            attempts,
            job,
            source_id: stream_id.to_string(),
        }))
    }
}

/// Closes the consumer's own connection; its unsettled deliveries stay pending and are
/// reclaimed by others after the visibility timeout.
impl Drop for Consumer {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.blocking.clone();
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}
