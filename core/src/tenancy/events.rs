//! The append-only event log: what happened in calls (`call.started`, `turn.completed`,
//! `handoff`, `call.ended`, …), one row each in `events`, aggregated into daily metrics by
//! [`super::metrics`] (seed 002, ADR-003).
//!
//! Services hand events to an [`EventSink`]: `emit` only queues (a call never waits for the
//! database), and a background task writes them in batches, one multi-row insert per tenant
//! in that tenant's scope. When the database is away the batch is kept and retried; what
//! the database can never accept (a foreign agent, a NUL byte) is dropped with a warning so
//! it cannot hold up the rest. [`append`] writes one event inside a caller's transaction.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::db::{Db, DbError, Transaction};

#[cfg(test)]
mod tests;

/// Kinds the services emit.
pub mod kinds {
    pub const CALL_STARTED: &str = "call.started";
    /// `data`: `{"latency_ms": …}`.
    pub const TURN_COMPLETED: &str = "turn.completed";
    /// `data`: `{"reason": …}`.
    pub const HANDOFF: &str = "handoff";
    /// `data`: `{"seconds": …, "reason": …}`; `seconds` is what daily metrics sum.
    pub const CALL_ENDED: &str = "call.ended";
}

/// One event to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub tenant_id: Uuid,
    pub agent_id: Option<Uuid>,
    pub call_id: Option<String>,
    /// Dotted lowercase words: `call.started`, `turn.completed`.
    pub kind: String,
    pub at: DateTime<Utc>,
    /// A JSON object.
    pub data: Value,
}

impl NewEvent {
    /// An event of `kind` happening now, with no agent, call or data.
    pub fn now(tenant_id: Uuid, kind: &str) -> Self {
        Self {
            tenant_id,
            agent_id: None,
            call_id: None,
            kind: kind.to_string(),
            at: Utc::now(),
            data: Value::Object(Default::default()),
        }
    }

    pub fn agent(mut self, agent_id: Uuid) -> Self {
        self.agent_id = Some(agent_id);
        self
    }

    pub fn call(mut self, call_id: impl Into<String>) -> Self {
        self.call_id = Some(call_id.into());
        self
    }

    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = at;
        self
    }

    /// What the table's checks would refuse, found before a round trip: the kind's shape
    /// (the same pattern as `events.kind`'s CHECK) and `data` being an object.
    pub fn validate(&self) -> Result<(), EventError> {
        if !valid_kind(&self.kind) {
            return Err(EventError::Invalid(format!(
                "event kind {:?} is not dotted lowercase words (call.started)",
                truncated(&self.kind)
            )));
        }
        if !self.data.is_object() {
            return Err(EventError::Invalid(format!(
                "event {} data must be a JSON object",
                self.kind
            )));
        }
        Ok(())
    }
}

/// `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`, as in migrations/0001's CHECK on `events.kind`.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.split('.').all(|word| {
            let mut bytes = word.bytes();
            bytes.next().is_some_and(|b| b.is_ascii_lowercase())
                && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// A kind for a log line: a bad one may be long.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Why [`append`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for EventError {
    fn from(e: tokio_postgres::Error) -> Self {
        EventError::Db(DbError::Query(e))
    }
}

const INSERT_ONE: &str = "INSERT INTO events (tenant_id, agent_id, call_id, kind, at, data)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

/// Writes one event in `tx` (opened by `db.with_tenant(event.tenant_id, …)`); returns its id.
pub async fn append(tx: &Transaction<'_>, event: &NewEvent) -> Result<i64, EventError> {
    event.validate()?;
    let statement = tx.prepare_cached(INSERT_ONE).await?;
    let row = tx
        .query_one(
            &statement,
            &[
                &event.tenant_id,
                &event.agent_id,
                &event.call_id,
                &event.kind,
                &event.at,
                &event.data,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Sizes and timing of an [`EventSink`].
#[derive(Debug, Clone, Copy)]
pub struct SinkOptions {
    /// Events queued at most; beyond that `emit` drops (and counts) them.
    pub capacity: usize,
    /// Events written per batch at most.
    pub batch_size: usize,
    /// How long the first event of a batch waits for more.
    pub batch_wait: Duration,
    /// After the last sink is dropped, how long a batch the database refuses is still
    /// retried before it is given up.
    pub shutdown_grace: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            batch_size: 500,
            batch_wait: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Counters of an [`EventSink`], since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Accepted by `emit` (queued).
    pub queued: u64,
    /// Committed to the database.
    pub written: u64,
    /// Dropped because the queue was full.
    pub dropped_full: u64,
    /// Dropped because they can never be written (bad kind or data, foreign agent, …).
    pub rejected: u64,
    /// Dropped because the sink shut down while the database was away.
    pub lost_at_shutdown: u64,
    /// Batch writes that failed and were retried.
    pub failed_writes: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    written: AtomicU64,
    dropped_full: AtomicU64,
    rejected: AtomicU64,
    lost_at_shutdown: AtomicU64,
    failed_writes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SinkStats {
        SinkStats {
            queued: self.queued.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            lost_at_shutdown: self.lost_at_shutdown.load(Ordering::Relaxed),
            failed_writes: self.failed_writes.load(Ordering::Relaxed),
        }
    }
}

/// At most one warning per [`WARN_EVERY`] for a recurring condition, without a lock.
struct WarnLimiter {
    started: Instant,
    /// Milliseconds since `started` of the last warning, plus one (0: never).
    last: AtomicU64,
}

const WARN_EVERY: Duration = Duration::from_secs(10);

impl WarnLimiter {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn should_warn(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < WARN_EVERY.as_millis() as u64 {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

enum Message {
    Event(NewEvent),
    /// Answered once everything queued before it is written (or given up).
    Flush(oneshot::Sender<()>),
}

struct Shared {
    queue: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    full_warning: WarnLimiter,
    invalid_warning: WarnLimiter,
}

/// The batching event writer. Cheap to clone; the writer task ends (after writing what is
/// queued) when the last clone is dropped.
#[derive(Clone)]
pub struct EventSink {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("enabled", &self.shared.is_some())
            .finish()
    }
}

impl EventSink {
    /// Starts the writer task with [`SinkOptions::default`]. Called outside a Tokio runtime
    /// it logs an error and returns a disabled sink.
    pub fn start(db: Db) -> Self {
        Self::start_with(db, SinkOptions::default())
    }

    pub fn start_with(db: Db, options: SinkOptions) -> Self {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("event sink started outside a Tokio runtime: events are discarded");
            return Self::disabled();
        };
        let options = SinkOptions {
            capacity: options.capacity.max(1),
            batch_size: options.batch_size.max(1),
            ..options
        };
        let (queue, receiver) = mpsc::channel(options.capacity);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            db,
            options,
            counters: counters.clone(),
            reject_warning: WarnLimiter::new(),
            failure_warning: WarnLimiter::new(),
        };
        runtime.spawn(writer.run(receiver));
        Self {
            shared: Some(Arc::new(Shared {
                queue,
                counters,
                full_warning: WarnLimiter::new(),
                invalid_warning: WarnLimiter::new(),
            })),
        }
    }

    /// A sink that discards everything (no database configured).
    pub fn disabled() -> Self {
        Self { shared: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Queues `event`. Never waits and never fails: an invalid event or one that finds the
    /// queue full is counted and dropped (with a warning at most every 10 s).
    pub fn emit(&self, event: NewEvent) {
        let Some(shared) = &self.shared else {
            return;
        };
        if let Err(e) = event.validate() {
            shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
            if shared.invalid_warning.should_warn() {
                tracing::warn!(tenant = %event.tenant_id, error = %e, "event dropped");
            }
            return;
        }
        match shared.queue.try_send(Message::Event(event)) {
            Ok(()) => {
                shared.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dropped = shared.counters.dropped_full.fetch_add(1, Ordering::Relaxed) + 1;
                if shared.full_warning.should_warn() {
                    tracing::warn!(
                        dropped_so_far = dropped,
                        "event queue full (database slow or away): events dropped"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The writer task is gone (its runtime shut down).
                shared.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every event emitted before this call is written (or dropped as
    /// unwritable). While the database is away this waits for it: wrap it in a timeout
    /// where that matters.
    pub async fn flush(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let (done, wait) = oneshot::channel();
        if shared.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The counters so far (all zero when disabled).
    pub fn stats(&self) -> SinkStats {
        self.shared
            .as_ref()
            .map(|s| s.counters.snapshot())
            .unwrap_or_default()
    }
}

/// First and longest pause between attempts to write a batch the database refused.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

struct Writer {
    db: Db,
    options: SinkOptions,
    counters: Arc<Counters>,
    reject_warning: WarnLimiter,
    failure_warning: WarnLimiter,
}

/// One tenant's share of a batch, in emit order.
struct TenantBatch {
    tenant: Uuid,
    events: Vec<NewEvent>,
}

/// How a write went wrong.
enum WriteFailure {
    /// Some row can never be written (SQLSTATE class 22 data exception or 23 integrity):
    /// retrying the same batch would fail forever.
    BadRow(String),
    /// The database is away, busy, not migrated, or refused for now: retry.
    Transient(String),
}

impl WriteFailure {
    fn from_db(e: &DbError) -> Self {
        let message = e.to_string();
        match e.sqlstate() {
            Some(code) if code.starts_with("22") || code.starts_with("23") => {
                WriteFailure::BadRow(message)
            }
            _ => WriteFailure::Transient(message),
        }
    }
}

const INSERT_MANY: &str = "INSERT INTO events (tenant_id, agent_id, call_id, kind, at, data)
     SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[])";

impl Writer {
    async fn run(self, mut receiver: mpsc::Receiver<Message>) {
        let mut batch: Vec<NewEvent> = Vec::with_capacity(self.options.batch_size);
        loop {
            // Wait for the first message of a batch.
            let first = match receiver.recv().await {
                Some(message) => message,
                None => break,
            };
            let mut flushes = Vec::new();
            match first {
                Message::Event(event) => batch.push(event),
                Message::Flush(done) => flushes.push(done),
            }
            // Then gather more until the batch is full, it has waited long enough, or
            // someone waits for a flush.
            let deadline = tokio::time::Instant::now() + self.options.batch_wait;
            while flushes.is_empty() && batch.len() < self.options.batch_size {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(Message::Event(event))) => batch.push(event),
                    Ok(Some(Message::Flush(done))) => flushes.push(done),
                    Ok(None) | Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.write(std::mem::take(&mut batch), &receiver).await;
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
        tracing::debug!(stats = ?self.counters.snapshot(), "event sink stopped");
    }

    /// Writes `events` by tenant, retrying what the database refuses for now until it takes
    /// it, or until the sink is shut down and the grace period has passed. At least once: a
    /// commit whose answer was lost to a broken connection is written again.
    async fn write(&self, events: Vec<NewEvent>, receiver: &mpsc::Receiver<Message>) {
        let mut pending = by_tenant(events);
        let mut pause = RETRY_FIRST;
        let mut shutdown_since: Option<Instant> = None;
        let mut failing = false;
        while let Some(group) = pending.front_mut() {
            match self.write_group(group).await {
                Ok(()) => {
                    pending.pop_front();
                    if failing {
                        failing = false;
                        tracing::info!("event log writable again");
                    }
                    pause = RETRY_FIRST;
                    continue;
                }
                Err(message) => {
                    self.counters.failed_writes.fetch_add(1, Ordering::Relaxed);
                    if !failing || self.failure_warning.should_warn() {
                        tracing::warn!(
                            error = %message,
                            waiting = pending.iter().map(|g| g.events.len()).sum::<usize>(),
                            "cannot write events; keeping them and retrying"
                        );
                    }
                    failing = true;
                }
            }
            if receiver.is_closed() {
                let since = *shutdown_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.options.shutdown_grace {
                    let lost: usize = pending.iter().map(|g| g.events.len()).sum();
                    self.counters
                        .lost_at_shutdown
                        .fetch_add(lost as u64, Ordering::Relaxed);
                    tracing::error!(lost, "event sink shut down with the database away");
                    return;
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Writes one tenant's events; on a row that can never be written, falls back to one
    /// insert per event and drops the bad ones. Events written are removed from `group`,
    /// so a retry after `Err` writes only the rest.
    async fn write_group(&self, group: &mut TenantBatch) -> Result<(), String> {
        match insert_many(&self.db, group.tenant, &group.events).await {
            Ok(()) => {
                self.counters
                    .written
                    .fetch_add(group.events.len() as u64, Ordering::Relaxed);
                group.events.clear();
                return Ok(());
            }
            Err(WriteFailure::Transient(message)) => return Err(message),
            Err(WriteFailure::BadRow(_)) => {}
        }
        while let Some(event) = group.events.first() {
            match insert_many(&self.db, group.tenant, std::slice::from_ref(event)).await {
                Ok(()) => {
                    self.counters.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(WriteFailure::BadRow(message)) => {
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    if self.reject_warning.should_warn() {
                        tracing::warn!(
                            tenant = %event.tenant_id,
                            kind = %truncated(&event.kind),
                            error = %message,
                            "event refused by the database; dropped"
                        );
                    }
                }
                Err(WriteFailure::Transient(message)) => return Err(message),
            }
            group.events.remove(0);
        }
        Ok(())
    }
}

/// Splits a batch by tenant, keeping emit order within each.
fn by_tenant(events: Vec<NewEvent>) -> VecDeque<TenantBatch> {
    let mut groups: VecDeque<TenantBatch> = VecDeque::new();
    for event in events {
        match groups.iter_mut().find(|g| g.tenant == event.tenant_id) {
            Some(group) => group.events.push(event),
            None => groups.push_back(TenantBatch {
                tenant: event.tenant_id,
                events: vec![event],
            }),
        }
    }
    groups
}

/// One multi-row insert of one tenant's events, in that tenant's scope.
async fn insert_many(db: &Db, tenant: Uuid, events: &[NewEvent]) -> Result<(), WriteFailure> {
    let agents: Vec<Option<Uuid>> = events.iter().map(|e| e.agent_id).collect();
    let calls: Vec<Option<String>> = events.iter().map(|e| e.call_id.clone()).collect();
    let kinds: Vec<String> = events.iter().map(|e| e.kind.clone()).collect();
    let ats: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
    let data: Vec<Value> = events.iter().map(|e| e.data.clone()).collect();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let statement = tx.prepare_cached(INSERT_MANY).await?;
            tx.execute(&statement, &[&tenant, &agents, &calls, &kinds, &ats, &data])
                .await?;
            Ok::<(), DbError>(())
        })
    })
    .await
    .map_err(|e| WriteFailure::from_db(&e))
}
