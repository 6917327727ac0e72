//! CRM events in PostgreSQL: every step a push tried, and, read back, what is already in
//! the CRM so a retry or a second push adds nothing twice.

use uuid::Uuid;
use voice_core::db::{Db, DbError};

use super::{CrmEvent, ACTIVITY, NOTE, PERSON_LOOKUP};

/// What earlier pushes of a call got into the CRM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushedSteps {
    /// The person found by an earlier lookup.
    pub person_id: Option<u64>,
    pub note: bool,
    pub activity: bool,
}

impl PushedSteps {
    /// Note and activity are both there: nothing left to push.
    pub fn complete(&self) -> bool {
        self.note && self.activity
    }
}

/// Appends `events` to the call's CRM log.
pub async fn record(db: &Db, tenant: Uuid, call: Uuid, events: &[CrmEvent]) -> Result<(), DbError> {
    if events.is_empty() {
        return Ok(());
    }
    let events = events.to_vec();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let insert = tx
                .prepare_cached(
                    "INSERT INTO crm_events
                         (tenant_id, call_id, provider, action, status, external_id, detail, error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .await?;
            for e in &events {
                let detail = match &e.detail {
                    serde_json::Value::Object(_) => e.detail.clone(),
                    _ => serde_json::json!({}),
                };
                let external: Option<String> = e
                    .external_id
                    .as_ref()
                    .map(|id| id.chars().take(200).collect());
                tx.execute(
                    &insert,
                    &[
                        &tenant,
                        &call,
                        &e.provider,
                        &e.action,
                        &e.status.as_str(),
                        &external,
                        &detail,
                        &e.error,
                    ],
                )
                .await?;
            }
            Ok(())
        })
    })
    .await
}

/// The steps that went through for this call (status `ok`), newest person first.
pub async fn pushed_steps(db: &Db, tenant: Uuid, call: Uuid) -> Result<PushedSteps, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let rows = tx
                .query(
                    "SELECT action, external_id FROM crm_events
                     WHERE call_id = $1 AND status = 'ok'
                     ORDER BY created_at DESC, id",
                    &[&call],
                )
                .await?;
            let mut steps = PushedSteps::default();
            for row in rows {
                let action: String = row.try_get(0)?;
                let external: Option<String> = row.try_get(1)?;
                match action.as_str() {
                    PERSON_LOOKUP if steps.person_id.is_none() => {
                        steps.person_id = external.and_then(|id| id.parse().ok());
                    }
                    NOTE => steps.note = true,
                    ACTIVITY => steps.activity = true,
                    _ => {}
                }
            }
            Ok(steps)
        })
    })
    .await
}
