//! The calls API: `GET /calls`, `GET /calls/{id}`, `GET /calls/{id}/recording`,
//! `POST /calls/{id}/push-crm`. The tenant is the API key's; the platform token names it
//! with `?tenant=<uuid>` or header `x-voice-domain` (domain name or uuid).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voice_core::tenancy::store;

use super::push::{queue_crm_push, PushOutcome};
use super::query::{
    call_detail, list_calls, recording_media, CallDetail, CallFilter, CallPage, MediaLookup,
    RawCallFilter,
};
use super::range::{parse_range, ByteRange};
use crate::admin::access::{Action, Caller};
use crate::http::error::{clip, ApiError};
use crate::http::extract::{PathIds, QueryParams};
use crate::state::AppState;
use crate::storage::StorageError;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/calls", get(list))
        .route("/calls/{id}", get(detail))
        .route("/calls/{id}/recording", get(recording))
        .route("/calls/{id}/push-crm", post(push_crm))
}

/// The platform token's choice of tenant.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// With the platform token: the tenant's uuid (or header `x-voice-domain`). Ignored for
    /// an API key, whose tenant it is.
    pub tenant: Option<String>,
}

/// The tenant this request acts in, once the caller may do `action` there.
async fn tenant_of(
    state: &AppState,
    caller: &Caller,
    query: &TenantQuery,
    headers: &HeaderMap,
    action: Action,
) -> Result<Uuid, ApiError> {
    match caller {
        Caller::Key(key) => {
            caller.allow(action)?;
            Ok(key.tenant_id)
        }
        Caller::Platform => {
            let tenant = if let Some(t) = query.tenant.as_deref().filter(|t| !t.is_empty()) {
                Uuid::parse_str(t.trim()).map_err(|_| {
                    ApiError::bad_request("invalid_query", "`tenant` must be a tenant uuid")
                })?
            } else if let Some(domain) = headers
                .get("x-voice-domain")
                .and_then(|v| v.to_str().ok())
                .filter(|d| !d.trim().is_empty())
            {
                store::lookup_tenant(&state.db, domain)
                    .await?
                    .ok_or_else(|| {
                        ApiError::not_found(format!("no tenant for domain {:?}", clip(domain)))
                    })?
                    .id
            } else {
                return Err(ApiError::bad_request(
                    "missing_tenant",
                    "with the platform token, name the tenant: ?tenant=<uuid> or header \
                     x-voice-domain",
                ));
            };
            caller.enter(state, tenant, action).await?;
            Ok(tenant)
        }
    }
}

fn no_call(id: Uuid) -> ApiError {
    ApiError::not_found(format!("no call {id}"))
}

/// The tenant's calls, newest first, filtered.
#[utoipa::path(
    get, path = "/calls", tag = "calls",
    params(TenantQuery, RawCallFilter),
    responses(
        (status = 200, body = CallPage),
        (status = 400, body = crate::http::error::ErrorBody, description = "A filter is invalid (the message names it)"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Query(tenant): Query<TenantQuery>,
    QueryParams(raw): QueryParams<RawCallFilter>,
) -> Result<Json<CallPage>, ApiError> {
    let tenant = tenant_of(&state, &caller, &tenant, &headers, Action::ReadCalls).await?;
    let filter =
        CallFilter::parse(&raw).map_err(|e| ApiError::bad_request("invalid_query", e.message))?;
    Ok(Json(list_calls(&state.db, tenant, &filter).await?))
}

/// One call: the call, recording, transcript, segments, insights, scorecard (`null` until
/// made), its stages, last error and CRM pushes.
#[utoipa::path(
    get, path = "/calls/{id}", tag = "calls",
    params(("id" = String, Path, format = "uuid", description = "The call's id"), TenantQuery),
    responses(
        (status = 200, body = CallDetail),
        (status = 404, body = crate::http::error::ErrorBody, description = "No such call in this tenant"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn detail(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Query(tenant): Query<TenantQuery>,
    PathIds(id): PathIds<Uuid>,
) -> Result<Json<CallDetail>, ApiError> {
    let tenant = tenant_of(&state, &caller, &tenant, &headers, Action::ReadCalls).await?;
    call_detail(&state.db, tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| no_call(id))
}

/// The call's audio (supervisor or admin), with single-range requests so a player can seek.
#[utoipa::path(
    get, path = "/calls/{id}/recording", tag = "calls",
    params(
        ("id" = String, Path, format = "uuid", description = "The call's id"),
        ("Range" = Option<String>, Header, description = "`bytes=a-b`, `bytes=a-` or `bytes=-n` (one range; several: the whole file)"),
        TenantQuery,
    ),
    responses(
        (status = 200, description = "The whole recording", content_type = "application/octet-stream"),
        (status = 206, description = "The asked range, with Content-Range", content_type = "application/octet-stream"),
        (status = 403, body = crate::http::error::ErrorBody, description = "Role below supervisor"),
        (status = 404, body = crate::http::error::ErrorBody, description = "No such call, no recording, or its media was deleted by retention"),
        (status = 416, description = "Range not satisfiable"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn recording(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Query(tenant): Query<TenantQuery>,
    PathIds(id): PathIds<Uuid>,
) -> Result<Response, ApiError> {
    let tenant = tenant_of(&state, &caller, &tenant, &headers, Action::ListenRecordings).await?;
    let media = match recording_media(&state.db, tenant, id).await? {
        MediaLookup::NoCall => return Err(no_call(id)),
        MediaLookup::NoMedia => {
            return Err(ApiError::not_found(format!(
                "call {id} has no recording (never stored, or deleted by retention)"
            )))
        }
        MediaLookup::Media(m) => m,
    };
    let size = state
        .storage
        .size(&media.storage_key)
        .await
        .map_err(|e| storage_error(id, e))?;
    let content_type = content_type(&media.content_type, &media.format);
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, bytes, content_range) = match range {
        ByteRange::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            insert(&mut r, header::CONTENT_RANGE, &format!("bytes */{size}"));
            insert(&mut r, header::ACCEPT_RANGES, "bytes");
            return Ok(r);
        }
        ByteRange::Whole => {
            let bytes = if size == 0 {
                bytes::Bytes::new()
            } else {
                state
                    .storage
                    .get_range(&media.storage_key, 0..size)
                    .await
                    .map_err(|e| storage_error(id, e))?
            };
            (StatusCode::OK, bytes, None)
        }
        ByteRange::Part(r) => {
            let bytes = state
                .storage
                .get_range(&media.storage_key, r.clone())
                .await
                .map_err(|e| storage_error(id, e))?;
            let last = r.end.saturating_sub(1);
            (
                StatusCode::PARTIAL_CONTENT,
                bytes,
                Some(format!("bytes {}-{last}/{size}", r.start)),
            )
        }
    };
    let mut response = (status, Body::from(bytes)).into_response();
    insert(&mut response, header::CONTENT_TYPE, &content_type);
    insert(&mut response, header::ACCEPT_RANGES, "bytes");
    insert(&mut response, header::CACHE_CONTROL, "private, no-store");
    if let Some(cr) = content_range {
        insert(&mut response, header::CONTENT_RANGE, &cr);
    }
    Ok(response)
}

fn insert(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// The stored content type, else one from the format, else bytes.
fn content_type(stored: &str, format: &str) -> String {
    if !stored.trim().is_empty() {
        return stored.trim().to_string();
    }
    match format {
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "webm" => "audio/webm",
        "m4a" | "mp4" => "audio/mp4",
        "flac" => "audio/flac",
        _ => "application/octet-stream",
    }
    .to_string()
}

fn storage_error(id: Uuid, e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound => {
            ApiError::not_found(format!("the recording of call {id} is no longer stored"))
        }
        StorageError::Unavailable(m) => {
            tracing::warn!(call = %id, error = %m, "recording storage unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the recording store does not answer; try again later",
            )
        }
        other => {
            tracing::error!(call = %id, error = %other, "recording read failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the recording could not be read (details are in the service log)",
            )
        }
    }
}

/// `POST /calls/{id}/push-crm`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushQueued {
    pub queued: bool,
    #[schema(value_type = String, format = "uuid")]
    pub job_id: Uuid,
}

/// Queues a push of the call's insights to the tenant's CRM (supervisor or admin).
#[utoipa::path(
    post, path = "/calls/{id}/push-crm", tag = "calls",
    params(("id" = String, Path, format = "uuid", description = "The call's id"), TenantQuery),
    responses(
        (status = 202, body = PushQueued, description = "Queued"),
        (status = 403, body = crate::http::error::ErrorBody, description = "Role below supervisor"),
        (status = 404, body = crate::http::error::ErrorBody, description = "No such call in this tenant"),
        (status = 409, body = crate::http::error::ErrorBody, description = "The call is not processed yet"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn push_crm(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Query(tenant): Query<TenantQuery>,
    PathIds(id): PathIds<Uuid>,
) -> Result<(StatusCode, Json<PushQueued>), ApiError> {
    let tenant = tenant_of(&state, &caller, &tenant, &headers, Action::PushCrm).await?;
    let requested_by = match caller {
        Caller::Key(key) => key.key_id.to_string(),
        Caller::Platform => "platform".to_string(),
    };
    match queue_crm_push(&state.db, tenant, id, requested_by).await? {
        PushOutcome::NoCall => Err(no_call(id)),
        PushOutcome::NotProcessed(status) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("call {id} is not processed yet (status {status})"),
        )),
        PushOutcome::Queued(job_id) => Ok((
            StatusCode::ACCEPTED,
            Json(PushQueued {
                queued: true,
                job_id,
            }),
        )),
    }
}
