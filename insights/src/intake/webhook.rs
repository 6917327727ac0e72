//! `POST /webhooks/voip`: the checks in the order of [`crate::intake`]'s module comment, then
//! the call and its job stored together. Every refusal is counted and logged with its code
//! and source address, never with the body (it holds phone numbers).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use voice_core::tenancy::store;

use super::allowlist;
use super::payload::WebhookPayload;
use super::signature::TimestampCheck;
use super::store::{accept, Accepted, Source};
use super::Intake;
use crate::http::error::{clip, ApiError, ErrorBody};
use crate::state::AppState;

/// The answer to an accepted webhook (a new call, or one already stored).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAccepted {
    pub ok: bool,
    /// Our id of the call (the same for every duplicate).
    #[schema(value_type = String, format = "uuid")]
    pub call_id: Uuid,
    /// The call was already stored: nothing changed.
    pub duplicate: bool,
}

/// The webhook body (seed 000). Fields not listed are ignored.
#[derive(ToSchema)]
#[schema(as = VoipWebhook)]
#[allow(dead_code)]
pub struct WebhookPayloadDoc {
    /// `call.completed`, `call.ended` or `recording.completed`.
    #[schema(example = "call.completed")]
    pub event: String,
    /// The sender's call id (1 to 200 characters; a number is taken as its text): the
    /// idempotency key, per tenant.
    #[schema(example = "abc-123")]
    pub call_id: String,
    /// Caller: a phone number, extension or SIP user (up to 64 of letters, digits and
    /// `+*#_.@:-`).
    #[schema(example = "+551199999999")]
    pub from: Option<String>,
    /// Callee, as `from`.
    #[schema(example = "+551188888888")]
    pub to: Option<String>,
    /// The sender's agent id (up to 200 characters; a number is taken as its text).
    #[schema(example = "agent-42")]
    pub agent_id: Option<String>,
    /// Call length in seconds, 0 to 172800 (a numeric string is accepted).
    #[schema(example = 523)]
    pub duration: Option<f64>,
    /// Where the recording can be fetched: http(s), up to 2048 characters.
    #[schema(example = "https://voip.example.com/rec/abc-123.wav")]
    pub recording_url: Option<String>,
    /// When the call ended: RFC 3339 or unix seconds. With `duration`, it gives the start.
    #[schema(example = "2025-04-01T14:15:22Z")]
    pub timestamp: Option<String>,
    /// The caller's consent to recording and analysis. `false`: the call is stored as
    /// `skipped_no_consent` and never processed. Absent: the tenant's policy decides
    /// (today: processed).
    pub consent: Option<bool>,
    /// Anything else, kept with the call (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub meta: Option<()>,
}

/// `?domain=`.
#[derive(Debug, Deserialize)]
struct DomainQuery {
    domain: Option<String>,
}

/// Reports a finished call (any PBX; HMAC-signed).
///
/// Signature: `x-signature` = hex HMAC-SHA256 (an optional `sha256=` prefix is accepted) of
/// the raw body, keyed with the service's `INSIGHTS_WEBHOOK_SECRET` (one for every tenant
/// for now). With `x-timestamp` (unix seconds), the signed text is `<x-timestamp>.<raw body>`
/// and the timestamp must be within `[webhooks] timestamp_tolerance_secs` (default 300) of
/// the service's clock; `require_timestamp` makes it mandatory. Idempotent on `call_id` per
/// tenant: a duplicate answers 200 with the first call's id and changes nothing. Body up to
/// `[webhooks] max_body_bytes` (64 KiB).
#[utoipa::path(
    post, path = "/webhooks/voip", tag = "webhooks",
    params(
        ("domain" = Option<String>, Query,
            description = "The tenant: FusionPBX domain name or domain_uuid (or header x-voice-domain)"),
        ("x-voice-domain" = Option<String>, Header, description = "The tenant, when `domain` is not in the query"),
        ("x-signature" = String, Header, description = "Hex HMAC-SHA256 of the signed text, optionally `sha256=`-prefixed"),
        ("x-timestamp" = Option<i64>, Header, description = "Unix seconds; when present it is signed too (`<x-timestamp>.<body>`)"),
    ),
    request_body(content = WebhookPayloadDoc, content_type = "application/json"),
    responses(
        (status = 200, body = WebhookAccepted, description = "Stored (or already stored: `duplicate: true`)"),
        (status = 400, body = ErrorBody, description = "Malformed JSON, or no tenant named"),
        (status = 401, body = ErrorBody, description = "Missing or wrong signature, or a timestamp outside the tolerance"),
        (status = 403, body = ErrorBody, description = "Source address not allowed, or the tenant is disabled"),
        (status = 404, body = ErrorBody, description = "No tenant for this domain"),
        (status = 413, body = ErrorBody, description = "Body over the size limit"),
        (status = 415, body = ErrorBody, description = "Body is not application/json"),
        (status = 422, body = ErrorBody, description = "A field is missing or invalid (the message names it)"),
        (status = 503, body = ErrorBody, description = "Webhooks are off (no secret configured), or the database does not answer"),
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
    match handle(&state, &intake, source, request).await {
        Ok((tenant, accepted)) => {
            if accepted.duplicate {
                intake.metrics.duplicates.inc();
            } else {
                intake.metrics.accepted.inc();
            }
            tracing::info!(
                tenant = %tenant,
                call = %accepted.call_id,
                duplicate = accepted.duplicate,
                queued = accepted.queued,
                "webhook accepted"
            );
            Json(WebhookAccepted {
                ok: true,
                call_id: accepted.call_id,
                duplicate: accepted.duplicate,
            })
            .into_response()
        }
        Err(e) => {
            intake.metrics.rejected.inc();
            tracing::warn!(
                status = e.status.as_u16(),
                code = e.code,
                source = ?source,
                "webhook refused"
            );
            e.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    intake: &Intake,
    source: Option<IpAddr>,
    request: Request,
) -> Result<(Uuid, Accepted), ApiError> {
    let settings = &intake.settings;
    let (parts, body) = request.into_parts();
    if !intake.allow.allows(source) {
        let who = source.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string());
        return Err(ApiError::forbidden(format!(
            "{who} may not post webhooks (see [webhooks] allow_from)"
        )));
    }
    let Some(secret) = &intake.secret else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_disabled",
            "webhooks are off: the service has no INSIGHTS_WEBHOOK_SECRET",
        ));
    };
    check_json_type(&parts.headers)?;
    let bytes = read_body(body, &parts.headers, settings.max_body_bytes).await?;

    let signature = text_header(&parts.headers, "x-signature");
    let timestamp = text_header(&parts.headers, "x-timestamp");
    let check = TimestampCheck {
        now: chrono::Utc::now().timestamp(),
        tolerance_secs: settings.timestamp_tolerance_secs,
        required: settings.require_timestamp,
    };
    secret
        .verify(signature, timestamp, &bytes, check)
        .map_err(|refusal| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                refusal.code(),
                refusal.message(settings.timestamp_tolerance_secs),
            )
        })?;

    let query = Query::<DomainQuery>::try_from_uri(&parts.uri)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?
        .0;
    let domain = query
        .domain
        .or_else(|| text_header(&parts.headers, "x-voice-domain").map(str::to_string))
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

    let mut call = crate::http::extract::decode::<WebhookPayload>(&bytes)?.validate()?;
    // Hashed before anything is stored (HASH_PHONE_NUMBERS).
    call.from_number = state.config.privacy.store_number(&call.from_number);
    call.to_number = state.config.privacy.store_number(&call.to_number);
    let accepted = accept(&state.db, tenant.id, Source::Voip, call)
        .await
        .map_err(|e| ApiError::database(&e))?;
    Ok((tenant.id, accepted))
}

fn text_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// JSON or no content type at all (some PBX scripts send none).
fn check_json_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let json = value.to_str().is_ok_and(|v| {
        let mime = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    });
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ))
    }
}

/// The raw body (what was signed), at most `limit` bytes.
async fn read_body(
    body: axum::body::Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("webhook bodies are limited to {limit} bytes"),
        )
    };
    let declared = text_header(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // Fails on the limit or on a connection that broke mid-body; in the second case nobody
    // reads the answer.
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}
