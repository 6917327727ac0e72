//! Which tenant, agent and engine a request of a database key is for, and the checks on
//! the way: the key's role, the domain's owner, the tenant enabled, its request rate.

use std::sync::Arc;

use axum::http::StatusCode;
use uuid::Uuid;
use voice_core::tenancy::directory::TenantConfig;
use voice_core::tenancy::model::{AgentRecord, KeyIdentity};

use super::error::{clip, ApiError};
use super::turns::Turns;
use super::AppState;
use crate::sessions::Session;
use crate::tenancy::DbTenancy;

/// A database tenant's request: its configuration, agent and engine.
pub struct DbCall {
    pub tenant: Arc<TenantConfig>,
    pub agent_id: Uuid,
    pub turns: Arc<dyn Turns>,
}

fn tenancy(state: &AppState) -> Result<&DbTenancy, ApiError> {
    state.tenancy.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "tenants_unavailable",
            "this session needs the database, which is not configured",
        )
    })
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "tenants_unavailable",
        format!("cannot read the tenant's configuration: {e}"),
    )
}

fn not_the_keys(domain: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("domain {:?} is not this API key's tenant", clip(domain)),
    )
}

/// The tenant of `domain`, which must be the key's, enabled, and within its request rate.
async fn tenant_of(
    state: &AppState,
    identity: &KeyIdentity,
    domain: &str,
) -> Result<Arc<TenantConfig>, ApiError> {
    let db = tenancy(state)?;
    let tenant = db
        .tenant(domain)
        .await
        .map_err(unavailable)?
        .filter(|t| t.tenant.id == identity.tenant_id)
        .ok_or_else(|| not_the_keys(domain))?;
    if !tenant.tenant.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tenant_disabled",
            "this tenant is disabled",
        ));
    }
    db.spend(&tenant).map_err(ApiError::rate_limited)?;
    Ok(tenant)
}

fn engine(
    state: &AppState,
    tenant: Arc<TenantConfig>,
    agent: &AgentRecord,
) -> Result<DbCall, ApiError> {
    let turns = tenancy(state)?
        .engine(&state.config, &tenant, agent)
        .map_err(|e| {
            tracing::warn!(tenant = %tenant.tenant.domain_name, error = %e, "agent cannot run");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "agent_misconfigured",
                format!("the agent cannot run: {e}"),
            )
        })?;
    Ok(DbCall {
        agent_id: agent.id,
        tenant,
        turns,
    })
}

/// A new session's tenant and agent: the agent claiming `number` (the dialled one), else
/// the tenant's default agent.
pub async fn for_new_session(
    state: &AppState,
    identity: &KeyIdentity,
    domain: &str,
    number: Option<&str>,
) -> Result<DbCall, ApiError> {
    let tenant = tenant_of(state, identity, domain).await?;
    let agent = tenant.agent_for(number).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_agent",
            format!(
                "no enabled agent answers {:?} and the tenant has no default agent",
                clip(number.unwrap_or(""))
            ),
        )
    })?;
    engine(state, tenant, &agent)
}

/// The engine of an existing session, from the tenant's configuration as it is now (a
/// changed prompt applies from the next turn). A removed agent gives way to the default.
pub async fn for_session(
    state: &AppState,
    identity: &KeyIdentity,
    session: &Session,
) -> Result<DbCall, ApiError> {
    let tenant = tenant_of(state, identity, &session.tenant).await?;
    let agent = session
        .agent_id
        .as_deref()
        .and_then(|id| {
            tenant
                .agents
                .iter()
                .find(|a| a.id.to_string() == id && a.enabled)
        })
        .or_else(|| tenant.agent_for(None))
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_agent",
                "the session's agent was removed and the tenant has no default agent",
            )
        })?;
    engine(state, tenant, &agent)
}
