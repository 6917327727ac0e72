//! `/v1/tenants`: the platform token creates, lists, changes and deletes tenants; a tenant's
//! own keys may read its row.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;
use voice_core::tenancy::model::Tenant;
use voice_core::tenancy::store::{self, NewTenant, TenantPatch};

use super::access::{no_tenant, Action, Caller};
use super::docs::{NewTenantDoc, TenantDoc, TenantPatchDoc};
use super::{PageQuery, TenantPath};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, PathIds, QueryParams};
use crate::state::AppState;

/// Creates a tenant for a FusionPBX domain (platform token).
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants",
    request_body = NewTenantDoc,
    responses((status = 201, body = TenantDoc, description = "Created")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(new): JsonBody<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    caller.allow(Action::ManageTenants)?;
    let tenant = store::create_tenant(&state.db, new).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// Every tenant, by domain name (platform token).
#[utoipa::path(
    get, path = "/v1/tenants", tag = "tenants",
    params(PageQuery),
    responses((status = 200, body = [TenantDoc])),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    caller.allow(Action::ManageTenants)?;
    let tenants = store::list_tenants(&state.db, page.page()?).await?;
    Ok(Json(tenants))
}

/// One tenant (platform token, or any key of that tenant).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}", tag = "tenants",
    params(TenantPath),
    responses((status = 200, body = TenantDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
) -> Result<Json<Tenant>, ApiError> {
    if let Caller::Key(key) = caller {
        if key.tenant_id != tenant {
            return Err(no_tenant(tenant));
        }
        caller.allow(Action::Read)?;
    }
    let found = store::get_tenant(&state.db, tenant)
        .await
        .map_err(|e| ApiError::store(e, || format!("tenant {tenant}")))?;
    Ok(Json(found))
}

/// Changes a tenant (platform token).
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}", tag = "tenants",
    params(TenantPath),
    request_body = TenantPatchDoc,
    responses((status = 200, body = TenantDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    JsonBody(patch): JsonBody<TenantPatch>,
) -> Result<Json<Tenant>, ApiError> {
    platform_only(&caller, tenant)?;
    let updated = store::update_tenant(&state.db, tenant, patch)
        .await
        .map_err(|e| ApiError::store(e, || format!("tenant {tenant}")))?;
    state.forget_rate(tenant);
    Ok(Json(updated))
}

/// Deletes a tenant and everything it owns (platform token).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}", tag = "tenants",
    params(TenantPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
) -> Result<StatusCode, ApiError> {
    platform_only(&caller, tenant)?;
    store::delete_tenant(&state.db, tenant)
        .await
        .map_err(|e| ApiError::store(e, || format!("tenant {tenant}")))?;
    state.forget_rate(tenant);
    Ok(StatusCode::NO_CONTENT)
}

/// Another tenant's key: 404 (as for any of its paths); its own key: 403.
fn platform_only(caller: &Caller, tenant: Uuid) -> Result<(), ApiError> {
    if let Caller::Key(key) = caller {
        if key.tenant_id != tenant {
            return Err(no_tenant(tenant));
        }
    }
    caller.allow(Action::ManageTenants)
}
