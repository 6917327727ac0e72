//! The outbox relay: moves unrelayed `jobs` rows (enqueued_at IS NULL, written with their
//! call by [`crate::intake`]) from PostgreSQL to the Redis job queue, then stamps them.
//!
//! One pass ([`relay_once`]): the tenants with pending jobs come from
//! `jobs_pending_tenants()` (a SECURITY DEFINER function: the jobs table otherwise shows a
//! transaction only its own tenant's rows); for each tenant, in one tenant-scoped
//! transaction, the oldest [`BATCH`] pending rows are locked `FOR UPDATE SKIP LOCKED`, put on
//! the queue, stamped and committed.
//!
//! Guarantees:
//! - Nothing accepted is lost: a row is stamped only in the transaction that follows its
//!   successful XADD. Redis down: the rows stay pending and a later pass relays them.
//! - At least once, not exactly once: a crash (or a failed COMMIT) after the XADD and before
//!   the COMMIT leaves the row pending, and it is relayed again. The queued job's id is the
//!   row's id, so the duplicate is the same job and workers deduplicate on it (see
//!   [`Job`]).
//! - Several relays (several instances) never relay one row concurrently: a row locked by
//!   one pass is skipped by the others, and once committed it is no longer pending.

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use uuid::Uuid;
use voice_core::db::{Db, DbError};

use crate::queue::{Job, Queue, QueueError};

/// Rows one tenant's transaction relays at most per pass; the rest wait for the next pass
/// (so one busy tenant cannot hold a transaction open for long, nor starve the others).
pub const BATCH: i64 = 200;
/// How often a persisting failure is logged again (the relay retries every tick).
const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum RelayError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// One pass over every tenant with pending jobs; returns how many jobs were put on the
/// queue. Stops at the first queue failure (the queue is most likely down for everyone);
/// what was already queued in that tenant's batch is still stamped, the rest stays pending.
pub async fn relay_once(db: &Db, queue: &Queue) -> Result<usize, RelayError> {
    let mut relayed = 0;
    for tenant in pending_tenants(db).await? {
        relayed += relay_tenant(db, queue, tenant).await?;
    }
    Ok(relayed)
}

/// Runs [`relay_once`] every `every` until the task is aborted. Failures are logged (at most
/// once a minute while they last) and retried on the next tick.
pub fn spawn_relay(db: Db, queue: Queue, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
        // After a slow pass (Redis timing out), carry on at the pace, without a burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = FailureLog::default();
        loop {
            ticker.tick().await;
            match relay_once(&db, &queue).await {
                Ok(_) => failures.recovered(),
                Err(e) => failures.failed(&e),
            }
        }
    })
}

/// The tenants with unrelayed jobs, oldest id first. The function is executable by
/// `voice_app` only, hence the role switch (the login may not be a superuser).
async fn pending_tenants(db: &Db) -> Result<Vec<Uuid>, DbError> {
    db.admin(|tx| {
        Box::pin(async move {
            tx.execute("SELECT set_config('role', 'voice_app', true)", &[])
                .await?;
            let rows = tx
                .query("SELECT tenant_id FROM jobs_pending_tenants()", &[])
                .await?;
            rows.iter()
                .map(|r| r.try_get::<_, Uuid>(0).map_err(DbError::from))
                .collect()
        })
    })
    .await
}

/// Relays one batch of `tenant`'s pending jobs in one transaction.
async fn relay_tenant(db: &Db, queue: &Queue, tenant: Uuid) -> Result<usize, RelayError> {
    let queue = queue.clone();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let rows = tx
                .query(
                    "SELECT id, tenant_id, call_id, kind, payload FROM jobs
                     WHERE enqueued_at IS NULL
                     ORDER BY created_at
                     LIMIT $1
                     FOR UPDATE SKIP LOCKED",
                    &[&BATCH],
                )
                .await
                .map_err(DbError::from)?;
            let mut queued: Vec<Uuid> = Vec::with_capacity(rows.len());
            let mut failure = None;
            for row in &rows {
                let job = Job {
                    id: row.try_get("id").map_err(DbError::from)?,
                    tenant_id: row.try_get("tenant_id").map_err(DbError::from)?,
                    // A tenant-wide job (no call) travels with the nil id.
                    call_id: row
                        .try_get::<_, Option<Uuid>>("call_id")
                        .map_err(DbError::from)?
                        .unwrap_or(Uuid::nil()),
                    kind: row.try_get("kind").map_err(DbError::from)?,
                    attempt: 1,
                    payload: row.try_get::<_, Json>("payload").map_err(DbError::from)?,
                };
                match queue.enqueue(&job).await {
                    Ok(_) => queued.push(job.id),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if !queued.is_empty() {
                tx.execute(
                    "UPDATE jobs SET enqueued_at = now() WHERE id = ANY($1)",
                    &[&queued],
                )
                .await
                .map_err(DbError::from)?;
            }
            // Commit what was queued even when the queue failed midway: those rows must not
            // be relayed a second time.
            Ok((queued.len(), failure))
        })
    })
    .await
    .and_then(|(count, failure)| match failure {
        Some(e) => Err(RelayError::Queue(e)),
        None => Ok(count),
    })
}

/// Logs the first failure, then at most one line per [`LOG_EVERY`] while failures last, and
/// one line when the relay works again.
#[derive(Default)]
struct FailureLog {
    failing_since: Option<Instant>,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    fn failed(&mut self, error: &RelayError) {
        let now = Instant::now();
        self.failing_since.get_or_insert(now);
        let due = self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= LOG_EVERY);
        if due {
            warn!(error = %error, suppressed = self.suppressed,
                  "outbox relay failed; pending jobs stay in the database and are retried");
            self.last_logged = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            info!(
                failing_for_secs = since.elapsed().as_secs(),
                "outbox relay works again"
            );
        }
        self.last_logged = None;
        self.suppressed = 0;
    }
}
