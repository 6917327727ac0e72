//! `/v1/tenants/{tenant_id}/metrics/daily`: the tenant's daily aggregates of its event log
//! (calls, turns, handoffs, seconds per day and agent), read by any role.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voice_core::tenancy::metrics::{self, DailyMetric};
use voice_core::tenancy::store::StoreError;

use super::access::{Action, Caller};
use super::TenantPath;
use crate::http::error::ApiError;
use crate::http::extract::{PathIds, QueryParams};
use crate::state::AppState;

/// Longest range asked at once, in days.
pub const MAX_DAYS: i64 = 366;

/// `?from=&to=&agent_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// First day (the tenant's time zone), `YYYY-MM-DD`.
    #[param(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// Last day, included; at most 366 days after `from`.
    #[param(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// That agent's rows only.
    #[param(value_type = Option<String>, format = "uuid")]
    pub agent_id: Option<Uuid>,
}

/// One day of one agent (`agent_id` null: events tied to no agent).
#[derive(Serialize, ToSchema)]
#[schema(as = DailyMetric)]
#[allow(dead_code)]
pub struct DailyMetricDoc {
    #[schema(value_type = String, format = Date)]
    pub day: (),
    #[schema(value_type = Option<String>, format = "uuid")]
    pub agent_id: (),
    pub calls: i64,
    pub turns: i64,
    pub handoffs: i64,
    /// Summed call durations.
    pub seconds: f64,
}

/// Daily metrics of days `from` to `to`, by day, one row per agent.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/metrics/daily", tag = "metrics",
    params(TenantPath, DailyQuery),
    responses((status = 200, body = [DailyMetricDoc])),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn daily(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathIds(tenant): PathIds<Uuid>,
    QueryParams(query): QueryParams<DailyQuery>,
) -> Result<Json<Vec<DailyMetric>>, ApiError> {
    caller.enter(&state, tenant, Action::Read).await?;
    let DailyQuery { from, to, agent_id } = query;
    let days = (to - from).num_days();
    if !(0..MAX_DAYS).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("to must be on or after from, and at most {MAX_DAYS} days in all"),
        ));
    }
    let rows = state
        .in_tenant(tenant, move |tx| {
            Box::pin(async move {
                metrics::daily(tx, from, to, agent_id)
                    .await
                    .map_err(StoreError::from)
            })
        })
        .await?;
    Ok(Json(rows))
}
