//! Provider instances: a tenant's accounts with AI providers (tenant-scoped). Credentials
//! are sealed before they reach SQL, with the tenant and the instance id as associated data,
//! and only [`provider_chain`] opens them; lists and gets say whether there are any.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{
    check_name, check_object, conflict_on, double_option, Assignments, Page, StoreError,
    Transaction,
};
use crate::tenancy::crypto::{CredentialKey, Credentials, CryptoError};
use crate::tenancy::model::{ProviderInstance, PROVIDER_KINDS};

const COLUMNS: &str = "id, tenant_id, kind, name, settings, credentials IS NOT NULL AS \
                       has_credentials, priority, enabled, created_at, updated_at";

const MAX_NAME: usize = 200;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    pub kind: String,
    pub name: String,
    pub settings: Option<Value>,
    /// Secrets by name (`api_key` …); sealed before they are stored.
    pub credentials: Option<BTreeMap<String, String>>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
}

/// Absent fields are kept; `"credentials": null` removes the credentials.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    pub name: Option<String>,
    pub settings: Option<Value>,
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub credentials: Option<Option<BTreeMap<String, String>>>,
}

// Hand-written so the secrets never reach a log: credentials show their names only.
impl std::fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProvider")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("credentials", &self.credentials.as_ref().map(|c| c.keys()))
            .field("priority", &self.priority)
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl std::fmt::Debug for ProviderPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderPatch")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("priority", &self.priority)
            .field("enabled", &self.enabled)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|c| c.as_ref().map(|c| c.keys())),
            )
            .finish()
    }
}

fn check_kind(kind: &str) -> Result<(), StoreError> {
    if PROVIDER_KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "kind {kind:?} is not one of {}",
            PROVIDER_KINDS.join(", ")
        )))
    }
}

fn check_priority(priority: Option<i32>) -> Result<(), StoreError> {
    match priority {
        Some(p) if p < 0 => Err(StoreError::Invalid("priority must not be negative".into())),
        _ => Ok(()),
    }
}

/// The sealed form of `secrets` for this instance; `None` for no secrets at all.
fn seal(
    key: Option<&CredentialKey>,
    tenant: Uuid,
    instance: Uuid,
    secrets: BTreeMap<String, String>,
) -> Result<Option<Vec<u8>>, StoreError> {
    let credentials = Credentials::new(secrets)?;
    if credentials.is_empty() {
        return Ok(None);
    }
    let key = key.ok_or(CryptoError::NoKey)?;
    Ok(Some(key.seal(tenant, instance, &credentials)?))
}

fn name_conflict(e: tokio_postgres::Error, name: Option<&str>) -> StoreError {
    conflict_on(e, "provider_instances_tenant_id_name_key", || match name {
        Some(name) => format!("a provider instance named {name:?} already exists"),
        None => "a provider instance of this name already exists".into(),
    })
}

fn from_row(row: &tokio_postgres::Row) -> Result<ProviderInstance, StoreError> {
    Ok(ProviderInstance {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        settings: row.try_get("settings")?,
        has_credentials: row.try_get("has_credentials")?,
        priority: row.try_get("priority")?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The tenant's instances in chain order (priority, then name).
pub async fn list_providers(
    tx: &Transaction<'_>,
    page: Page,
) -> Result<Vec<ProviderInstance>, StoreError> {
    page.check()?;
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM provider_instances ORDER BY priority, name, id \
                 LIMIT $1 OFFSET $2"
            ),
            &[&page.limit, &page.offset],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get_provider(tx: &Transaction<'_>, id: Uuid) -> Result<ProviderInstance, StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM provider_instances WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Credentials without a key are refused (`Crypto(NoKey)`): they would have to be stored
/// in the clear.
pub async fn create_provider(
    tx: &Transaction<'_>,
    key: Option<&CredentialKey>,
    tenant: Uuid,
    new: NewProvider,
) -> Result<ProviderInstance, StoreError> {
    check_kind(&new.kind)?;
    check_name("name", &new.name, MAX_NAME)?;
    if let Some(settings) = &new.settings {
        check_object("settings", settings)?;
        let has_key = new
            .credentials
            .as_ref()
            .is_some_and(|c| c.get("api_key").is_some_and(|k| !k.is_empty()));
        check_provider_settings(&new.kind, settings, has_key)?;
    }
    check_priority(new.priority)?;
    // The id is the associated data of the ciphertext, so it is chosen before the insert.
    let id = Uuid::new_v4();
    let sealed = match new.credentials {
        Some(secrets) => seal(key, tenant, id, secrets)?,
        None => None,
    };
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO provider_instances \
                 (id, tenant_id, kind, name, settings, credentials, priority, enabled) \
                 VALUES ($1, $2, $3, $4, coalesce($5::jsonb, '{{}}'), $6, \
                 coalesce($7::integer, 100), coalesce($8::boolean, true)) \
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &tenant,
                &new.kind,
                &new.name,
                &new.settings,
                &sealed,
                &new.priority,
                &new.enabled,
            ],
        )
        .await
        .map_err(|e| name_conflict(e, Some(&new.name)))?;
    from_row(&row)
}

pub async fn update_provider(
    tx: &Transaction<'_>,
    key: Option<&CredentialKey>,
    id: Uuid,
    patch: ProviderPatch,
) -> Result<ProviderInstance, StoreError> {
    if let Some(name) = &patch.name {
        check_name("name", name, MAX_NAME)?;
    }
    if let Some(settings) = &patch.settings {
        check_object("settings", settings)?;
        // Checked against the row's kind, which a patch cannot change, and the key it will
        // have: the patch's credentials, else the stored ones.
        let row = tx
            .query_opt(
                "SELECT kind, credentials IS NOT NULL FROM provider_instances WHERE id = $1",
                &[&id],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let kind: String = row.try_get(0)?;
        let has_key = match &patch.credentials {
            Some(Some(c)) => c.get("api_key").is_some_and(|k| !k.is_empty()),
            Some(None) => false,
            None => row.try_get(1)?,
        };
        check_provider_settings(&kind, settings, has_key)?;
    }
    check_priority(patch.priority)?;

    let name = patch.name.clone();
    let mut set = Assignments::default();
    if let Some(credentials) = patch.credentials {
        let sealed = match credentials {
            Some(secrets) => {
                // Sealed for the row's own tenant (the associated data), read from the row.
                let tenant: Uuid = tx
                    .query_opt(
                        "SELECT tenant_id FROM provider_instances WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?
                    .ok_or(StoreError::NotFound)?
                    .try_get(0)?;
                seal(key, tenant, id, secrets)?
            }
            None => None,
        };
        set.set("credentials", sealed);
    }
    if let Some(v) = patch.name {
        set.set("name", v);
    }
    if let Some(v) = patch.settings {
        set.set("settings", v);
    }
    if let Some(v) = patch.priority {
        set.set("priority", v);
    }
    if let Some(v) = patch.enabled {
        set.set("enabled", v);
    }
    if set.is_empty() {
        return get_provider(tx, id).await;
    }
    let row = set
        .update_by_id(tx, "provider_instances", id, COLUMNS)
        .await
        .map_err(|e| name_conflict(e, name.as_deref()))?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Settings a call could not read (an unknown key, a wrong type, a secret in the clear) are
/// refused when written, not discovered at the next call.
fn check_provider_settings(kind: &str, settings: &Value, has_key: bool) -> Result<(), StoreError> {
    crate::tenancy::providers::check_settings(kind, settings, has_key)
        .map_err(|e| StoreError::Invalid(format!("settings: {e}")))
}

pub async fn delete_provider(tx: &Transaction<'_>, id: Uuid) -> Result<(), StoreError> {
    let deleted = tx
        .execute("DELETE FROM provider_instances WHERE id = $1", &[&id])
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Enabled instances by ascending priority, credentials opened: what a call uses. An
/// instance whose credentials do not open fails the whole chain, naming the instance (a
/// call should not quietly fall back to another account).
pub async fn provider_chain(
    tx: &Transaction<'_>,
    key: Option<&CredentialKey>,
) -> Result<Vec<(ProviderInstance, Option<Credentials>)>, StoreError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS}, credentials FROM provider_instances WHERE enabled \
                 ORDER BY priority, name, id"
            ),
            &[],
        )
        .await?;
    let mut chain = Vec::with_capacity(rows.len());
    for row in &rows {
        let instance = from_row(row)?;
        let sealed: Option<Vec<u8>> = row.try_get("credentials")?;
        let credentials = match sealed {
            None => None,
            Some(sealed) => {
                let key = key.ok_or(CryptoError::NoKey)?;
                let opened = key
                    .open(instance.tenant_id, instance.id, &sealed)
                    .map_err(|e| open_failed(&instance, e))?;
                Some(opened)
            }
        };
        chain.push((instance, credentials));
    }
    Ok(chain)
}

/// [`CryptoError::Open`] says nothing of which row: name the instance (never the secret).
fn open_failed(instance: &ProviderInstance, e: CryptoError) -> StoreError {
    match e {
        CryptoError::Open => StoreError::Crypto(CryptoError::Invalid(format!(
            "provider instance {:?} ({}) does not open with this key (wrong {}, or the row \
             was altered)",
            instance.name,
            instance.id,
            crate::tenancy::crypto::KEY_ENV
        ))),
        other => StoreError::Crypto(other),
    }
}
