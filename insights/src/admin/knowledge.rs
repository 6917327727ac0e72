//! `/v1/tenants/{tenant_id}/knowledge`: documents read by any role and written by
//! supervisors and admins; full-text search (Portuguese) from role `agent` up.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use voice_core::tenancy::model::KnowledgeDocument;
use voice_core::tenancy::store::{self, DocumentPatch, KnowledgeHit, NewDocument};

use super::access::{Action, Caller};
use super::docs::{DocumentDoc, DocumentPatchDoc, KnowledgeHitDoc, NewDocumentDoc};
use super::{ItemPath, PageQuery, TenantPath};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, PathIds, QueryParams};
use crate::state::AppState;

/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
pub const MAX_HITS: i64 = 50;
pub const DEFAULT_HITS: i64 = 5;

fn missing(id: Uuid) -> impl FnOnce() -> String {
    move || format!("knowledge document {id}")
}

/// `?q=&agent_id=&limit=` of a search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for (websearch syntax: "quoted phrase", OR, -word); accents optional.
    pub q: String,
    /// Also that agent's own documents (tenant-wide ones are always searched).
    #[param(value_type = Option<String>, format = "uuid")]
    pub agent_id: Option<Uuid>,
    /// 1 to 50; default 5.
    pub limit: Option<i64>,
}

/// The tenant's knowledge documents.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/knowledge", tag = "knowledge",
    params(TenantPath, PageQuery),
    responses((status = 200, body = [DocumentDoc])),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Vec<KnowledgeDocument>>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let page = page.page()?;
    let documents = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::list_documents(tx, page).await })
        })
        .await?;
    Ok(Json(documents))
}

/// Searches the knowledge base as the `lookup_knowledge` tool does (role agent and up).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/knowledge/search", tag = "knowledge",
    params(TenantPath, SearchQuery),
    responses((status = 200, body = [KnowledgeHitDoc], description = "Best first")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Vec<KnowledgeHit>>, ApiError> {
    caller
        .enter(&state, tenant, Action::SearchKnowledge)
        .await?;
    let text = query.q.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_HITS);
    if !(1..=MAX_HITS).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_HITS}"),
        ));
    }
    let agent = query.agent_id;
    let hits = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::search_knowledge(tx, agent, &text, limit).await })
        })
        .await?;
    Ok(Json(hits))
}

/// One knowledge document.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/knowledge/{id}", tag = "knowledge",
    params(ItemPath),
    responses((status = 200, body = DocumentDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<Json<KnowledgeDocument>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let document = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::get_document(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(document))
}

/// Adds a knowledge document (supervisor or admin).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/knowledge", tag = "knowledge",
    params(TenantPath),
    request_body = NewDocumentDoc,
    responses((status = 201, body = DocumentDoc, description = "Created")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    JsonBody(new): JsonBody<NewDocument>,
) -> Result<(StatusCode, Json<KnowledgeDocument>), ApiError> {
    caller.enter(&state, tenant, Action::WriteKnowledge).await?;
    let document = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::create_document(tx, tenant, new).await })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(document)))
}

/// Changes a knowledge document (supervisor or admin).
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}/knowledge/{id}", tag = "knowledge",
    params(ItemPath),
    request_body = DocumentPatchDoc,
    responses((status = 200, body = DocumentDoc)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
    JsonBody(patch): JsonBody<DocumentPatch>,
) -> Result<Json<KnowledgeDocument>, ApiError> {
    caller.enter(&state, tenant, Action::WriteKnowledge).await?;
    let document = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::update_document(tx, id, patch).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(document))
}

/// Deletes a knowledge document (supervisor or admin).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/knowledge/{id}", tag = "knowledge",
    params(ItemPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    caller.enter(&state, tenant, Action::WriteKnowledge).await?;
    state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move { store::delete_document(tx, id).await })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(StatusCode::NO_CONTENT)
}
