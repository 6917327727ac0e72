//! `/v1/tenants/{tenant_id}/providers`: read by any role (never the credentials: only
//! `has_credentials`), written by admins. Credentials are sealed with VOICE_CREDENTIALS_KEY
//! before they reach the database; without the key they are refused (503).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;
use voice_core::tenancy::model::ProviderInstance;
use voice_core::tenancy::store::{self, NewProvider, ProviderPatch};

use super::access::{Action, Caller};
use super::docs::{NewProviderDoc, ProviderDoc, ProviderPatchDoc};
use super::{ItemPath, PageQuery, TenantPath};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, PathIds, QueryParams};
use crate::state::AppState;

fn missing(id: Uuid) -> impl FnOnce() -> String {
    move || format!("provider instance {id}")
}

/// The tenant's provider instances, in fallback order.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/providers", tag = "providers",
    params(TenantPath, PageQuery),
    responses((status = 200, body = [ProviderDoc])),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Vec<ProviderInstance>>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let page = page.page()?;
    let providers = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::list_providers(tx, page).await })
        })
        .await?;
    Ok(Json(providers))
}

/// One provider instance.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/providers/{id}", tag = "providers",
    params(ItemPath),
    responses((status = 200, body = ProviderDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<Json<ProviderInstance>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let provider = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::get_provider(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(provider))
}

/// Creates a provider instance (admin).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/providers", tag = "providers",
    params(TenantPath),
    request_body = NewProviderDoc,
    responses((status = 201, body = ProviderDoc, description = "Created")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    JsonBody(new): JsonBody<NewProvider>,
) -> Result<(StatusCode, Json<ProviderInstance>), ApiError> {
    caller.enter(&state, tenant, Action::WriteProviders).await?;
    let key = state.credential_key.clone();
    let provider = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::create_provider(tx, key.as_ref(), tenant, new).await })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(provider)))
}

/// Changes a provider instance (admin); `"credentials"` replaces them, `null` removes them.
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}/providers/{id}", tag = "providers",
    params(ItemPath),
    request_body = ProviderPatchDoc,
    responses((status = 200, body = ProviderDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
    JsonBody(patch): JsonBody<ProviderPatch>,
) -> Result<Json<ProviderInstance>, ApiError> {
    caller.enter(&state, tenant, Action::WriteProviders).await?;
    let key = state.credential_key.clone();
    let provider = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::update_provider(tx, key.as_ref(), id, patch).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(provider))
}

/// Deletes a provider instance (admin).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/providers/{id}", tag = "providers",
    params(ItemPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    caller.enter(&state, tenant, Action::WriteProviders).await?;
    state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::delete_provider(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(StatusCode::NO_CONTENT)
}
