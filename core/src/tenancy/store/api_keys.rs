//! API keys: created here and shown once; only their prefix and SHA-256 are stored.
//!
//! Key text: `vk_<prefix: 8>_<secret: 32>`, both parts alphanumeric. The prefix tells keys
//! apart in lists; a presented key is found by the hash of the whole text.

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{check_len, unexpected, Db, Page, StoreError, Transaction};
use crate::tenancy::model::{ApiKeyRecord, KeyIdentity, Role};

/// What every key starts with.
pub const KEY_PREFIX: &str = "vk_";
const PREFIX_LEN: usize = 8;
const SECRET_LEN: usize = 32;
const MAX_NAME: usize = 200;

const COLUMNS: &str =
    "id, tenant_id, name, role, prefix, created_at, expires_at, last_used_at, revoked_at";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: Option<String>,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A fresh key's prefix and whole text. (`rand::rng()` is not `Send`: kept out of futures.)
fn generate() -> (String, String) {
    let mut rng = rand::rng();
    let prefix = Alphanumeric.sample_string(&mut rng, PREFIX_LEN);
    let secret = Alphanumeric.sample_string(&mut rng, SECRET_LEN);
    let text = format!("{KEY_PREFIX}{prefix}_{secret}");
    (prefix, text)
}

fn hash(text: &str) -> Vec<u8> {
    key_digest(text).to_vec()
}

/// The SHA-256 of a key's text: what is kept of a key, here and in the services' own
/// key lists.
pub fn key_digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Whether two digests are equal, without an early exit (timing does not tell how much of a
/// guess was right).
pub fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `text` has a key's shape (a cheap refusal before any SQL).
fn looks_like_key(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(KEY_PREFIX) else {
        return false;
    };
    let Some((prefix, secret)) = rest.split_once('_') else {
        return false;
    };
    prefix.len() == PREFIX_LEN
        && secret.len() == SECRET_LEN
        && prefix
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_alphanumeric())
}

fn from_row(row: &tokio_postgres::Row) -> Result<ApiKeyRecord, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| unexpected("role", &role))?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Creates a key; returns its record and its text, which is shown this once and never
/// again (only its hash is kept).
pub async fn create_key(
    tx: &Transaction<'_>,
    tenant: Uuid,
    new: NewApiKey,
) -> Result<(ApiKeyRecord, String), StoreError> {
    if let Some(name) = &new.name {
        check_len("name", name, MAX_NAME)?;
    }
    if new.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(StoreError::Invalid("expires_at is in the past".into()));
    }
    let (prefix, text) = generate();
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO api_keys (tenant_id, name, role, prefix, key_hash, expires_at) \
                 VALUES ($1, coalesce($2::text, ''), $3, $4, $5, $6) RETURNING {COLUMNS}"
            ),
            &[
                &tenant,
                &new.name,
                &new.role.as_str(),
                &prefix,
                &hash(&text),
                &new.expires_at,
            ],
        )
        .await?;
    Ok((from_row(&row)?, text))
}

/// The tenant's keys, newest first (revoked ones too: they say when).
pub async fn list_keys(tx: &Transaction<'_>, page: Page) -> Result<Vec<ApiKeyRecord>, StoreError> {
    page.check()?;
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id \
                 LIMIT $1 OFFSET $2"
            ),
            &[&page.limit, &page.offset],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get_key(tx: &Transaction<'_>, id: Uuid) -> Result<ApiKeyRecord, StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Revokes the key from now on (revoking twice keeps the first time).
pub async fn revoke_key(tx: &Transaction<'_>, id: Uuid) -> Result<ApiKeyRecord, StoreError> {
    let row = tx
        .query_opt(
            &format!(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) \
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// How stale `last_used_at` may get: writing it on every request would be a write (and a
/// `voice_config` notification) per request.
const LAST_USED_RESOLUTION_SECS: f64 = 60.0;

/// A presented API key → its identity, through SQL `api_key_lookup(sha256)` (no tenant
/// needed); `None` for an unknown, revoked or expired key. Marks the key used (at most once
/// a minute) in a transaction of its tenant.
pub async fn lookup_key(db: &Db, presented: &str) -> Result<Option<KeyIdentity>, StoreError> {
    let presented = presented.trim();
    if !looks_like_key(presented) {
        return Ok(None);
    }
    let key_hash = hash(presented);
    let found = db
        .admin(move |tx| {
            Box::pin(async move {
                tx.execute("SELECT set_config('role', 'voice_app', true)", &[])
                    .await?;
                let row = tx
                    .query_opt(
                        "SELECT key_id, tenant_id, role FROM api_key_lookup($1)",
                        &[&key_hash],
                    )
                    .await?;
                let Some(row) = row else {
                    return Ok::<_, StoreError>(None);
                };
                let role: String = row.try_get("role")?;
                Ok(Some(KeyIdentity {
                    key_id: row.try_get("key_id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    role: Role::parse(&role).ok_or_else(|| unexpected("role", &role))?,
                }))
            })
        })
        .await?;
    let Some(identity) = found else {
        return Ok(None);
    };
    db.with_tenant(identity.tenant_id, move |tx| {
        Box::pin(async move {
            tx.execute(
                "UPDATE api_keys SET last_used_at = now() WHERE id = $1 \
                 AND (last_used_at IS NULL \
                      OR last_used_at < now() - make_interval(secs => $2))",
                &[&identity.key_id, &LAST_USED_RESOLUTION_SECS],
            )
            .await?;
            Ok::<_, StoreError>(())
        })
    })
    .await?;
    Ok(Some(identity))
}

/// The API key a request presents: `X-API-Key: <key>`, else `Authorization: Bearer <key>`
/// (what every service of ours accepts); `None` when neither holds one.
pub fn presented(headers: &http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim()).filter(|k| !k.is_empty());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(key.trim())
        .filter(|k| !k.is_empty())
}
