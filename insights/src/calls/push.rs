//! `POST /calls/:id/push-crm`: a `push_crm` job in the jobs outbox, written in the same
//! tenant-scoped transaction that checks the call (the relay moves it to the queue).

use serde_json::json;
use uuid::Uuid;
use voice_core::db::Db;
use voice_core::tenancy::store::StoreError;

/// The job kind the worker's CRM stage takes.
pub const PUSH_CRM_JOB: &str = "push_crm";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    NoCall,
    /// The call is not `processed` yet (its status).
    NotProcessed(String),
    Queued(Uuid),
}

/// Queues a CRM push of call `id`; `requested_by`: the API key's id, or `platform`.
pub async fn queue_crm_push(
    db: &Db,
    tenant: Uuid,
    id: Uuid,
    requested_by: String,
) -> Result<PushOutcome, StoreError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            // FOR SHARE: the call cannot be deleted or change status under the insert.
            let Some(row) = tx
                .query_opt("SELECT status FROM calls WHERE id = $1 FOR SHARE", &[&id])
                .await?
            else {
                return Ok(PushOutcome::NoCall);
            };
            let status: String = row.try_get(0)?;
            if status != "processed" {
                return Ok(PushOutcome::NotProcessed(status));
            }
            let payload = json!({ "requested_by": requested_by });
            let job: Uuid = tx
                .query_one(
                    "INSERT INTO jobs (tenant_id, call_id, kind, payload)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&tenant, &id, &PUSH_CRM_JOB, &payload],
                )
                .await?
                .try_get(0)?;
            Ok(PushOutcome::Queued(job))
        })
    })
    .await
}
