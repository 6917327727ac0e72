//! API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are kept only as
//! SHA-256 digests and compared in constant time; a key names its tenant.

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::config::TenantSettings;

/// Every tenant's keys, hashed.
pub struct Keys {
    entries: Vec<([u8; 32], String)>,
}

fn digest(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(key.as_bytes()));
    out
}

/// Equal without an early exit (both are digests, so lengths are fixed).
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        let key = presented(headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            )
        })?;
        let wanted = digest(key);
        // Look at every entry, so timing does not tell where a match was.
        let mut found = None;
        for (hash, tenant) in &self.entries {
            if same(hash, &wanted) && found.is_none() {
                found = Some(tenant);
            }
        }
        found.cloned().ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key")
        })
    }
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim()).filter(|k| !k.is_empty());
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(key.trim())
        .filter(|k| !k.is_empty())
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
