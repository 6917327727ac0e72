//! The CRM push: once a call is processed (and on `POST /calls/{id}/push-crm`), the caller
//! is looked up in Pipedrive by phone, and a note with the insights and scorecard and a done
//! call activity are added to that person. Each step is a [`CrmEvent`] recorded on the call
//! (`crm_events`), which is also how a retry knows what is already in the CRM.
//!
//! - `settings.rs`: `[crm]` and `[crm.pipedrive]`, with `ENABLE_CRM_PUSH`/`PIPEDRIVE_API_TOKEN`.
//! - `content.rs`: the note's HTML and the activity's fields, built from the call.
//! - `pipedrive.rs`: the HTTP client (search, note, activity).
//! - `store.rs`: events in and out of PostgreSQL.

mod content;
mod pipedrive;
mod settings;
mod store;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::calls::model::{CallInsights, Scorecard};

pub use pipedrive::{CrmError, Pipedrive};
pub use settings::{CrmSettings, PipedriveSettings};
pub use store::{pushed_steps, record, PushedSteps};

/// The CRM steps, as `crm_events.action`.
pub const PERSON_LOOKUP: &str = "person_lookup";
pub const NOTE: &str = "note";
pub const ACTIVITY: &str = "activity";

/// What the push needs to know about a processed call.
#[derive(Debug, Clone)]
pub struct CallForCrm {
    pub call_id: Uuid,
    pub provider_call_id: String,
    /// As stored: a phone number, or its hash when numbers are hashed.
    pub from: String,
    pub to: String,
    /// The numbers are hashes: nobody can be looked up by them.
    pub phones_hashed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_sec: Option<i32>,
    pub insights: Option<CallInsights>,
    pub scorecard: Option<Scorecard>,
    /// The call's page in the panel, linked from the note.
    pub panel_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmStatus {
    Ok,
    Failed,
    Skipped,
}

impl CrmStatus {
    /// As `crm_events.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            CrmStatus::Ok => "ok",
            CrmStatus::Failed => "failed",
            CrmStatus::Skipped => "skipped",
        }
    }
}

/// One step of a push and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmEvent {
    /// `pipedrive`.
    pub provider: &'static str,
    /// [`PERSON_LOOKUP`], [`NOTE`] or [`ACTIVITY`].
    pub action: &'static str,
    pub status: CrmStatus,
    /// The CRM's id of what was found or made.
    pub external_id: Option<String>,
    /// Non-secret details: why a step was skipped, the CRM's status code.
    pub detail: Value,
    pub error: Option<String>,
    /// A failure another try may fix (timeout, 5xx, 429).
    pub retryable: bool,
}

impl CrmEvent {
    fn ok(action: &'static str, external_id: Option<String>, detail: Value) -> Self {
        Self {
            provider: pipedrive::PROVIDER,
            action,
            status: CrmStatus::Ok,
            external_id,
            detail,
            error: None,
            retryable: false,
        }
    }

    fn skipped(action: &'static str, reason: &str) -> Self {
        Self {
            provider: pipedrive::PROVIDER,
            action,
            status: CrmStatus::Skipped,
            external_id: None,
            detail: serde_json::json!({ "reason": reason }),
            error: None,
            retryable: false,
        }
    }

    fn failed(action: &'static str, error: CrmError) -> Self {
        Self {
            provider: pipedrive::PROVIDER,
            action,
            status: CrmStatus::Failed,
            external_id: None,
            detail: match error.status {
                Some(code) => serde_json::json!({ "http_status": code }),
                None => serde_json::json!({}),
            },
            retryable: error.retryable,
            error: Some(error.message),
        }
    }
}

/// A push worth trying again: some step failed in a way another try may fix.
pub fn should_retry(events: &[CrmEvent]) -> bool {
    events
        .iter()
        .any(|e| e.status == CrmStatus::Failed && e.retryable)
}
