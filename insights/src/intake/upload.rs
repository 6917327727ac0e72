//! `POST /webhooks/recording`: our bridge and turn-api hand over a finished call's recording
//! with its facts, signed, in one request; the call then goes through the same pipeline as a
//! PBX's webhook, minus the download.
//!
//! - Body: the audio file itself (WAV or Ogg/Opus…), streamed to a spool file while its
//!   SHA-256 is computed, so a recording of an hour never sits in memory.
//! - `x-call-metadata`: base64url (no padding) of the JSON a webhook would carry (seed 000's
//!   fields, without `recording_url`).
//! - `x-timestamp` (unix seconds, required) and `x-signature`: hex HMAC-SHA256 under
//!   `INSIGHTS_WEBHOOK_SECRET` of `<x-timestamp>.<x-call-metadata>.<hex SHA-256 of the body>`.
//!   The timestamp is checked against the tolerance before the body is read, and the
//!   signature once it has been (a slow upload is not taken for a replay).
//!
//! The file is stored first under a fresh key, then the call, its recording row and its job
//! are written in one transaction. A duplicate (the uploader retrying after a lost answer)
//! answers 200 with the first call's id, and the copy just stored is deleted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;
use voice_core::tenancy::store;

use super::allowlist;
use super::payload::WebhookPayload;
use super::signature::TimestampCheck;
use super::store::{accept_upload, Source, UploadedRecording};
use super::webhook::WebhookAccepted;
use super::Intake;
use crate::http::error::{clip, ApiError, ErrorBody};
use crate::state::AppState;
use crate::storage;
use crate::worker::download::sniff_header;

/// Longest `x-call-metadata` header accepted.
const MAX_METADATA_CHARS: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
struct UploadQuery {
    domain: Option<String>,
    source: Option<String>,
}

/// Uploads a finished call's recording with its facts (our bridge and turn-api; HMAC-signed).
///
/// The body is the audio file. `x-call-metadata` is base64url (no padding) of the webhook
/// JSON (`event`, `call_id`, `from`, `to`, `agent_id`, `duration`, `timestamp`, `consent`,
/// `meta`). `x-signature` is the hex HMAC-SHA256, keyed with `INSIGHTS_WEBHOOK_SECRET`, of
/// `<x-timestamp>.<x-call-metadata>.<hex SHA-256 of the body>`; `x-timestamp` (unix seconds)
/// is required and must be within `[webhooks] timestamp_tolerance_secs` when the request
/// starts. Idempotent on `call_id` per tenant.
#[utoipa::path(
    post, path = "/webhooks/recording", tag = "webhooks",
    params(
        ("domain" = Option<String>, Query,
            description = "The tenant: FusionPBX domain name or domain_uuid (or header x-voice-domain)"),
        ("source" = Option<String>, Query, description = "`bridge` (default) or `turn_api`"),
        ("x-call-metadata" = String, Header, description = "base64url of the call's webhook JSON"),
        ("x-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-signature" = String, Header, description = "Hex HMAC-SHA256 of `<x-timestamp>.<x-call-metadata>.<hex sha256(body)>`"),
    ),
    request_body(content = Vec<u8>, content_type = "audio/wav"),
    responses(
        (status = 200, body = WebhookAccepted, description = "Stored (or already stored: `duplicate: true`)"),
        (status = 400, body = ErrorBody, description = "Bad metadata or query, or no tenant named"),
        (status = 401, body = ErrorBody, description = "Missing or wrong signature, or a stale timestamp"),
        (status = 403, body = ErrorBody, description = "Source address not allowed, or the tenant is disabled"),
        (status = 404, body = ErrorBody, description = "No tenant for this domain"),
        (status = 413, body = ErrorBody, description = "Recording over the size limit"),
        (status = 415, body = ErrorBody, description = "The body is not an audio file we can read"),
        (status = 422, body = ErrorBody, description = "A metadata field is missing or invalid"),
        (status = 503, body = ErrorBody, description = "Uploads are off (no secret), or storage or the database does not answer"),
    )
)]
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Extension(intake): Extension<Arc<Intake>>,
    request: Request,
) -> Response {
    intake.metrics.received.inc();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let source = allowlist::source(peer, request.headers(), intake.settings.trust_proxy);
    if !intake.allow.allows(source) {
        intake.metrics.rejected.inc();
        let who = source.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string());
        return ApiError::forbidden(format!(
            "{who} may not post recordings (see [webhooks] allow_from)"
        ))
        .into_response();
    }
    match handle(&state, &intake, request).await {
        Ok((tenant, accepted)) => {
            if accepted.duplicate {
                intake.metrics.duplicates.inc();
            } else {
                intake.metrics.accepted.inc();
            }
            tracing::info!(%tenant, call = %accepted.call_id, duplicate = accepted.duplicate,
                "recording accepted");
            Json(WebhookAccepted {
                ok: true,
                call_id: accepted.call_id,
                duplicate: accepted.duplicate,
            })
            .into_response()
        }
        Err(e) => {
            intake.metrics.rejected.inc();
            tracing::warn!(status = e.status.as_u16(), code = e.code, source = ?source,
                "recording refused");
            e.into_response()
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn unauthorized(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

async fn handle(
    state: &AppState,
    intake: &Intake,
    request: Request,
) -> Result<(Uuid, super::store::Accepted), ApiError> {
    let settings = &intake.settings;
    let Some(secret) = &intake.secret else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_disabled",
            "uploads are off: the service has no INSIGHTS_WEBHOOK_SECRET",
        ));
    };
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    // The cheap checks first: a stale or missing timestamp is refused before any upload.
    let timestamp = header(headers, "x-timestamp").ok_or_else(|| {
        unauthorized(
            "missing_timestamp",
            "missing x-timestamp (unix seconds)".into(),
        )
    })?;
    let at: i64 = timestamp
        .parse()
        .map_err(|_| unauthorized("bad_timestamp", "x-timestamp must be unix seconds".into()))?;
    let skew = chrono::Utc::now().timestamp().saturating_sub(at);
    if skew.unsigned_abs() > settings.timestamp_tolerance_secs {
        return Err(unauthorized(
            "stale_timestamp",
            format!(
                "x-timestamp is {skew} s from now, more than the {} s allowed",
                settings.timestamp_tolerance_secs
            ),
        ));
    }
    let metadata = header(headers, "x-call-metadata")
        .ok_or_else(|| ApiError::bad_request("missing_metadata", "missing x-call-metadata"))?;
    if metadata.len() > MAX_METADATA_CHARS {
        return Err(ApiError::bad_request(
            "bad_metadata",
            format!("x-call-metadata is longer than {MAX_METADATA_CHARS} characters"),
        ));
    }
    if header(headers, "x-signature").is_none() {
        return Err(unauthorized(
            "missing_signature",
            "missing x-signature".into(),
        ));
    }
    let query = Query::<UploadQuery>::try_from_uri(&parts.uri)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?
        .0;
    let source = match query.source.as_deref().unwrap_or("bridge") {
        "bridge" => Source::Bridge,
        "turn_api" => Source::TurnApi,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "source must be bridge or turn_api",
            ))
        }
    };

    let max = state.config.storage.max_recording_bytes;
    let spooled = Spooled::receive(body, max).await?;
    // Signed text without the timestamp part, which verify() prepends.
    let signed = format!("{metadata}.{}", spooled.sha256);
    let check = TimestampCheck {
        now: at,
        tolerance_secs: 0,
        required: true,
    };
    secret
        .verify(
            header(headers, "x-signature"),
            Some(timestamp),
            signed.as_bytes(),
            check,
        )
        .map_err(|r| unauthorized(r.code(), r.message(settings.timestamp_tolerance_secs)))?;

    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(metadata.trim_end_matches('='))
        .map_err(|_| ApiError::bad_request("bad_metadata", "x-call-metadata is not base64url"))?;
    let mut call = crate::http::extract::decode::<WebhookPayload>(&json)?.validate()?;
    call.recording_url = None;
    call.from_number = state.config.privacy.store_number(&call.from_number);
    call.to_number = state.config.privacy.store_number(&call.to_number);

    let domain = query
        .domain
        .or_else(|| header(headers, "x-voice-domain").map(str::to_string))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_domain",
                "name the tenant: ?domain=<FusionPBX domain name or uuid>, or header \
                 x-voice-domain",
            )
        })?;
    let tenant = store::lookup_tenant(&state.db, &domain)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant for domain {:?}", clip(&domain))))?;
    if !tenant.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tenant_disabled",
            format!("tenant {:?} is disabled", clip(&domain)),
        ));
    }

    let key = storage::recording_key(tenant.id, Uuid::new_v4(), spooled.format)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))?;
    state
        .storage
        .put_file(&key, &spooled.path)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "storing an uploaded recording failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the recording could not be stored; try again",
            )
        })?;
    let recording = UploadedRecording {
        storage_key: key.clone(),
        format: spooled.format.to_string(),
        content_type: spooled.content_type.to_string(),
        sample_rate: spooled.sample_rate,
        channels: spooled.channels,
        size_bytes: spooled.size as i64,
        sha256: spooled.sha256.clone(),
        duration_sec: spooled.duration_sec,
    };
    let accepted = accept_upload(&state.db, tenant.id, source, call, recording)
        .await
        .map_err(|e| ApiError::database(&e));
    let keep = matches!(&accepted, Ok(a) if a.recording_stored);
    if !keep {
        // A duplicate, or nothing written: the copy just stored would be an orphan.
        if let Err(e) = state.storage.delete(&key).await {
            tracing::warn!(error = %e, "could not delete an unused upload");
        }
    }
    let accepted = accepted?;
    Ok((tenant.id, accepted.accepted))
}

/// The body on disk, with what was learnt reading it.
struct Spooled {
    path: PathBuf,
    size: u64,
    sha256: String,
    format: &'static str,
    content_type: &'static str,
    channels: Option<i16>,
    sample_rate: Option<i32>,
    duration_sec: Option<f64>,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Spooled {
    async fn receive(body: axum::body::Body, max: u64) -> Result<Self, ApiError> {
        let path = std::env::temp_dir().join(format!("insights-upload-{}", Uuid::new_v4()));
        let failed = |what: &str| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "spool_unavailable",
                format!("the upload could not be spooled ({what}); try again"),
            )
        };
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|_| failed("create"))?;
        let mut spooled = Spooled {
            path,
            size: 0,
            sha256: String::new(),
            format: "",
            content_type: "",
            channels: None,
            sample_rate: None,
            duration_sec: None,
        };
        let mut hasher = Sha256::new();
        let mut head: Vec<u8> = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::bad_request("body_broken", "the upload broke off before its end")
            })?;
            spooled.size += chunk.len() as u64;
            if spooled.size > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("recordings are limited to {max} bytes"),
                ));
            }
            if head.len() < 4096 {
                let take = (4096 - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|_| failed("write"))?;
        }
        file.flush().await.map_err(|_| failed("flush"))?;
        drop(file);
        let Some(kind) = sniff_header(&head, spooled.size) else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_audio",
                "the body is not an audio file we can read (WAV, Ogg, MP3, FLAC, WebM, M4A)",
            ));
        };
        spooled.sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        spooled.format = kind.format;
        spooled.content_type = kind.content_type;
        spooled.channels = kind.channels.and_then(|c| i16::try_from(c).ok());
        spooled.sample_rate = kind.sample_rate.and_then(|r| i32::try_from(r).ok());
        spooled.duration_sec = kind.duration_sec;
        Ok(spooled)
    }
}
