//! What the worker reads and writes in PostgreSQL, every statement in a tenant-scoped
//! transaction (row-level security). Writes are upserts keyed on the call, so a stage run
//! twice (a reclaimed job, a duplicate delivery) leaves one row, never two.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;
use uuid::Uuid;
use voice_core::db::{Db, DbError};

use super::stage::{Stage, StageState};
use crate::calls::model::{
    Analysis, Scorecard, ScorecardTemplate, ScoredItem, TemplateItem, Transcription, Utterance,
    Word,
};

/// The call as the pipeline needs it.
#[derive(Debug, Clone)]
pub struct CallToProcess {
    pub id: Uuid,
    pub tenant: Uuid,
    pub provider_call_id: String,
    pub status: String,
    pub consent: Option<bool>,
    pub recording_url: Option<String>,
    pub from_number: String,
    pub to_number: String,
    pub started_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub duration_sec: Option<i32>,
    /// The call's date in the tenant's time zone (relative due dates count from it).
    pub local_date: NaiveDate,
    /// The tenant's own consent rule; `None`: the service's.
    pub tenant_requires_consent: Option<bool>,
}

pub async fn load_call(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
) -> Result<Option<CallToProcess>, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let row = tx
                .query_opt(
                    "SELECT c.provider_call_id, c.status, c.consent, c.recording_url,
                            c.from_number, c.to_number, c.started_at, c.created_at,
                            c.duration_sec,
                            (COALESCE(c.started_at, c.created_at) AT TIME ZONE t.timezone)::date,
                            t.require_consent
                     FROM calls c JOIN tenants t ON t.id = c.tenant_id
                     WHERE c.id = $1",
                    &[&call],
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            Ok(Some(CallToProcess {
                id: call,
                tenant,
                provider_call_id: r.try_get(0)?,
                status: r.try_get(1)?,
                consent: r.try_get(2)?,
                recording_url: r.try_get(3)?,
                from_number: r.try_get(4)?,
                to_number: r.try_get(5)?,
                started_at: r.try_get(6)?,
                created_at: r.try_get(7)?,
                duration_sec: r.try_get(8)?,
                local_date: r.try_get(9)?,
                tenant_requires_consent: r.try_get(10)?,
            }))
        })
    })
    .await
}

/// Writes `state` as the stage's entry in `stage_status` and, when given, the call's status
/// and last error (`error: Some("")` clears it).
pub async fn mark(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
    stage: Stage,
    state: &StageState,
    status: Option<&'static str>,
    error: Option<String>,
) -> Result<(), DbError> {
    let entry = state.to_json();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let error = error.map(|e| if e.is_empty() { None } else { Some(e) });
            tx.execute(
                "UPDATE calls SET
                     stage_status = jsonb_set(stage_status, ARRAY[$2::text], $3::jsonb),
                     status = COALESCE($4, status),
                     error = CASE WHEN $5 THEN $6 ELSE error END
                 WHERE id = $1",
                &[
                    &call,
                    &stage.key(),
                    &entry,
                    &status,
                    &error.is_some(),
                    &error.flatten(),
                ],
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// Sets the call's status (and error, when given) without touching the stages.
pub async fn set_status(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
    status: &'static str,
    error: Option<String>,
) -> Result<(), DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute(
                "UPDATE calls SET status = $2, error = COALESCE($3, error) WHERE id = $1",
                &[&call, &status, &error],
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// The call is processed: its status says so and an earlier attempt's error goes.
pub async fn finish(db: &Db, tenant: Uuid, call: Uuid) -> Result<(), DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute(
                "UPDATE calls SET status = 'processed', error = NULL WHERE id = $1",
                &[&call],
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// A call's stored recording.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecording {
    pub storage_key: String,
    pub content_type: String,
    pub format: String,
    pub channels: Option<i16>,
    pub sample_rate: Option<i32>,
    pub size_bytes: Option<i64>,
}

/// The call's recording when its media is still kept.
pub async fn recording(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
) -> Result<Option<StoredRecording>, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let row = tx
                .query_opt(
                    "SELECT storage_key, content_type, format, channels, sample_rate, size_bytes
                     FROM recordings
                     WHERE call_id = $1 AND storage_key IS NOT NULL AND deleted_at IS NULL",
                    &[&call],
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            Ok(Some(StoredRecording {
                storage_key: r.try_get(0)?,
                content_type: r.try_get(1)?,
                format: r.try_get(2)?,
                channels: r.try_get(3)?,
                sample_rate: r.try_get(4)?,
                size_bytes: r.try_get(5)?,
            }))
        })
    })
    .await
}

/// What a new recording row says.
#[derive(Debug, Clone)]
pub struct NewRecording {
    pub storage_key: String,
    pub original_url: Option<String>,
    pub format: String,
    pub content_type: String,
    pub sample_rate: Option<i32>,
    pub channels: Option<i16>,
    pub size_bytes: i64,
    pub sha256: String,
    pub duration_sec: Option<f64>,
}

pub async fn save_recording(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
    r: NewRecording,
) -> Result<(), DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute(
                "INSERT INTO recordings (tenant_id, call_id, storage_key, original_url, format,
                     content_type, sample_rate, channels, size_bytes, sha256, duration_sec)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (call_id) DO UPDATE SET
                     storage_key = EXCLUDED.storage_key, original_url = EXCLUDED.original_url,
                     format = EXCLUDED.format, content_type = EXCLUDED.content_type,
                     sample_rate = EXCLUDED.sample_rate, channels = EXCLUDED.channels,
                     size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
                     duration_sec = EXCLUDED.duration_sec, deleted_at = NULL",
                &[
                    &tenant,
                    &call,
                    &r.storage_key,
                    &r.original_url,
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
            Ok(())
        })
    })
    .await
}

/// The call's transcript, if one was made.
pub async fn transcript(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
) -> Result<Option<Transcription>, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let row = tx
                .query_opt(
                    "SELECT language, provider, text, words, diarization
                     FROM transcripts WHERE call_id = $1",
                    &[&call],
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            let words: Json = r.try_get(3)?;
            let utterances: Json = r.try_get(4)?;
            Ok(Some(Transcription {
                language: r.try_get(0)?,
                provider: r.try_get(1)?,
                text: r.try_get(2)?,
                // Written by this module from the same types; anything odd reads as empty.
                words: serde_json::from_value::<Vec<Word>>(words).unwrap_or_default(),
                utterances: serde_json::from_value::<Vec<Utterance>>(utterances)
                    .unwrap_or_default(),
            }))
        })
    })
    .await
}

pub async fn save_transcript(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
    t: Transcription,
) -> Result<(), DbError> {
    let words = serde_json::to_value(&t.words).unwrap_or(Json::Array(Vec::new()));
    let utterances = serde_json::to_value(&t.utterances).unwrap_or(Json::Array(Vec::new()));
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute(
                "INSERT INTO transcripts (tenant_id, call_id, language, provider, text, words,
                     diarization)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (call_id) DO UPDATE SET
                     language = EXCLUDED.language, provider = EXCLUDED.provider,
                     text = EXCLUDED.text, words = EXCLUDED.words,
                     diarization = EXCLUDED.diarization",
                &[
                    &tenant,
                    &call,
                    &t.language,
                    &t.provider,
                    &t.text,
                    &words,
                    &utterances,
                ],
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// Whether the analysis stage's output (the insights row) exists.
pub async fn has_analysis(db: &Db, tenant: Uuid, call: Uuid) -> Result<bool, DbError> {
    exists(
        db,
        tenant,
        "SELECT 1 FROM insights WHERE call_id = $1",
        call,
    )
    .await
}

/// Whether the call has its scorecard.
pub async fn has_scorecard(db: &Db, tenant: Uuid, call: Uuid) -> Result<bool, DbError> {
    exists(
        db,
        tenant,
        "SELECT 1 FROM scorecards WHERE call_id = $1",
        call,
    )
    .await
}

async fn exists(db: &Db, tenant: Uuid, sql: &'static str, call: Uuid) -> Result<bool, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move { Ok(tx.query_opt(sql, &[&call]).await?.is_some()) })
    })
    .await
}

/// Segments and insights, replacing earlier ones, in one transaction.
pub async fn save_analysis(db: &Db, tenant: Uuid, call: Uuid, a: Analysis) -> Result<(), DbError> {
    let pain = serde_json::to_value(&a.insights.pain_points).unwrap_or(Json::Array(Vec::new()));
    let objections =
        serde_json::to_value(&a.insights.objections).unwrap_or(Json::Array(Vec::new()));
    let actions = serde_json::to_value(&a.insights.next_actions).unwrap_or(Json::Array(Vec::new()));
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute("DELETE FROM segments WHERE call_id = $1", &[&call])
                .await?;
            for (ordinal, s) in a.segments.iter().enumerate() {
                let ordinal = i32::try_from(ordinal).unwrap_or(i32::MAX);
                tx.execute(
                    "INSERT INTO segments (tenant_id, call_id, ordinal, label, start_sec, end_sec,
                         excerpt)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &tenant,
                        &call,
                        &ordinal,
                        &s.label,
                        &s.start_sec,
                        &s.end_sec,
                        &s.excerpt,
                    ],
                )
                .await?;
            }
            tx.execute(
                "INSERT INTO insights (tenant_id, call_id, summary, pain_points, objections,
                     next_actions, tags, model, prompt_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (call_id) DO UPDATE SET
                     summary = EXCLUDED.summary, pain_points = EXCLUDED.pain_points,
                     objections = EXCLUDED.objections, next_actions = EXCLUDED.next_actions,
                     tags = EXCLUDED.tags, model = EXCLUDED.model,
                     prompt_version = EXCLUDED.prompt_version",
                &[
                    &tenant,
                    &call,
                    &a.insights.summary,
                    &pain,
                    &objections,
                    &actions,
                    &a.insights.tags,
                    &a.model,
                    &a.prompt_version,
                ],
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// The tenant's default enabled scorecard template; `None`: the tenant has none (the
/// built-in one applies).
pub async fn default_template(db: &Db, tenant: Uuid) -> Result<Option<ScorecardTemplate>, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let row = tx
                .query_opt(
                    "SELECT id, key, name, items FROM scorecard_templates
                     WHERE is_default AND enabled",
                    &[],
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            let items: Json = r.try_get(3)?;
            Ok(Some(ScorecardTemplate {
                id: Some(r.try_get(0)?),
                key: r.try_get(1)?,
                name: r.try_get(2)?,
                // Checked when written; an unreadable one scores nothing rather than failing.
                items: serde_json::from_value::<Vec<TemplateItem>>(items).unwrap_or_default(),
            }))
        })
    })
    .await
}

pub async fn save_scorecard(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
    s: Scorecard,
) -> Result<(), DbError> {
    let items =
        serde_json::to_value::<&Vec<ScoredItem>>(&s.items).unwrap_or(Json::Array(Vec::new()));
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute(
                "INSERT INTO scorecards (tenant_id, call_id, template_id, template_key, items,
                     total_score, max_score)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (call_id) DO UPDATE SET
                     template_id = EXCLUDED.template_id, template_key = EXCLUDED.template_key,
                     items = EXCLUDED.items, total_score = EXCLUDED.total_score,
                     max_score = EXCLUDED.max_score",
                &[
                    &tenant,
                    &call,
                    &s.template_id,
                    &s.template_key,
                    &items,
                    &s.total_score,
                    &s.max_score,
                ],
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// Insights and scorecard of a processed call, for the CRM push.
pub async fn analysis_for_crm(
    db: &Db,
    tenant: Uuid,
    call: Uuid,
) -> Result<(Option<crate::calls::model::CallInsights>, Option<Scorecard>), DbError> {
    use crate::calls::model::{CallInsights, NextAction};
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let insights = tx
                .query_opt(
                    "SELECT summary, pain_points, objections, next_actions, tags
                     FROM insights WHERE call_id = $1",
                    &[&call],
                )
                .await?
                .map(|r| -> Result<CallInsights, DbError> {
                    Ok(CallInsights {
                        summary: r.try_get(0)?,
                        pain_points: serde_json::from_value(r.try_get(1)?).unwrap_or_default(),
                        objections: serde_json::from_value(r.try_get(2)?).unwrap_or_default(),
                        next_actions: serde_json::from_value::<Vec<NextAction>>(r.try_get(3)?)
                            .unwrap_or_default(),
                        tags: r.try_get(4)?,
                    })
                })
                .transpose()?;
            let scorecard = tx
                .query_opt(
                    "SELECT template_id, template_key, items, total_score, max_score
                     FROM scorecards WHERE call_id = $1",
                    &[&call],
                )
                .await?
                .map(|r| -> Result<Scorecard, DbError> {
                    Ok(Scorecard {
                        template_id: r.try_get(0)?,
                        template_key: r.try_get(1)?,
                        items: serde_json::from_value(r.try_get(2)?).unwrap_or_default(),
                        total_score: r.try_get(3)?,
                        max_score: r.try_get::<_, Option<f64>>(4)?.unwrap_or(0.0),
                    })
                })
                .transpose()?;
            Ok((insights, scorecard))
        })
    })
    .await
}
