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
            let status = initial_status(&call);
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
            let Some(row) = inserted else {
                // Read committed: this statement sees the row the conflicting insert
                // committed.
                let existing: Uuid = tx
                    .query_one(
                        "SELECT id FROM calls WHERE tenant_id = $1 AND provider_call_id = $2",
                        &[&tenant, &call.provider_call_id],
                    )
                    .await?
                    .try_get(0)?;
                return Ok(Accepted {
                    call_id: existing,
                    duplicate: true,
                    queued: false,
                });
            };
            let call_id: Uuid = row.try_get(0)?;
            let queued = status == "received";
            if queued {
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
