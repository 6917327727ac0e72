//! The session endpoints. A Lua IVR script creates a session (and plays the greeting),
//! posts each caller recording as a turn (and plays the answer, then continues, transfers
//! or hangs up as told), and ends the session when the call ends.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use utoipa::ToSchema;

use serde_json::json;
use voice_core::tenancy::events::{kinds, NewEvent};

use super::audio::{decode_wav, Written};
use super::auth::{self, Caller};
use super::body::{self, BodyKind};
use super::error::{clip, ApiError, ErrorBody};
use super::tenants;
use super::turns::{NextAction, Reply, TurnsError};
use super::AppState;
use crate::sessions::{now_ms, Session, TurnRecord};

/// Longest caller or reply text in an answer, in characters: two of them, even fully
/// escaped, stay well under mod_curl's 64000-byte limit.
pub const MAX_TEXT_CHARS: usize = 4000;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSession {
    /// FreeSWITCH's call UUID.
    pub call_id: String,
    /// The FusionPBX domain_name or domain_uuid; must be the API key's tenant.
    pub domain: String,
    pub caller: Option<String>,
    /// The dialled number: with a database tenant, it picks the agent that claims it.
    pub callee: Option<String>,
    /// An agent number (or name of a number an agent claims) to use instead of `callee`.
    pub agent: Option<String>,
    /// The caller's consent to recording analysis (LGPD), when the IVR asked. Sent with the
    /// call's recording to call-insights; absent, the tenant's policy decides there.
    pub consent: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Greeting {
    pub text: String,
    /// The WAV on the shared filesystem (`null` when the greeting is silent).
    pub audio_path: Option<String>,
    /// The same WAV over HTTP.
    pub audio_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    pub session_id: String,
    pub greeting: Greeting,
    /// `continue`, `transfer` or `hangup`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A turn as JSON (or form field): the recording FreeSWITCH wrote. A raw `audio/wav` body
/// is accepted in its place.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TurnRequest {
    /// Absolute path inside one of `audio.recordings_dirs`.
    pub audio_path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TurnAnswer {
    /// This turn's number, from 1.
    pub turn: u32,
    pub caller_text: String,
    pub reply_text: String,
    /// The answer WAV on the shared filesystem (`null` when there is nothing to play).
    pub audio_path: Option<String>,
    pub audio_url: Option<String>,
    /// `continue`, `transfer` or `hangup`.
    pub action: String,
    /// Where to transfer, with `transfer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Milliseconds per step (`trim_ms`, `stt_ms`, `llm_ms`, `tts_ms`).
    #[schema(value_type = Object)]
    pub timings: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionSummary {
    pub session_id: String,
    pub call_id: String,
    pub domain: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    /// Caller turns answered.
    pub turns: u32,
    pub duration_ms: u64,
    /// Every exchange, greeting first (turn 0).
    pub history: Vec<TurnRecord>,
    /// The action of each exchange, in order.
    pub actions: Vec<String>,
    /// The engine's conversation: history, messages taken, tool calls.
    #[schema(value_type = Object)]
    pub conversation: serde_json::Value,
}

fn body_error(e: BytesRejection) -> ApiError {
    ApiError::new(
        e.status(),
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_body"
        },
        e.body_text(),
    )
}

fn clip_text(text: String) -> String {
    if text.chars().count() <= MAX_TEXT_CHARS {
        return text;
    }
    text.chars().take(MAX_TEXT_CHARS).collect()
}

fn engine_error(state: &AppState, e: TurnsError) -> ApiError {
    if matches!(e, TurnsError::Provider(_) | TurnsError::Unavailable(_)) {
        state.metrics.provider_errors.inc();
    }
    warn!(error = %e, "engine failed");
    e.into()
}

/// The session `id`, if it exists and belongs to the caller's tenant.
async fn owned(state: &AppState, id: &str, caller: &Caller) -> Result<Session, ApiError> {
    let session = state
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(id))?;
    let mine = match caller {
        Caller::Toml(tenant) => session.tenant_id.is_none() && session.tenant == *tenant,
        Caller::Db(key) => session.tenant_id == Some(key.tenant_id.to_string()),
    };
    if !mine {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this session belongs to another tenant",
        ));
    }
    Ok(session)
}

/// Writes the reply audio as `{session}-{turn}.wav`, unless there is none.
async fn write_audio(
    state: &AppState,
    session: &str,
    turn: u32,
    reply: &Reply,
) -> Result<Option<Written>, ApiError> {
    if reply.audio.is_empty() {
        return Ok(None);
    }
    let name = format!("{session}-{turn}");
    state
        .audio
        .write(&name, reply.audio_rate, &reply.audio)
        .await
        .map(Some)
}

fn record(turn: u32, caller_text: &str, reply_text: &str, action: &NextAction) -> TurnRecord {
    TurnRecord {
        turn,
        caller_text: caller_text.to_string(),
        reply_text: reply_text.to_string(),
        action: action.name().to_string(),
        target: action.target(),
    }
}

/// Starts a session and speaks the greeting.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    request_body(content = CreateSession, description = "JSON, or the same fields form-encoded (mod_curl's default)"),
    responses(
        (status = 201, body = SessionCreated, description = "Session created; play the greeting"),
        (status = 400, body = ErrorBody, description = "Bad JSON or a missing field"),
        (status = 401, body = ErrorBody, description = "Missing or unknown API key"),
        (status = 403, body = ErrorBody, description = "The domain is not the key's tenant, the tenant is disabled, or the key's role cannot run calls"),
        (status = 422, body = ErrorBody, description = "No agent answers the number and the tenant has no default agent"),
        (status = 429, body = ErrorBody, description = "The tenant's requests per minute are spent (see Retry-After)"),
        (status = 502, body = ErrorBody, description = "A provider failed"),
        (status = 503, body = ErrorBody, description = "Providers or the session store unavailable"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let started = Instant::now();
    let caller = auth::caller(&state, &headers).await?;
    let body = body.map_err(body_error)?;
    let req: CreateSession = body::decode(body::kind(&headers, &body)?, &body)?;
    let call_id = req.call_id.trim();
    if call_id.is_empty() || call_id.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "call_id must have 1 to 200 characters",
        ));
    }
    let domain = req.domain.trim();
    let (tenant, db_call) = match &caller {
        Caller::Toml(tenant) => {
            let settings = state.config.tenants.get(tenant);
            let matches = domain.eq_ignore_ascii_case(tenant)
                || settings.is_some_and(|t| {
                    !t.domain_uuid.is_empty() && domain.eq_ignore_ascii_case(&t.domain_uuid)
                });
            if !matches {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("domain {:?} is not this API key's tenant", clip(domain)),
                ));
            }
            (tenant.clone(), None)
        }
        Caller::Db(key) => {
            let number = req.agent.as_deref().or(req.callee.as_deref());
            let call = tenants::for_new_session(&state, key, domain, number).await?;
            (call.tenant.tenant.domain_name.clone(), Some(call))
        }
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut session = Session {
        id: id.clone(),
        tenant: tenant.clone(),
        call_id: call_id.to_string(),
        caller: req.caller.map(clip_text),
        callee: req.callee.map(clip_text),
        created_at_ms: now_ms(),
        turns: 0,
        conversation: serde_json::Value::Null,
        history: Vec::new(),
        tenant_id: db_call.as_ref().map(|c| c.tenant.tenant.id.to_string()),
        agent_id: db_call.as_ref().map(|c| c.agent_id.to_string()),
        consent: req.consent,
    };
    let turns = match &db_call {
        Some(call) => call.turns.clone(),
        None => state.turns_for(&tenant),
    };
    let reply = turns
        .greeting(&mut session.conversation)
        .await
        .map_err(|e| engine_error(&state, e))?;
    let written = write_audio(&state, &id, 0, &reply).await?;
    let text = clip_text(reply.reply_text);
    session.history.push(record(0, "", &text, &reply.action));
    state.store.put(&session).await?;
    let greeting = (reply.audio.as_slice(), reply.audio_rate);
    let timings = &reply.timings;
    state.recording.greeting(&session, greeting, timings).await;
    state.metrics.sessions_created.inc();
    state
        .metrics
        .greeting_seconds
        .observe(started.elapsed().as_secs_f64());
    if let Some(call) = &db_call {
        emit(
            &state,
            &session,
            call.agent_id,
            kinds::CALL_STARTED,
            json!({
                "channel": "turn-api",
                "caller": session.caller,
                "callee": session.callee,
            }),
        );
    }
    info!(session = %id, tenant = %tenant, call_id = %session.call_id, "session created");
    let (audio_path, audio_url) = written.map(|w| (w.path, w.url)).unzip();
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            session_id: id,
            greeting: Greeting {
                text,
                audio_path,
                audio_url,
            },
            action: reply.action.name().into(),
            target: reply.action.target(),
        }),
    ))
}

/// Answers one caller turn.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/turns", tag = "sessions",
    params(("id" = String, Path, description = "session_id from POST /v1/sessions")),
    request_body(
        content(
            (TurnRequest = "application/json"),
            (TurnRequest = "application/x-www-form-urlencoded"),
            (Vec<u8> = "audio/wav"),
        ),
        description = "The recording: {audio_path} as JSON, as a form field, or as JSON sent with the form content type (mod_curl), or the WAV itself"
    ),
    responses(
        (status = 200, body = TurnAnswer, description = "Play audio_path, then do `action`"),
        (status = 400, body = ErrorBody, description = "Bad body, audio path outside the allowed folders, unreadable WAV"),
        (status = 401, body = ErrorBody, description = "Missing or unknown API key"),
        (status = 403, body = ErrorBody, description = "The session belongs to another tenant"),
        (status = 404, body = ErrorBody, description = "Unknown, ended or expired session"),
        (status = 409, body = ErrorBody, description = "Another turn of this session is in progress"),
        (status = 413, body = ErrorBody, description = "Body over server.max_body_bytes"),
        (status = 429, body = ErrorBody, description = "The tenant's requests per minute are spent (see Retry-After)"),
        (status = 415, body = ErrorBody, description = "Unsupported content type"),
        (status = 502, body = ErrorBody, description = "A provider failed"),
        (status = 503, body = ErrorBody, description = "Providers or the session store unavailable"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn turn(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TurnAnswer>, ApiError> {
    let started = Instant::now();
    let caller = auth::caller(&state, &headers).await?;
    let body = body.map_err(body_error)?;
    // Claimed before the read, so a turn never starts from a state another one is
    // about to replace.
    let _busy = state.claim(&id)?;
    let mut session = owned(&state, &id, &caller).await?;
    let db_call = match &caller {
        Caller::Db(key) => Some(tenants::for_session(&state, key, &session).await?),
        Caller::Toml(_) => None,
    };
    let limits = &state.config.limits;
    let over_time = session.age_ms(now_ms()) >= limits.max_session_secs.saturating_mul(1000);
    if session.turns >= limits.max_turns || over_time {
        return goodbye(&state, session).await.map(Json);
    }
    let (samples, rate) = match body::kind(&headers, &body)? {
        BodyKind::Wav => decode_wav(&body)?,
        kind => {
            let req: TurnRequest = body::decode(kind, &body)?;
            state.audio.read_recording(req.audio_path.trim()).await?
        }
    };
    let turns = match &db_call {
        Some(call) => call.turns.clone(),
        None => state.turns_for(&session.tenant),
    };
    let engine_started = Instant::now();
    let reply = turns
        .turn(&mut session.conversation, &samples, rate)
        .await
        .map_err(|e| engine_error(&state, e))?;
    let engine_time = engine_started.elapsed();
    session.turns += 1;
    let n = session.turns;
    let written = write_audio(&state, &session.id, n, &reply).await?;
    let caller_text = clip_text(reply.caller_text);
    let reply_text = clip_text(reply.reply_text);
    session
        .history
        .push(record(n, &caller_text, &reply_text, &reply.action));
    state.store.put(&session).await?;
    let heard = (samples.as_slice(), rate);
    let answer = (reply.audio.as_slice(), reply.audio_rate);
    let timings = &reply.timings;
    state.recording.turn(&session, heard, answer, timings).await;
    state.metrics.turns.inc();
    let total = started.elapsed();
    state.metrics.turn_seconds.observe(total.as_secs_f64());
    state
        .metrics
        .overhead_seconds
        .observe(total.saturating_sub(engine_time).as_secs_f64());
    if let Some(call) = &db_call {
        let latency_ms = u64::try_from(total.as_millis()).unwrap_or(u64::MAX);
        emit(
            &state,
            &session,
            call.agent_id,
            kinds::TURN_COMPLETED,
            json!({
                "turn": n,
                "latency_ms": latency_ms,
            }),
        );
        if let NextAction::Transfer { target } = &reply.action {
            emit(
                &state,
                &session,
                call.agent_id,
                kinds::HANDOFF,
                json!({
                    "reason": "transfer",
                    "target": target,
                }),
            );
        }
    }
    info!(session = %session.id, turn = n, action = reply.action.name(), "turn answered");
    let (audio_path, audio_url) = written.map(|w| (w.path, w.url)).unzip();
    Ok(Json(TurnAnswer {
        turn: n,
        caller_text,
        reply_text,
        audio_path,
        audio_url,
        action: reply.action.name().into(),
        target: reply.action.target(),
        timings: small_timings(reply.timings),
    }))
}

/// Timings are a handful of numbers; anything bigger is dropped to keep the answer small.
fn small_timings(timings: serde_json::Value) -> serde_json::Value {
    if timings.to_string().len() > 1000 {
        return serde_json::Value::Object(Default::default());
    }
    timings
}

/// A session past `limits`: the goodbye, and `hangup`.
async fn goodbye(state: &AppState, mut session: Session) -> Result<TurnAnswer, ApiError> {
    let limits = &state.config.limits;
    let n = session.turns + 1;
    let action = NextAction::Hangup;
    session
        .history
        .push(record(n, "", &limits.goodbye_text, &action));
    state.store.put(&session).await?;
    state.recording.goodbye(&session, &limits.goodbye_wav).await;
    state.metrics.limit_goodbyes.inc();
    info!(session = %session.id, turns = session.turns, "session limit reached: goodbye");
    let wav = limits.goodbye_wav.display().to_string();
    Ok(TurnAnswer {
        turn: n,
        caller_text: String::new(),
        reply_text: clip_text(limits.goodbye_text.clone()),
        audio_path: (!wav.is_empty()).then_some(wav),
        audio_url: None,
        action: action.name().into(),
        target: None,
        timings: serde_json::json!({}),
    })
}

/// Ends a session and returns its summary (`POST …/end` or `DELETE`).
#[utoipa::path(
    post, path = "/v1/sessions/{id}/end", tag = "sessions",
    params(("id" = String, Path, description = "session_id")),
    responses(
        (status = 200, body = SessionSummary, description = "Ended; the conversation summary"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn end_session(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SessionSummary>, ApiError> {
    let caller = auth::caller(&state, &headers).await?;
    owned(&state, &id, &caller).await?;
    // Removed only after the tenant check; gone meanwhile (expired, ended twice) is a 404.
    let session = state
        .store
        .remove(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(&id))?;
    state.recording.end(&session).await;
    state.metrics.sessions_ended.inc();
    if let Some(agent) = session.agent_id.as_deref().and_then(|a| a.parse().ok()) {
        let seconds = session.age_ms(now_ms()) as f64 / 1000.0;
        emit(
            &state,
            &session,
            agent,
            kinds::CALL_ENDED,
            json!({
                "seconds": seconds,
                "turns": session.turns,
                "reason": "ended",
            }),
        );
    }
    info!(session = %id, turns = session.turns, "session ended");
    Ok(Json(SessionSummary {
        duration_ms: session.age_ms(now_ms()),
        actions: session.history.iter().map(|r| r.action.clone()).collect(),
        session_id: session.id,
        call_id: session.call_id,
        domain: session.tenant,
        caller: session.caller,
        callee: session.callee,
        turns: session.turns,
        history: session.history,
        conversation: session.conversation,
    }))
}

/// `DELETE /v1/sessions/{id}`: the same as `POST …/end`.
#[utoipa::path(
    delete, path = "/v1/sessions/{id}", tag = "sessions", operation_id = "delete_session",
    params(("id" = String, Path, description = "session_id")),
    responses(
        (status = 200, body = SessionSummary, description = "Ended; the conversation summary"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
#[allow(dead_code)]
fn delete_session_doc() {}

/// An answer WAV, for players that fetch by URL (mod_httapi). The name is unguessable
/// (it holds the session id), so no key is asked: FreeSWITCH's URL players send none.
#[utoipa::path(
    get, path = "/v1/audio/{file}", tag = "audio",
    params(("file" = String, Path, description = "File name from audio_url")),
    responses(
        (status = 200, content_type = "audio/wav", body = Vec<u8>, description = "The WAV"),
        (status = 400, body = ErrorBody, description = "Not a plain .wav file name"),
        (status = 404, body = ErrorBody, description = "No such file"),
    )
)]
pub async fn audio(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = state.audio.read_answer(&file).await?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes))
}

/// Records one fact of a database tenant's session in the event log.
fn emit(
    state: &AppState,
    session: &Session,
    agent: uuid::Uuid,
    kind: &str,
    data: serde_json::Value,
) {
    let (Some(tenancy), Some(tenant)) = (
        &state.tenancy,
        session.tenant_id.as_deref().and_then(|t| t.parse().ok()),
    ) else {
        return;
    };
    tenancy.emit(
        NewEvent::now(tenant, kind)
            .agent(agent)
            .call(session.call_id.clone())
            .data(data),
    );
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
