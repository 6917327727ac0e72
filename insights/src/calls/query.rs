//! Tenant-scoped reads of calls for the API and the web panel: the list with its filters and
//! one call's detail in the seed's shape. Every function runs inside `Db::with_tenant`, so
//! row-level security keeps another tenant's rows out even if a filter were wrong.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use voice_core::db::Db;
use voice_core::tenancy::store::StoreError;

/// Largest page.
pub const MAX_PER_PAGE: u32 = 100;
/// Page size when none is asked for.
pub const DEFAULT_PER_PAGE: u32 = 25;

/// The statuses a call may have (migration 0004).
pub const STATUSES: [&str; 8] = [
    "received",
    "downloading",
    "transcribing",
    "analyzing",
    "scoring",
    "processed",
    "failed",
    "skipped_no_consent",
];

/// The list's filters, already checked (see [`CallFilter::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallFilter {
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    /// On `started_at`, or `created_at` when the call has no start: `from <= t < to`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub agent: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
    /// Portuguese full-text search in transcripts, or an exact provider call id.
    pub q: Option<String>,
}

impl Default for CallFilter {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            from: None,
            to: None,
            agent: None,
            status: None,
            tag: None,
            q: None,
        }
    }
}

/// A filter value that cannot be used: which parameter and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub param: &'static str,
    pub message: String,
}

/// The filters as text (query string, form); empty means no filter.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawCallFilter {
    pub page: Option<String>,
    pub per_page: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub agent: Option<String>,
    pub status: Option<String>,
    pub tag: Option<String>,
    pub q: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn bad(param: &'static str, message: impl Into<String>) -> FilterError {
    FilterError {
        param,
        message: message.into(),
    }
}

/// RFC 3339, or `YYYY-MM-DD` (that day's start in UTC; for `to`, the next day's start, so
/// the day is included).
fn parse_time(
    param: &'static str,
    s: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, FilterError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        bad(
            param,
            format!("`{param}` must be RFC 3339 (2025-04-01T14:00:00Z) or YYYY-MM-DD"),
        )
    })?;
    let day = if end_of_day {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
}

fn parse_count(param: &'static str, s: &str, max: u32) -> Result<u32, FilterError> {
    match s.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad(
            param,
            format!("`{param}` must be a whole number from 1 to {max}"),
        )),
    }
}

fn bounded(param: &'static str, s: &str, max_chars: usize) -> Result<String, FilterError> {
    if s.chars().count() > max_chars {
        return Err(bad(
            param,
            format!("`{param}` is longer than {max_chars} characters"),
        ));
    }
    Ok(s.to_string())
}

impl CallFilter {
    pub fn parse(raw: &RawCallFilter) -> Result<Self, FilterError> {
        let mut f = CallFilter::default();
        if let Some(p) = non_empty(&raw.page) {
            f.page = parse_count("page", p, 1_000_000)?;
        }
        if let Some(p) = non_empty(&raw.per_page) {
            f.per_page = parse_count("per_page", p, MAX_PER_PAGE)?;
        }
        f.from = non_empty(&raw.from)
            .map(|s| parse_time("from", s, false))
            .transpose()?;
        f.to = non_empty(&raw.to)
            .map(|s| parse_time("to", s, true))
            .transpose()?;
        if let (Some(a), Some(b)) = (f.from, f.to) {
            if b < a {
                return Err(bad("to", "`to` is before `from`"));
            }
        }
        f.agent = non_empty(&raw.agent)
            .map(|s| bounded("agent", s, 200))
            .transpose()?;
        if let Some(s) = non_empty(&raw.status) {
            if !STATUSES.contains(&s) {
                return Err(bad(
                    "status",
                    format!("`status` must be one of {}", STATUSES.join(", ")),
                ));
            }
            f.status = Some(s.to_string());
        }
        f.tag = non_empty(&raw.tag)
            .map(|s| bounded("tag", s, 100))
            .transpose()?;
        f.q = non_empty(&raw.q)
            .map(|s| bounded("q", s, 200))
            .transpose()?;
        Ok(f)
    }
}

/// The seed's `call` object.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub provider_call_id: String,
    pub from: String,
    pub to: String,
    pub agent_id: String,
    #[schema(value_type = Option<String>, format = "date-time")]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = "date-time")]
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_sec: Option<i32>,
    pub consent: Option<bool>,
    pub source: String,
    pub status: String,
}

/// A row of the list: the call, its tags, the start of its summary and its score.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallSummary {
    pub call: CallView,
    pub tags: Vec<String>,
    /// The summary's first 200 characters; `None` before analysis.
    pub summary: Option<String>,
    pub total_score: Option<f64>,
    #[schema(value_type = String, format = "date-time")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallPage {
    pub items: Vec<CallSummary>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    /// `None` once retention deleted the media.
    pub storage_key: Option<String>,
    pub original_url: Option<String>,
    pub format: String,
    pub sample_rate: Option<i32>,
    pub channels: Option<i16>,
    pub content_type: String,
    pub size_bytes: Option<i64>,
    pub duration_sec: Option<f64>,
    #[schema(value_type = Option<String>, format = "date-time")]
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub language: String,
    pub text: String,
    #[schema(value_type = Vec<Object>)]
    pub words_json: Value,
    #[schema(value_type = Vec<Object>)]
    pub diarization_json: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub label: String,
    pub start_sec: f64,
    pub end_sec: f64,
    pub excerpt: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InsightsView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub summary: String,
    #[schema(value_type = Vec<Object>)]
    pub pain_points_json: Value,
    #[schema(value_type = Vec<Object>)]
    pub objections_json: Value,
    #[schema(value_type = Vec<Object>)]
    pub next_actions_json: Value,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScorecardView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub template_key: String,
    #[schema(value_type = Vec<Object>)]
    pub items_json: Value,
    pub total_score: f64,
    pub max_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrmEventView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub provider: String,
    pub action: String,
    pub status: String,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub error: Option<String>,
    #[schema(value_type = String, format = "date-time")]
    pub created_at: DateTime<Utc>,
}

/// `GET /calls/:id`: the seed's object, `null` for parts not made yet, plus the pipeline's
/// progress and the CRM pushes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallDetail {
    pub call: CallView,
    pub recording: Option<RecordingView>,
    pub transcript: Option<TranscriptView>,
    pub segments: Vec<SegmentView>,
    pub insights: Option<InsightsView>,
    pub scorecard: Option<ScorecardView>,
    #[schema(value_type = Object)]
    pub stage_status: Value,
    pub error: Option<String>,
    pub crm_events: Vec<CrmEventView>,
}

const CALL_COLUMNS: &str = "c.id, c.provider_call_id, c.from_number, c.to_number, c.agent_ref, \
     c.started_at, c.ended_at, c.duration_sec, c.consent, c.source, c.status";

/// A [`CallView`] from the first eleven columns of a row ([`CALL_COLUMNS`]).
macro_rules! call_view {
    ($row:expr) => {
        CallView {
            id: $row.try_get(0)?,
            provider_call_id: $row.try_get(1)?,
            from: $row.try_get(2)?,
            to: $row.try_get(3)?,
            agent_id: $row.try_get(4)?,
            started_at: $row.try_get(5)?,
            ended_at: $row.try_get(6)?,
            duration_sec: $row.try_get(7)?,
            consent: $row.try_get(8)?,
            source: $row.try_get(9)?,
            status: $row.try_get(10)?,
        }
    };
}

/// The conditions of the list, `$1..$6`; each is off when its parameter is NULL. The tag uses
/// the GIN index on `insights.tags`, the text search the GIN index on `transcripts.search`.
const LIST_WHERE: &str = "
    ($1::timestamptz IS NULL OR coalesce(c.started_at, c.created_at) >= $1)
    AND ($2::timestamptz IS NULL OR coalesce(c.started_at, c.created_at) < $2)
    AND ($3::text IS NULL OR c.agent_ref = $3)
    AND ($4::text IS NULL OR c.status = $4)
    AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM insights ti
             WHERE ti.call_id = c.id AND ti.tags @> ARRAY[$5::text]))
    AND ($6::text IS NULL OR c.provider_call_id = $6 OR EXISTS (SELECT 1 FROM transcripts tt
             WHERE tt.call_id = c.id AND tt.search @@ pt_search_query($6)))";

/// One page of `tenant`'s calls, newest first, and how many match in all.
pub async fn list_calls(
    db: &Db,
    tenant: Uuid,
    filter: &CallFilter,
) -> Result<CallPage, StoreError> {
    let f = filter.clone();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let limit = i64::from(f.per_page);
            let offset = i64::from(f.page.saturating_sub(1)) * limit;
            let total: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM calls c WHERE {LIST_WHERE}"),
                    &[&f.from, &f.to, &f.agent, &f.status, &f.tag, &f.q],
                )
                .await?
                .try_get(0)?;
            let sql = format!(
                "SELECT {CALL_COLUMNS}, coalesce(i.tags, '{{}}'), left(i.summary, 200),
                        s.total_score, c.created_at
                   FROM calls c
                   LEFT JOIN insights i ON i.call_id = c.id
                   LEFT JOIN scorecards s ON s.call_id = c.id
                  WHERE {LIST_WHERE}
                  ORDER BY coalesce(c.started_at, c.created_at) DESC, c.id DESC
                  LIMIT {limit} OFFSET {offset}"
            );
            let rows = tx
                .query(&sql, &[&f.from, &f.to, &f.agent, &f.status, &f.tag, &f.q])
                .await?;
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                items.push(CallSummary {
                    call: call_view!(row),
                    tags: row.try_get(11)?,
                    summary: row.try_get(12)?,
                    total_score: row.try_get(13)?,
                    created_at: row.try_get(14)?,
                });
            }
            Ok(CallPage {
                items,
                page: f.page,
                per_page: f.per_page,
                total,
            })
        })
    })
    .await
}

/// One call of `tenant` with everything made of it; `None`: no such call in this tenant.
pub async fn call_detail(
    db: &Db,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<CallDetail>, StoreError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let Some(row) = tx
                .query_opt(
                    &format!("SELECT {CALL_COLUMNS}, c.stage_status, c.error FROM calls c WHERE c.id = $1"),
                    &[&id],
                )
                .await?
            else {
                return Ok(None);
            };
            let call = call_view!(row);
            let stage_status: Value = row.try_get(11)?;
            let error: Option<String> = row.try_get(12)?;
            let recording = match tx
                .query_opt(
                    "SELECT id, storage_key, original_url, format, sample_rate, channels,
                            content_type, size_bytes, duration_sec, deleted_at
                       FROM recordings WHERE call_id = $1",
                    &[&id],
                )
                .await?
            {
                Some(r) => Some(RecordingView {
                    id: r.try_get(0)?,
                    storage_key: r.try_get(1)?,
                    original_url: r.try_get(2)?,
                    format: r.try_get(3)?,
                    sample_rate: r.try_get(4)?,
                    channels: r.try_get(5)?,
                    content_type: r.try_get(6)?,
                    size_bytes: r.try_get(7)?,
                    duration_sec: r.try_get(8)?,
                    deleted_at: r.try_get(9)?,
                }),
                None => None,
            };
            let transcript = match tx
                .query_opt(
                    "SELECT id, language, text, words, diarization FROM transcripts WHERE call_id = $1",
                    &[&id],
                )
                .await?
            {
                Some(r) => Some(TranscriptView {
                    id: r.try_get(0)?,
                    language: r.try_get(1)?,
                    text: r.try_get(2)?,
                    words_json: r.try_get(3)?,
                    diarization_json: r.try_get(4)?,
                }),
                None => None,
            };
            let mut segments = Vec::new();
            for r in tx
                .query(
                    "SELECT id, label, start_sec, end_sec, excerpt FROM segments
                      WHERE call_id = $1 ORDER BY ordinal",
                    &[&id],
                )
                .await?
            {
                segments.push(SegmentView {
                    id: r.try_get(0)?,
                    label: r.try_get(1)?,
                    start_sec: r.try_get(2)?,
                    end_sec: r.try_get(3)?,
                    excerpt: r.try_get(4)?,
                });
            }
            let insights = match tx
                .query_opt(
                    "SELECT id, summary, pain_points, objections, next_actions, tags
                       FROM insights WHERE call_id = $1",
                    &[&id],
                )
                .await?
            {
                Some(r) => Some(InsightsView {
                    id: r.try_get(0)?,
                    summary: r.try_get(1)?,
                    pain_points_json: r.try_get(2)?,
                    objections_json: r.try_get(3)?,
                    next_actions_json: r.try_get(4)?,
                    tags: r.try_get(5)?,
                }),
                None => None,
            };
            let scorecard = match tx
                .query_opt(
                    "SELECT id, template_key, items, total_score, max_score
                       FROM scorecards WHERE call_id = $1",
                    &[&id],
                )
                .await?
            {
                Some(r) => Some(ScorecardView {
                    id: r.try_get(0)?,
                    template_key: r.try_get(1)?,
                    items_json: r.try_get(2)?,
                    total_score: r.try_get(3)?,
                    max_score: r.try_get(4)?,
                }),
                None => None,
            };
            let mut crm_events = Vec::new();
            for r in tx
                .query(
                    "SELECT id, provider, action, status, external_id, detail, error, created_at
                       FROM crm_events WHERE tenant_id = $1 AND call_id = $2 ORDER BY created_at, id",
                    &[&tenant, &id],
                )
                .await?
            {
                crm_events.push(CrmEventView {
                    id: r.try_get(0)?,
                    provider: r.try_get(1)?,
                    action: r.try_get(2)?,
                    status: r.try_get(3)?,
                    external_id: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    error: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                });
            }
            Ok(Some(CallDetail {
                call,
                recording,
                transcript,
                segments,
                insights,
                scorecard,
                stage_status,
                error,
                crm_events,
            }))
        })
    })
    .await
}

/// Where a call's audio is, for serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingMedia {
    pub storage_key: String,
    pub content_type: String,
    pub format: String,
}

/// What is stored of a call's recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaLookup {
    NoCall,
    /// No recording, or retention deleted its media.
    NoMedia,
    Media(RecordingMedia),
}

/// The stored audio of call `id` of `tenant`.
pub async fn recording_media(db: &Db, tenant: Uuid, id: Uuid) -> Result<MediaLookup, StoreError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let row = tx
                .query_opt(
                    "SELECT r.storage_key, r.content_type, r.format, r.deleted_at IS NULL
                       FROM calls c LEFT JOIN recordings r ON r.call_id = c.id
                      WHERE c.id = $1",
                    &[&id],
                )
                .await?;
            let Some(row) = row else {
                return Ok(MediaLookup::NoCall);
            };
            let key: Option<String> = row.try_get(0)?;
            let live: Option<bool> = row.try_get(3)?;
            match (key, live) {
                (Some(storage_key), Some(true)) => Ok(MediaLookup::Media(RecordingMedia {
                    storage_key,
                    content_type: row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                    format: row.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
                })),
                _ => Ok(MediaLookup::NoMedia),
            }
        })
    })
    .await
}
