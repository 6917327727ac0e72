//! Who is calling ([`Caller`]) and what each role may do ([`Action`]).
//!
//! A request presents `Authorization: Bearer <key>` or `X-API-Key: <key>`: either the
//! platform operator's token (`VOICE_ADMIN_TOKEN`: every tenant, and tenants themselves) or
//! a tenant's API key (its tenant only, as far as its role allows). A key used on another
//! tenant's path gets 404, as if that tenant did not exist; a role that may not do something
//! gets 403 saying which role would.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;
use voice_core::tenancy::model::{KeyIdentity, Role};
use voice_core::tenancy::store::presented;
use voice_core::tenancy::store::{self, StoreError};

use crate::http::error::ApiError;
use crate::state::AppState;

/// What a request wants to do in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The tenant's own row; agents, providers (no credentials), knowledge, metrics.
    Read,
    /// Full-text search of the knowledge base (what a running agent does).
    SearchKnowledge,
    WriteAgents,
    WriteKnowledge,
    /// Provider instances, credentials included.
    WriteProviders,
    /// List, create and revoke API keys.
    ManageKeys,
    /// Create, list, change and delete tenants: the platform token only.
    ManageTenants,
    /// The calls list and a call's detail (transcript, insights, scorecard).
    ReadCalls,
    /// A call's recorded audio (personal data: supervisors and admins).
    ListenRecordings,
    /// Send a call's insights to the tenant's CRM again.
    PushCrm,
}

impl Action {
    /// The least role allowed; `None`: the platform token only.
    pub fn least_role(self) -> Option<Role> {
        match self {
            Action::Read => Some(Role::Viewer),
            Action::SearchKnowledge => Some(Role::Agent),
            Action::WriteAgents | Action::WriteKnowledge => Some(Role::Supervisor),
            Action::WriteProviders | Action::ManageKeys => Some(Role::Admin),
            Action::ManageTenants => None,
            Action::ReadCalls => Some(Role::Viewer),
            Action::ListenRecordings | Action::PushCrm => Some(Role::Supervisor),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Action::Read => "read this tenant",
            Action::SearchKnowledge => "search the knowledge base",
            Action::WriteAgents => "change agents",
            Action::WriteKnowledge => "change knowledge documents",
            Action::WriteProviders => "change provider instances or their credentials",
            Action::ManageKeys => "manage API keys",
            Action::ManageTenants => "manage tenants",
            Action::ReadCalls => "read calls",
            Action::ListenRecordings => "listen to call recordings",
            Action::PushCrm => "push calls to the CRM",
        }
    }
}

/// Roles from least to most: each may do what the ones before it may.
fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Agent => 1,
        Role::Supervisor => 2,
        Role::Admin => 3,
    }
}

pub fn allows(role: Role, action: Action) -> bool {
    action
        .least_role()
        .is_some_and(|least| rank(role) >= rank(least))
}

/// The authenticated caller. Extracting it authenticates the request (401) and takes one
/// request from the key's tenant's rate limit (429).
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    Platform,
    Key(KeyIdentity),
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        // The web panel's sign-in cookie counts too, for reads only (GET/HEAD): the audio
        // player's request carries no header, and a cookie never authorises a write (CSRF).
        let from_cookie = || {
            matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD
            )
            .then(|| crate::panel::auth::key_cookie(&parts.headers))
            .flatten()
        };
        let presented = presented(&parts.headers)
            .or_else(from_cookie)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                )
            })?;
        if state.platform.matches(presented) {
            return Ok(Caller::Platform);
        }
        let identity = store::lookup_key(&state.db, presented)
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown, revoked or expired API key"))?;
        state.limit(identity.tenant_id).await?;
        Ok(Caller::Key(identity))
    }
}

impl Caller {
    /// May this caller do `action` in `tenant`? 404 for another tenant's key (and, for the
    /// platform, for a tenant that does not exist), 403 for a role that may not.
    pub async fn enter(
        &self,
        state: &AppState,
        tenant: Uuid,
        action: Action,
    ) -> Result<(), ApiError> {
        match self {
            Caller::Platform => match store::get_tenant(&state.db, tenant).await {
                Ok(_) => Ok(()),
                Err(StoreError::NotFound) => Err(no_tenant(tenant)),
                Err(e) => Err(e.into()),
            },
            Caller::Key(key) => {
                if key.tenant_id != tenant {
                    return Err(no_tenant(tenant));
                }
                self.allow(action)
            }
        }
    }

    /// Role check alone (routes without a tenant in the path).
    pub fn allow(&self, action: Action) -> Result<(), ApiError> {
        let role = match self {
            Caller::Platform => return Ok(()),
            Caller::Key(key) => key.role,
        };
        if allows(role, action) {
            return Ok(());
        }
        let needs = match action.least_role() {
            Some(least) => {
                let roles: Vec<&str> = [Role::Viewer, Role::Agent, Role::Supervisor, Role::Admin]
                    .into_iter()
                    .filter(|r| rank(*r) >= rank(least))
                    .map(Role::as_str)
                    .collect();
                format!("needs role {}", roles.join(" or "))
            }
            None => "needs the platform token".to_string(),
        };
        Err(ApiError::forbidden(format!(
            "an API key with role {} may not {}: {needs}",
            role.as_str(),
            action.describe()
        )))
    }
}

pub fn no_tenant(tenant: Uuid) -> ApiError {
    ApiError::not_found(format!("no tenant {tenant}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_matrix() {
        use Action::*;
        let table: &[(Role, &[Action])] = &[
            (Role::Viewer, &[Read, ReadCalls]),
            (Role::Agent, &[Read, ReadCalls, SearchKnowledge]),
            (
                Role::Supervisor,
                &[
                    Read,
                    ReadCalls,
                    SearchKnowledge,
                    WriteAgents,
                    WriteKnowledge,
                    ListenRecordings,
                    PushCrm,
                ],
            ),
            (
                Role::Admin,
                &[
                    Read,
                    ReadCalls,
                    SearchKnowledge,
                    WriteAgents,
                    WriteKnowledge,
                    ListenRecordings,
                    PushCrm,
                    WriteProviders,
                    ManageKeys,
                ],
            ),
        ];
        let all = [
            Read,
            SearchKnowledge,
            WriteAgents,
            WriteKnowledge,
            WriteProviders,
            ManageKeys,
            ManageTenants,
            ReadCalls,
            ListenRecordings,
            PushCrm,
        ];
        for (role, allowed) in table {
            for action in all {
                assert_eq!(
                    allows(*role, action),
                    allowed.contains(&action),
                    "{role:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn forbidden_says_which_role_would_do() {
        let caller = Caller::Key(KeyIdentity {
            key_id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            role: Role::Viewer,
        });
        let e = caller.allow(Action::WriteAgents).unwrap_err();
        assert_eq!(e.code, "forbidden");
        assert!(
            e.message.contains("role viewer may not change agents")
                && e.message.contains("supervisor or admin"),
            "{}",
            e.message
        );
        let e = caller.allow(Action::ManageTenants).unwrap_err();
        assert!(e.message.contains("platform token"), "{}", e.message);
        assert!(Caller::Platform.allow(Action::ManageTenants).is_ok());
    }

    #[test]
    fn keys_come_from_either_header() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert("authorization", "Bearer  abc ".parse().unwrap());
        assert_eq!(presented(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented(&h), None);
        h.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented(&h), Some("xyz"));
    }
}
