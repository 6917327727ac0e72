//! The retention job: for every tenant, the media and transcripts (with the segments that
//! quote them) of calls older than its retention period are deleted, and each deletion is
//! written to `retention_log` and to the service log. The call row, its insights and its
//! scorecard stay: they are what the tenant's reports count.
//!
//! Media goes first, then the rows, per call: a storage failure leaves that call for the next
//! run rather than a row pointing at nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use uuid::Uuid;
use voice_core::db::{Db, DbError};

use super::PrivacySettings;
use crate::storage::{Storage, StorageError};

/// Calls one pass handles per tenant at most (the rest wait for the next pass).
const BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// What one pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    pub calls: usize,
    pub recordings: usize,
    pub transcripts: usize,
}

/// One pass over every tenant, as of `now`.
pub async fn purge_all(
    db: &Db,
    storage: &Storage,
    settings: &PrivacySettings,
    now: DateTime<Utc>,
) -> Result<Purged, RetentionError> {
    let mut total = Purged::default();
    for tenant in tenants(db).await? {
        let p = purge_tenant(db, storage, settings, tenant, now).await?;
        total.calls += p.calls;
        total.recordings += p.recordings;
        total.transcripts += p.transcripts;
    }
    Ok(total)
}

/// Every tenant id (`metrics_tenants()`, readable by voice_app without a tenant).
async fn tenants(db: &Db) -> Result<Vec<Uuid>, DbError> {
    db.admin(|tx| {
        Box::pin(async move {
            tx.execute("SELECT set_config('role', 'voice_app', true)", &[])
                .await?;
            let rows = tx.query("SELECT id FROM metrics_tenants()", &[]).await?;
            rows.iter()
                .map(|r| r.try_get::<_, Uuid>(0).map_err(DbError::from))
                .collect()
        })
    })
    .await
}

/// A call due for deletion, and what of it is still there.
struct Due {
    call: Uuid,
    storage_key: Option<String>,
    has_transcript: bool,
}

/// Deletes what `tenant` keeps beyond its retention period; nothing when it has none.
pub async fn purge_tenant(
    db: &Db,
    storage: &Storage,
    settings: &PrivacySettings,
    tenant: Uuid,
    now: DateTime<Utc>,
) -> Result<Purged, RetentionError> {
    let service_days = settings.retention_days;
    let due = db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                let own: Option<i32> = tx
                    .query_one(
                        "SELECT retention_days FROM tenants WHERE id = $1",
                        &[&tenant],
                    )
                    .await?
                    .try_get(0)?;
                let days = own.map_or(i64::from(service_days), i64::from);
                if days <= 0 {
                    return Ok::<_, DbError>(None);
                }
                let older_than = now - chrono::Duration::days(days);
                let rows = tx
                    .query(
                        "SELECT c.id, r.storage_key, t.id IS NOT NULL
                         FROM calls c
                         LEFT JOIN recordings r ON r.call_id = c.id AND r.deleted_at IS NULL
                         LEFT JOIN transcripts t ON t.call_id = c.id
                         WHERE COALESCE(c.started_at, c.created_at) < $1
                           AND (r.id IS NOT NULL OR t.id IS NOT NULL)
                         ORDER BY c.created_at
                         LIMIT $2",
                        &[&older_than, &BATCH],
                    )
                    .await?;
                let due = rows
                    .iter()
                    .map(|r| {
                        Ok(Due {
                            call: r.try_get(0)?,
                            storage_key: r.try_get(1)?,
                            has_transcript: r.try_get(2)?,
                        })
                    })
                    .collect::<Result<Vec<_>, DbError>>()?;
                Ok(Some((older_than, due)))
            })
        })
        .await?;
    let Some((older_than, due)) = due else {
        return Ok(Purged::default());
    };
    let mut purged = Purged::default();
    for item in due {
        if let Some(key) = &item.storage_key {
            // Already gone from storage counts as deleted.
            storage.delete(key).await?;
        }
        let had_recording = item.storage_key.is_some();
        let call = item.call;
        let deleted: Vec<String> = [
            had_recording.then(|| "recording".to_string()),
            item.has_transcript.then(|| "transcript".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let logged = deleted.clone();
        db.with_tenant(tenant, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE recordings SET storage_key = NULL, deleted_at = now()
                     WHERE call_id = $1 AND deleted_at IS NULL",
                    &[&call],
                )
                .await?;
                tx.execute("DELETE FROM segments WHERE call_id = $1", &[&call])
                    .await?;
                tx.execute("DELETE FROM transcripts WHERE call_id = $1", &[&call])
                    .await?;
                tx.execute(
                    "INSERT INTO retention_log (tenant_id, call_id, deleted, older_than)
                     VALUES ($1, $2, $3, $4)",
                    &[&tenant, &call, &logged, &older_than],
                )
                .await?;
                Ok::<_, DbError>(())
            })
        })
        .await?;
        info!(%tenant, %call, deleted = ?deleted, %older_than, "retention: deleted");
        purged.calls += 1;
        purged.recordings += usize::from(had_recording);
        purged.transcripts += usize::from(item.has_transcript);
    }
    Ok(purged)
}

/// Runs [`purge_all`] every `settings.retention_every_secs` until aborted.
pub fn spawn_retention(
    db: Db,
    storage: Storage,
    settings: PrivacySettings,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.retention_every_secs == 0 {
        return None;
    }
    let every = Duration::from_secs(settings.retention_every_secs);
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match purge_all(&db, &storage, &settings, Utc::now()).await {
                Ok(p) if p.calls > 0 => info!(
                    calls = p.calls,
                    recordings = p.recordings,
                    transcripts = p.transcripts,
                    "retention pass done"
                ),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "retention pass failed; retried next time"),
            }
        }
    }))
}
