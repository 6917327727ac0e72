//! `/v1/tenants/{tenant_id}/api-keys`: admins list, create and revoke the tenant's keys. A
//! new key's text is in the creation answer only; the database keeps its SHA-256.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use uuid::Uuid;
use voice_core::tenancy::model::ApiKeyRecord;
use voice_core::tenancy::store::{self, NewApiKey};

use super::access::{Action, Caller};
use super::docs::{ApiKeyDoc, CreatedApiKeyDoc, NewApiKeyDoc};
use super::{ItemPath, PageQuery, TenantPath};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, PathIds, QueryParams};
use crate::state::AppState;

fn missing(id: Uuid) -> impl FnOnce() -> String {
    move || format!("API key {id}")
}

/// The creation answer: the key, this once, and its record.
#[derive(Serialize)]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKeyRecord,
}

/// The tenant's API keys, revoked ones included (never the keys, only their prefixes).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/api-keys", tag = "api-keys",
    params(TenantPath, PageQuery),
    responses((status = 200, body = [ApiKeyDoc])),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Vec<ApiKeyRecord>>, ApiError> {
    caller.enter(&state, tenant, Action::ManageKeys).await?;
    let page = page.page()?;
    let keys = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::list_keys(tx, page).await })
        })
        .await?;
    Ok(Json(keys))
}

/// One API key's record.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/api-keys/{id}", tag = "api-keys",
    params(ItemPath),
    responses((status = 200, body = ApiKeyDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<Json<ApiKeyRecord>, ApiError> {
    caller.enter(&state, tenant, Action::ManageKeys).await?;
    let key = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::get_key(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(key))
}

/// Creates an API key (admin). The answer holds the key: it is not shown again.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/api-keys", tag = "api-keys",
    params(TenantPath),
    request_body = NewApiKeyDoc,
    responses((status = 201, body = CreatedApiKeyDoc, description = "Created; `key` is shown this once")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    JsonBody(new): JsonBody<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    caller.enter(&state, tenant, Action::ManageKeys).await?;
    let (api_key, key) = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::create_key(tx, tenant, new).await })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key, api_key })))
}

/// Revokes an API key (admin): it stops working at once; its record stays, with
/// `revoked_at`.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/api-keys/{id}", tag = "api-keys",
    params(ItemPath),
    responses((status = 200, body = ApiKeyDoc, description = "Revoked")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<Json<ApiKeyRecord>, ApiError> {
    caller.enter(&state, tenant, Action::ManageKeys).await?;
    let key = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::revoke_key(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(key))
}
