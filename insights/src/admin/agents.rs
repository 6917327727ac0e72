//! `/v1/tenants/{tenant_id}/agents`: read by any role, written by supervisors and admins.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;
use voice_core::tenancy::model::AgentRecord;
use voice_core::tenancy::store::{self, AgentPatch, NewAgent};

use super::access::{Action, Caller};
use super::docs::{AgentDoc, AgentPatchDoc, NewAgentDoc};
use super::{ItemPath, PageQuery, TenantPath};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, PathIds, QueryParams};
use crate::state::AppState;

fn missing(id: Uuid) -> impl FnOnce() -> String {
    move || format!("agent {id}")
}

/// The tenant's agents, by name.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/agents", tag = "agents",
    params(TenantPath, PageQuery),
    responses((status = 200, body = [AgentDoc])),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Vec<AgentRecord>>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let page = page.page()?;
    let agents = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::list_agents(tx, page).await })
        })
        .await?;
    Ok(Json(agents))
}

/// One agent.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/agents/{id}", tag = "agents",
    params(ItemPath),
    responses((status = 200, body = AgentDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<Json<AgentRecord>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let agent = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::get_agent(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(agent))
}

/// Creates an agent (supervisor or admin).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/agents", tag = "agents",
    params(TenantPath),
    request_body = NewAgentDoc,
    responses((status = 201, body = AgentDoc, description = "Created")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    JsonBody(new): JsonBody<NewAgent>,
) -> Result<(StatusCode, Json<AgentRecord>), ApiError> {
    caller.enter(&state, tenant, Action::WriteAgents).await?;
    let agent = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::create_agent(tx, tenant, new).await })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Changes an agent (supervisor or admin); the next call uses it.
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}/agents/{id}", tag = "agents",
    params(ItemPath),
    request_body = AgentPatchDoc,
    responses((status = 200, body = AgentDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
    JsonBody(patch): JsonBody<AgentPatch>,
) -> Result<Json<AgentRecord>, ApiError> {
    caller.enter(&state, tenant, Action::WriteAgents).await?;
    let agent = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::update_agent(tx, id, patch).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(agent))
}

/// Deletes an agent and its own knowledge documents (supervisor or admin).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/agents/{id}", tag = "agents",
    params(ItemPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    caller.enter(&state, tenant, Action::WriteAgents).await?;
    state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::delete_agent(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(StatusCode::NO_CONTENT)
}
