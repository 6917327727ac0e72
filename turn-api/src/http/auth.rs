//! API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are kept only as
//! SHA-256 digests and compared in constant time; a key names its tenant. Keys of the TOML
//! `[tenants]` are checked first, then the database's (`api_keys`, with a role).

use axum::http::{HeaderMap, StatusCode};

use voice_core::tenancy::model::{KeyIdentity, Role};
use voice_core::tenancy::store::{key_digest as digest, presented, same_digest as same};

use super::error::ApiError;
use super::AppState;
use crate::config::TenantSettings;

/// Every tenant's keys, hashed.
pub struct Keys {
    entries: Vec<([u8; 32], String)>,
}

impl Keys {
    pub fn new<'a>(tenants: impl IntoIterator<Item = (&'a String, &'a TenantSettings)>) -> Self {
        let entries = tenants
            .into_iter()
            .flat_map(|(domain, t)| {
                t.api_keys
                    .iter()
                    .map(move |k| (digest(k.expose()), domain.clone()))
            })
            .collect();
        Self { entries }
    }

    /// The tenant the request's key belongs to.
    pub fn tenant(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let key = presented(headers).ok_or_else(missing_key)?;
        self.find(key).ok_or_else(unknown_key)
    }

    /// The TOML tenant of `key`, if it is one of theirs.
    fn find(&self, key: &str) -> Option<String> {
        let wanted = digest(key);
        // Look at every entry, so timing does not tell where a match was.
        let mut found = None;
        for (hash, tenant) in &self.entries {
            if same(hash, &wanted) && found.is_none() {
                found = Some(tenant);
            }
        }
        found.cloned()
    }
}

/// Who sent a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A key of the TOML `[tenants."domain"]`.
    Toml(String),
    /// A database key: its tenant and role.
    Db(KeyIdentity),
}

/// The caller of a request: a TOML key, else a database key (when there is a database).
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = presented(headers).ok_or_else(missing_key)?;
    if let Some(tenant) = state.keys.find(key) {
        return Ok(Caller::Toml(tenant));
    }
    let Some(tenancy) = &state.tenancy else {
        return Err(unknown_key());
    };
    match tenancy.identify(key).await {
        Ok(Some(identity)) if identity.role <= Role::Agent => Ok(Caller::Db(identity)),
        Ok(Some(identity)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a {} key cannot run calls: use a key with role agent, supervisor or admin",
                identity.role.as_str()
            ),
        )),
        Ok(None) => Err(unknown_key()),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "tenants_unavailable",
            format!("cannot check the API key: {e}"),
        )),
    }
}

fn missing_key() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
    )
}

fn unknown_key() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use voice_core::config::Secret;

    #[test]
    fn keys_name_their_tenant_by_either_header() {
        let t = TenantSettings {
            api_keys: vec![Secret::new("key-of-a-0123456789")],
            ..Default::default()
        };
        let name = "a.example".to_string();
        let keys = Keys::new([(&name, &t)]);
        let mut h = HeaderMap::new();
        assert_eq!(
            keys.tenant(&h).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        h.insert(
            "authorization",
            "bearer key-of-a-0123456789".parse().unwrap(),
        );
        assert_eq!(keys.tenant(&h).unwrap(), "a.example");
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "key-of-a-0123456780".parse().unwrap());
        let e = keys.tenant(&h).unwrap_err();
        assert_eq!(e.code, "unauthorized");
        assert!(!e.message.contains("0123456780"));
    }
}
