//! `process_call`: download → store → transcribe → analyze (segments, insights) → score →
//! processed → CRM push (when enabled).
//!
//! Each stage first looks for its own output and skips when it is there, so a job that runs
//! again (a retry, a reclaimed job whose worker died, a duplicate delivery) redoes only what
//! is missing and writes each result once. Progress goes on the call row as it happens:
//! `status` (downloading, transcribing, …) and the stage's entry in `stage_status`.

use std::time::Instant;

use serde_json::json;
use tracing::info;

use super::download;
use super::persist::{self, CallToProcess, NewRecording};
use super::stage::{Stage, StageError, StageState};
use super::Pipeline;
use crate::analyze::{self, AnalyzeError};
use crate::calls::model::Transcription;
use crate::crm::{self, CallForCrm};
use crate::storage::{self, StorageError};
use crate::transcribe::{Audio, TranscribeError};

/// What a finished `process_call` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    /// Already processed (a duplicate or late delivery): nothing done.
    AlreadyDone,
    SkippedNoConsent,
    /// The call is gone (deleted with its tenant, or by retention).
    NoCall,
}

/// Runs the pipeline for `call` of `tenant`; `attempt` is the job's attempt (for the record).
pub async fn process_call(
    p: &Pipeline,
    tenant: uuid::Uuid,
    call_id: uuid::Uuid,
    attempt: u32,
) -> Result<Outcome, (Stage, StageError)> {
    let db = &p.db;
    let load = persist::load_call(db, tenant, call_id).await;
    let call = match load.map_err(|e| (Stage::Download, e.into()))? {
        Some(c) => c,
        None => return Ok(Outcome::NoCall),
    };
    match call.status.as_str() {
        // A CRM push that failed after `processed` is what a retry has left to do. A push
        // already complete is left as it is: its stage keeps its "done" and its figures.
        "processed" if p.crm.is_some() => {
            let pushed = crm::pushed_steps(db, tenant, call_id).await;
            if !pushed.map_err(|e| (Stage::Crm, e.into()))?.complete() {
                run_stage(p, &call, Stage::Crm, attempt, crm_stage(p, &call)).await?;
            }
            return Ok(Outcome::AlreadyDone);
        }
        "processed" => return Ok(Outcome::AlreadyDone),
        "skipped_no_consent" => return Ok(Outcome::SkippedNoConsent),
        _ => {}
    }
    if !p
        .privacy
        .may_process(call.consent, call.tenant_requires_consent)
    {
        persist::set_status(db, tenant, call_id, "skipped_no_consent", None)
            .await
            .map_err(|e| (Stage::Download, e.into()))?;
        p.metrics.skipped_no_consent.inc();
        info!(%tenant, call = %call_id, "no consent: call not processed");
        return Ok(Outcome::SkippedNoConsent);
    }

    run_stage(p, &call, Stage::Download, attempt, download_stage(p, &call)).await?;
    let transcript = run_stage(
        p,
        &call,
        Stage::Transcribe,
        attempt,
        transcribe_stage(p, &call),
    )
    .await?;
    run_stage(
        p,
        &call,
        Stage::Analyze,
        attempt,
        analyze_stage(p, &call, &transcript),
    )
    .await?;
    run_stage(
        p,
        &call,
        Stage::Score,
        attempt,
        score_stage(p, &call, &transcript),
    )
    .await?;
    persist::finish(db, tenant, call_id)
        .await
        .map_err(|e| (Stage::Score, e.into()))?;
    if p.crm.is_some() {
        run_stage(p, &call, Stage::Crm, attempt, crm_stage(p, &call)).await?;
    }
    Ok(Outcome::Processed)
}

/// What a stage's body returns: its value, and `Some(detail)` when it did the work or
/// `None` when its output was already there.
type StageResult<T> = Result<(T, Option<serde_json::Value>), StageError>;

/// Marks the stage running, runs it, then marks it done, skipped or failed (the failure's
/// final marking, failed or retrying, is the worker's: it knows whether attempts remain).
async fn run_stage<T>(
    p: &Pipeline,
    call: &CallToProcess,
    stage: Stage,
    attempt: u32,
    body: impl std::future::Future<Output = StageResult<T>>,
) -> Result<T, (Stage, StageError)> {
    let started = Instant::now();
    // The CRM push runs on a processed call: its status stays.
    let status = (stage != Stage::Crm).then(|| stage.call_status());
    persist::mark(
        &p.db,
        call.tenant,
        call.id,
        stage,
        &StageState::Running { attempt },
        status,
        None,
    )
    .await
    .map_err(|e| (stage, e.into()))?;
    let (value, detail) = body.await.map_err(|e| (stage, e))?;
    let state = match detail {
        Some(detail) => {
            let elapsed = started.elapsed();
            p.metrics.observe(stage, elapsed.as_secs_f64());
            StageState::Done {
                attempt,
                ms: elapsed.as_millis() as u64,
                detail,
            }
        }
        None => StageState::Skipped {
            reason: "already done",
        },
    };
    persist::mark(&p.db, call.tenant, call.id, stage, &state, None, None)
        .await
        .map_err(|e| (stage, e.into()))?;
    Ok(value)
}

/// A recording too large or a key refused will not be accepted on a retry; anything else
/// (the store down, a network error) may be.
fn storage_error(e: StorageError) -> StageError {
    match e {
        StorageError::TooLarge { .. } | StorageError::InvalidKey(_) => {
            StageError::Permanent(format!("storage: {e}"))
        }
        other => StageError::Retryable(format!("storage: {other}")),
    }
}

async fn download_stage(p: &Pipeline, call: &CallToProcess) -> StageResult<()> {
    if persist::recording(&p.db, call.tenant, call.id)
        .await?
        .is_some()
    {
        return Ok(((), None));
    }
    let Some(url) = call.recording_url.as_deref() else {
        return Err(StageError::Permanent(
            "the call has no recording_url and no uploaded recording".into(),
        ));
    };
    let file = download::fetch(&p.http, &p.settings.download, url).await?;
    let kind = file.kind;
    let key = storage::recording_key(call.tenant, call.id, kind.format)
        .map_err(|e| StageError::Permanent(format!("storage key: {e}")))?;
    let size = file.bytes.len() as i64;
    let sha256 = hex_sha256(&file.bytes);
    p.storage
        .put(&key, file.bytes.clone())
        .await
        .map_err(storage_error)?;
    persist::save_recording(
        &p.db,
        call.tenant,
        call.id,
        NewRecording {
            storage_key: key,
            original_url: Some(url.to_string()),
            format: kind.format.to_string(),
            content_type: kind.content_type.to_string(),
            sample_rate: kind.sample_rate.and_then(|r| i32::try_from(r).ok()),
            channels: kind.channels.and_then(|c| i16::try_from(c).ok()),
            size_bytes: size,
            sha256,
            duration_sec: kind.duration_sec,
        },
    )
    .await?;
    Ok(((), Some(json!({"bytes": size, "format": kind.format}))))
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

async fn transcribe_stage(p: &Pipeline, call: &CallToProcess) -> StageResult<Transcription> {
    if let Some(t) = persist::transcript(&p.db, call.tenant, call.id).await? {
        return Ok((t, None));
    }
    let Some(recording) = persist::recording(&p.db, call.tenant, call.id).await? else {
        return Err(StageError::Permanent("the recording is gone".into()));
    };
    let bytes = p
        .storage
        .get(&recording.storage_key)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => StageError::Permanent("the recording is gone".into()),
            other => storage_error(other),
        })?;
    let audio = Audio {
        bytes,
        content_type: recording.content_type.clone(),
    };
    let transcript = p
        .transcriber
        .transcribe(&audio)
        .await
        .map_err(|e| match e {
            TranscribeError::Retryable(m) => StageError::Retryable(format!("transcription: {m}")),
            TranscribeError::Permanent(m) => StageError::Permanent(format!("transcription: {m}")),
            TranscribeError::Config(m) => StageError::Retryable(format!("transcription: {m}")),
        })?;
    let detail =
        json!({"provider": transcript.provider, "utterances": transcript.utterances.len()});
    persist::save_transcript(&p.db, call.tenant, call.id, transcript.clone()).await?;
    Ok((transcript, Some(detail)))
}

fn analyze_error(what: &str, e: AnalyzeError) -> StageError {
    // Invalid output after the analyzer's own retries may still pass on a later attempt
    // (models are not deterministic): the queue's backoff gives it that chance.
    StageError::Retryable(format!("{what}: {e}"))
}

async fn analyze_stage(p: &Pipeline, call: &CallToProcess, t: &Transcription) -> StageResult<()> {
    if persist::has_analysis(&p.db, call.tenant, call.id).await? {
        return Ok(((), None));
    }
    let analysis = p
        .analyzer
        .analyze(t, call.local_date)
        .await
        .map_err(|e| analyze_error("analysis", e))?;
    let detail = json!({
        "model": analysis.model,
        "promptVersion": analysis.prompt_version,
        "segments": analysis.segments.len(),
    });
    persist::save_analysis(&p.db, call.tenant, call.id, analysis).await?;
    Ok(((), Some(detail)))
}

async fn score_stage(p: &Pipeline, call: &CallToProcess, t: &Transcription) -> StageResult<()> {
    if persist::has_scorecard(&p.db, call.tenant, call.id).await? {
        return Ok(((), None));
    }
    let template = match persist::default_template(&p.db, call.tenant).await? {
        Some(t) if analyze::validate_template(&t.items).is_ok() => t,
        _ => analyze::default_template(),
    };
    let scorecard = p
        .analyzer
        .score(t, &template)
        .await
        .map_err(|e| analyze_error("scorecard", e))?;
    let detail = json!({"template": scorecard.template_key, "total": scorecard.total_score});
    persist::save_scorecard(&p.db, call.tenant, call.id, scorecard).await?;
    Ok(((), Some(detail)))
}

/// Pushes a processed call to the CRM once: a call already pushed is skipped, and each
/// step's outcome is recorded as a CRM event.
pub(super) async fn crm_stage(p: &Pipeline, call: &CallToProcess) -> StageResult<()> {
    let Some(crm) = &p.crm else {
        return Ok(((), None));
    };
    let done = crm::pushed_steps(&p.db, call.tenant, call.id).await?;
    if done.complete() {
        return Ok(((), None));
    }
    let (insights, scorecard) = persist::analysis_for_crm(&p.db, call.tenant, call.id).await?;
    let request = CallForCrm {
        call_id: call.id,
        provider_call_id: call.provider_call_id.clone(),
        from: call.from_number.clone(),
        to: call.to_number.clone(),
        phones_hashed: crate::privacy::is_hashed(&call.from_number),
        started_at: call.started_at,
        duration_sec: call.duration_sec,
        insights,
        scorecard,
        panel_url: p
            .settings
            .public_url
            .as_deref()
            .map(|base| format!("{}/panel/calls/{}", base.trim_end_matches('/'), call.id)),
    };
    let events = crm.push(&request, &done).await;
    crm::record(&p.db, call.tenant, call.id, &events).await?;
    if crm::should_retry(&events) {
        return Err(StageError::Retryable("CRM push failed; will retry".into()));
    }
    let outcomes: Vec<_> = events
        .iter()
        .map(|e| json!({"action": e.action, "status": e.status.as_str()}))
        .collect();
    Ok(((), Some(json!({"steps": outcomes}))))
}

/// A `push_crm` job (from `POST /calls/:id/push-crm`): the CRM stage alone, on a processed
/// call.
pub async fn push_crm(
    p: &Pipeline,
    tenant: uuid::Uuid,
    call_id: uuid::Uuid,
    attempt: u32,
) -> Result<Outcome, (Stage, StageError)> {
    let load = persist::load_call(&p.db, tenant, call_id).await;
    let Some(call) = load.map_err(|e| (Stage::Crm, e.into()))? else {
        return Ok(Outcome::NoCall);
    };
    if p.crm.is_none() {
        return Err((
            Stage::Crm,
            StageError::Permanent("CRM push is not enabled (ENABLE_CRM_PUSH)".into()),
        ));
    }
    run_stage(p, &call, Stage::Crm, attempt, crm_stage(p, &call)).await?;
    Ok(Outcome::Processed)
}
