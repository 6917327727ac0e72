//! `/v1/tenants/{tenant_id}/scorecard-templates`: what a tenant's calls are scored on.
//! Read by any role, written by supervisors and admins. The enabled template marked
//! `is_default` scores new calls; without one, the built-in sales template does. Items are
//! checked as the scorer needs them (1 to 30, unique names, weights in (0, 100]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;
use voice_core::db::Transaction;
use voice_core::tenancy::store::{Page, StoreError};

use super::access::{Action, Caller};
use super::{ItemPath, PageQuery, TenantPath};
use crate::analyze::validate_template;
use crate::calls::model::TemplateItem;
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, PathIds, QueryParams};
use crate::state::AppState;

/// A scorecard template.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateRecord {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    #[schema(value_type = String, format = "uuid")]
    pub tenant_id: Uuid,
    /// Kept on each scorecard (`templateKey`): lowercase letters, digits, `_` and `-`.
    pub key: String,
    pub name: String,
    pub items: Vec<TemplateItem>,
    /// Scores new calls (one per tenant).
    pub is_default: bool,
    pub enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    /// 1 to 64 of `a-z`, `0-9`, `_`, `-`; unique in the tenant.
    pub key: String,
    #[serde(default)]
    pub name: String,
    pub items: Vec<TemplateItem>,
    /// Make it the one that scores new calls (the previous default stops being it).
    #[serde(default)]
    pub is_default: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Fields left out stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub items: Option<Vec<TemplateItem>>,
    pub is_default: Option<bool>,
    pub enabled: Option<bool>,
}

const COLUMNS: &str =
    "id, tenant_id, key, name, items, is_default, enabled, created_at, updated_at";
const MAX_NAME_CHARS: usize = 200;

fn record(r: &Row) -> Result<TemplateRecord, StoreError> {
    let items: serde_json::Value = r.try_get(4)?;
    Ok(TemplateRecord {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        key: r.try_get(2)?,
        name: r.try_get(3)?,
        // Checked when written; a row edited by hand that no longer reads shows no items.
        items: serde_json::from_value(items).unwrap_or_default(),
        is_default: r.try_get(5)?,
        enabled: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
    })
}

fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid",
            "key: 1 to 64 of lowercase letters, digits, '_' and '-'",
        ))
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::unprocessable(
            "invalid",
            format!("name: at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_items(items: &[TemplateItem]) -> Result<serde_json::Value, ApiError> {
    validate_template(items).map_err(|m| ApiError::unprocessable("invalid", m))?;
    serde_json::to_value(items).map_err(|e| ApiError::unprocessable("invalid", e.to_string()))
}

/// The tenant's default template, other than `keep`, stops being it (one default each).
async fn clear_default(tx: &Transaction<'_>, keep: Option<Uuid>) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE scorecard_templates SET is_default = false
         WHERE is_default AND id IS DISTINCT FROM $1",
        &[&keep],
    )
    .await?;
    Ok(())
}

fn missing(id: Uuid) -> impl FnOnce() -> String {
    move || format!("scorecard template {id}")
}

/// The tenant's scorecard templates, by key.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/scorecard-templates", tag = "scorecard-templates",
    params(TenantPath, PageQuery),
    responses((status = 200, body = [TemplateRecord])),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    QueryParams(page): QueryParams<PageQuery>,
) -> Result<Json<Vec<TemplateRecord>>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let Page { limit, offset } = page.page()?;
    let templates = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {COLUMNS} FROM scorecard_templates ORDER BY key LIMIT $1 OFFSET $2"
                );
                let rows = tx.query(&sql, &[&limit, &offset]).await?;
                rows.iter().map(record).collect()
            })
        })
        .await?;
    Ok(Json(templates))
}

/// One scorecard template.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/scorecard-templates/{id}", tag = "scorecard-templates",
    params(ItemPath),
    responses((status = 200, body = TemplateRecord)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
) -> Result<Json<TemplateRecord>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let template = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move {
                let sql = format!("SELECT {COLUMNS} FROM scorecard_templates WHERE id = $1");
                let row = tx.query_opt(&sql, &[&id]).await?;
                row.as_ref().map(record).ok_or(StoreError::NotFound)?
            })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(template))
}

/// Creates a scorecard template (supervisor or admin).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/scorecard-templates", tag = "scorecard-templates",
    params(TenantPath),
    request_body = NewTemplate,
    responses((status = 201, body = TemplateRecord, description = "Created")),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    JsonBody(new): JsonBody<NewTemplate>,
) -> Result<(StatusCode, Json<TemplateRecord>), ApiError> {
    caller.enter(&state, tenant, Action::WriteAgents).await?;
    check_key(&new.key)?;
    check_name(&new.name)?;
    let items = check_items(&new.items)?;
    let template = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move {
                if new.is_default {
                    clear_default(tx, None).await?;
                }
                let sql = format!(
                    "INSERT INTO scorecard_templates (tenant_id, key, name, items, is_default, enabled)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
                );
                let row = tx
                    .query_one(
                        &sql,
                        &[&tenant, &new.key, &new.name, &items, &new.is_default, &new.enabled],
                    )
                    .await?;
                record(&row)
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(template)))
}

/// Changes a scorecard template (supervisor or admin); calls scored from then on use it.
#[utoipa::path(
    patch, path = "/v1/tenants/{tenant_id}/scorecard-templates/{id}", tag = "scorecard-templates",
    params(ItemPath),
    request_body = TemplatePatch,
    responses((status = 200, body = TemplateRecord)),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds((tenant, id)): PathIds<(Uuid, Uuid)>,
    JsonBody(patch): JsonBody<TemplatePatch>,
) -> Result<Json<TemplateRecord>, ApiError> {
    caller.enter(&state, tenant, Action::WriteAgents).await?;
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    let items = patch.items.as_deref().map(check_items).transpose()?;
    let template = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move {
                if patch.is_default == Some(true) {
                    clear_default(tx, Some(id)).await?;
                }
                let sql = format!(
                    "UPDATE scorecard_templates SET name = COALESCE($2, name),
                         items = COALESCE($3, items), is_default = COALESCE($4, is_default),
                         enabled = COALESCE($5, enabled)
                     WHERE id = $1 RETURNING {COLUMNS}"
                );
                let row = tx
                    .query_opt(
                        &sql,
                        &[&id, &patch.name, &items, &patch.is_default, &patch.enabled],
                    )
                    .await?;
                row.as_ref().map(record).ok_or(StoreError::NotFound)?
            })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(Json(template))
}

/// Deletes a scorecard template (supervisor or admin). Scorecards made with it keep their
/// items and key.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/scorecard-templates/{id}", tag = "scorecard-templates",
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
            Box::pin(async move {
                let n = tx
                    .execute("DELETE FROM scorecard_templates WHERE id = $1", &[&id])
                    .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| ApiError::store(e, missing(id)))?;
    Ok(StatusCode::NO_CONTENT)
}
