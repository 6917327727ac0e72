//! Accepting a call: its `calls` row and, when it is to be processed, its `process_call` job
//! in the outbox, in one tenant-scoped transaction. Either both are written or neither; the
//! relay moves the job to the queue afterwards, so nothing accepted is lost to a crash or a
//! queue outage.
//!
//! Idempotent on the sender's call id: a second webhook for a call this tenant already has
//! changes nothing and returns the existing id (concurrent duplicates wait on the unique key
//! and then find the first one's row).

use serde_json::json;
use uuid::Uuid;
use voice_core::db::{Db, DbError};

use super::payload::IncomingCall;

/// The outbox job that runs the pipeline for a call.
pub const PROCESS_CALL: &str = "process_call";

/// Where a call comes from (`calls.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Voip,
    Bridge,
    TurnApi,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Voip => "voip",
            Source::Bridge => "bridge",
            Source::TurnApi => "turn_api",
        }
    }
}

/// What accepting a call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub call_id: Uuid,
    /// The call was already there: nothing was written.
    pub duplicate: bool,
    /// A `process_call` job was queued in the outbox.
    pub queued: bool,
}

/// The status a new call starts in: consent refused means it is never processed.
pub fn initial_status(call: &IncomingCall) -> &'static str {
    if call.consent == Some(false) {
        "skipped_no_consent"
    } else {
        "received"
    }
}

/// Stores `call` for `tenant` with its job (see the module comment).
pub async fn accept(
    db: &Db,
    tenant: Uuid,
    source: Source,
    call: IncomingCall,
) -> Result<Accepted, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let (call_id, new) = insert_call(tx, tenant, source, &call).await?;
            if !new {
                return Ok(Accepted {
                    call_id,
                    duplicate: true,
                    queued: false,
                });
            }
            let queued = initial_status(&call) == "received";
            if queued {
                queue_processing(tx, tenant, call_id, &call).await?;
            }
            Ok(Accepted {
                call_id,
                duplicate: false,
                queued,
            })
        })
    })
    .await
}

/// A recording uploaded with its call (already in storage under `storage_key`).
#[derive(Debug, Clone)]
pub struct UploadedRecording {
    pub storage_key: String,
    pub format: String,
    pub content_type: String,
    pub sample_rate: Option<i32>,
    pub channels: Option<i16>,
    pub size_bytes: i64,
    pub sha256: String,
    pub duration_sec: Option<f64>,
}

/// What accepting an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedUpload {
    pub accepted: Accepted,
    /// The uploaded file is now the call's recording (otherwise the caller deletes it).
    pub recording_stored: bool,
}

/// Stores an uploaded call with its recording and its job, in one transaction. The same call
/// uploaded again is a duplicate; if the first time stored the call without a recording (a
/// webhook came first), this upload becomes its recording.
pub async fn accept_upload(
    db: &Db,
    tenant: Uuid,
    source: Source,
    call: IncomingCall,
    recording: UploadedRecording,
) -> Result<AcceptedUpload, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let (call_id, new) = insert_call(tx, tenant, source, &call).await?;
            let has_recording = !new
                && tx
                    .query_opt("SELECT 1 FROM recordings WHERE call_id = $1", &[&call_id])
                    .await?
                    .is_some();
            if has_recording {
                return Ok(AcceptedUpload {
                    accepted: Accepted {
                        call_id,
                        duplicate: true,
                        queued: false,
                    },
                    recording_stored: false,
                });
            }
            let r = &recording;
            tx.execute(
                "INSERT INTO recordings (tenant_id, call_id, storage_key, format, content_type,
                     sample_rate, channels, size_bytes, sha256, duration_sec)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &tenant,
                    &call_id,
                    &r.storage_key,
                    &r.format,
                    &r.content_type,
                    &r.sample_rate,
                    &r.channels,
                    &r.size_bytes,
                    &r.sha256,
                    &r.duration_sec,
                ],
            )
            .await?;
            // A call stored earlier without its recording is processed now, unless consent
            // was refused or it is somehow already done.
            let status: String = tx
                .query_one("SELECT status FROM calls WHERE id = $1", &[&call_id])
                .await?
                .try_get(0)?;
            let queued = matches!(status.as_str(), "received" | "failed");
            if queued {
                queue_processing(tx, tenant, call_id, &call).await?;
            }
            Ok(AcceptedUpload {
                accepted: Accepted {
                    call_id,
                    duplicate: !new,
                    queued,
                },
                recording_stored: true,
            })
        })
    })
    .await
}

/// Inserts the call unless this tenant has it already; its id, and whether it is new.
/// Concurrent duplicates wait on the unique key and then find the first one's row.
async fn insert_call(
    tx: &voice_core::db::Transaction<'_>,
    tenant: Uuid,
    source: Source,
    call: &IncomingCall,
) -> Result<(Uuid, bool), DbError> {
    let status = initial_status(call);
    let inserted = tx
        .query_opt(
            "INSERT INTO calls (tenant_id, provider_call_id, source, from_number,
                 to_number, agent_ref, started_at, ended_at, duration_sec, consent,
                 status, recording_url, meta)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (tenant_id, provider_call_id) DO NOTHING
             RETURNING id",
            &[
                &tenant,
                &call.provider_call_id,
                &source.as_str(),
                &call.from_number,
                &call.to_number,
                &call.agent_ref,
                &call.started_at,
                &call.ended_at,
                &call.duration_sec,
                &call.consent,
                &status,
                &call.recording_url,
                &call.meta,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok((row.try_get(0)?, true));
    }
    // Read committed: this statement sees the row the conflicting insert committed.
    let existing: Uuid = tx
        .query_one(
            "SELECT id FROM calls WHERE tenant_id = $1 AND provider_call_id = $2",
            &[&tenant, &call.provider_call_id],
        )
        .await?
        .try_get(0)?;
    Ok((existing, false))
}

/// The call's `process_call` job, in the outbox.
async fn queue_processing(
    tx: &voice_core::db::Transaction<'_>,
    tenant: Uuid,
    call_id: Uuid,
    call: &IncomingCall,
) -> Result<(), DbError> {
    let payload = json!({
        "call_id": call_id,
        "provider_call_id": call.provider_call_id,
        "event": call.event,
    });
    tx.execute(
        "INSERT INTO jobs (tenant_id, call_id, kind, payload) VALUES ($1, $2, $3, $4)",
        &[&tenant, &call_id, &PROCESS_CALL, &payload],
    )
    .await?;
    Ok(())
}
