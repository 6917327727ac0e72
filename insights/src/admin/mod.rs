//! The tenancy admin REST API (`/v1/tenants…`): tenants, and per tenant its agents, provider
//! instances, knowledge documents, API keys, scorecard templates and daily metrics.
//!
//! Every handler does the same three things: [`access::Caller`] authenticates (and rate
//! limits) the request, [`access::Caller::enter`] checks the path's tenant and the role, and
//! the store calls run in one transaction scoped to the path's tenant (row-level security),
//! so a mistake in a handler still cannot reach another tenant's rows.

pub mod access;
pub mod agents;
pub mod api_keys;
pub mod daily_metrics;
pub mod docs;
pub mod knowledge;
pub mod providers;
pub mod scorecard_templates;
pub mod tenants;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;
use voice_core::tenancy::store::Page;

use crate::http::error::ApiError;
use crate::state::AppState;

/// Largest page.
pub const MAX_PAGE: i64 = 200;
pub const DEFAULT_PAGE: i64 = 50;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/v1/tenants/{tenant_id}",
            get(tenants::get)
                .patch(tenants::update)
                .delete(tenants::delete),
        )
        .route(
            "/v1/tenants/{tenant_id}/agents",
            get(agents::list).post(agents::create),
        )
        .route(
            "/v1/tenants/{tenant_id}/agents/{id}",
            get(agents::get)
                .patch(agents::update)
                .delete(agents::delete),
        )
        .route(
            "/v1/tenants/{tenant_id}/providers",
            get(providers::list).post(providers::create),
        )
        .route(
            "/v1/tenants/{tenant_id}/providers/{id}",
            get(providers::get)
                .patch(providers::update)
                .delete(providers::delete),
        )
        .route(
            "/v1/tenants/{tenant_id}/knowledge",
            get(knowledge::list).post(knowledge::create),
        )
        .route(
            "/v1/tenants/{tenant_id}/knowledge/search",
            get(knowledge::search),
        )
        .route(
            "/v1/tenants/{tenant_id}/knowledge/{id}",
            get(knowledge::get)
                .patch(knowledge::update)
                .delete(knowledge::delete),
        )
        .route(
            "/v1/tenants/{tenant_id}/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route(
            "/v1/tenants/{tenant_id}/api-keys/{id}",
            get(api_keys::get).delete(api_keys::revoke),
        )
        .route(
            "/v1/tenants/{tenant_id}/scorecard-templates",
            get(scorecard_templates::list).post(scorecard_templates::create),
        )
        .route(
            "/v1/tenants/{tenant_id}/scorecard-templates/{id}",
            get(scorecard_templates::get)
                .patch(scorecard_templates::update)
                .delete(scorecard_templates::delete),
        )
        .route(
            "/v1/tenants/{tenant_id}/metrics/daily",
            get(daily_metrics::daily),
        )
}

/// `?limit=&offset=` of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 200; default 50.
    pub limit: Option<i64>,
    /// Rows skipped; default 0.
    pub offset: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be 1 to {MAX_PAGE}"),
            ));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::bad_request(
                "invalid_query",
                "offset must not be negative",
            ));
        }
        Ok(Page { limit, offset })
    }
}

/// `{tenant_id}` in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TenantPath {
    /// The tenant's id (not the FusionPBX domain_uuid).
    #[param(value_type = String, format = "uuid")]
    tenant_id: (),
}

/// `{tenant_id}` and `{id}` in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ItemPath {
    /// The tenant's id.
    #[param(value_type = String, format = "uuid")]
    tenant_id: (),
    /// The item's id.
    #[param(value_type = String, format = "uuid")]
    id: (),
}
