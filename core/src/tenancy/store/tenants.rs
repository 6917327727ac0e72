//! Tenants: the platform path, for provisioning (not for serving a tenant's own requests).
//!
//! The tenants policy is FORCEd, so even the table's owner sees only the row named by
//! `app.tenant_id`: every function that knows the id sets it first, like
//! [`Db::create_tenant`], and works for any login that owns the tables. Listing cannot name
//! one tenant: it needs the migrating login to be a superuser or BYPASSRLS (a plain owner
//! would see an empty list).

use serde::Deserialize;
use uuid::Uuid;

use super::{check_len, conflict_on, double_option, Assignments, Db, Page, StoreError};
use crate::tenancy::model::Tenant;

const COLUMNS: &str = "id, domain_uuid, domain_name, timezone, enabled, max_concurrent_calls, \
                       busy_transfer, requests_per_minute, require_consent, retention_days";

/// Scopes the admin transaction to one tenant (see the module comment).
const SCOPE: &str = "SELECT set_config('app.tenant_id', $1, true)";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub domain_uuid: Uuid,
    pub domain_name: String,
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    pub max_concurrent_calls: Option<i32>,
    pub busy_transfer: Option<String>,
    pub requests_per_minute: Option<i32>,
    pub require_consent: Option<bool>,
    pub retention_days: Option<i32>,
}

/// Absent fields are kept; `null` clears the nullable ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub domain_name: Option<String>,
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub max_concurrent_calls: Option<Option<i32>>,
    pub busy_transfer: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub requests_per_minute: Option<Option<i32>>,
    #[serde(default, deserialize_with = "double_option")]
    pub require_consent: Option<Option<bool>>,
    #[serde(default, deserialize_with = "double_option")]
    pub retention_days: Option<Option<i32>>,
}

fn check_domain_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 253
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '\0');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "domain_name must be 1-253 characters without spaces or '/'".into(),
        ))
    }
}

fn check_timezone(zone: &str) -> Result<(), StoreError> {
    // The database knows the zones; this only keeps nonsense from reaching it.
    if zone.trim().is_empty() {
        return Err(StoreError::Invalid("timezone must not be empty".into()));
    }
    check_len("timezone", zone, 64)
}

fn check_busy_transfer(target: &str) -> Result<(), StoreError> {
    let ok = target.len() <= 64
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*#+_.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "busy_transfer must be at most 64 of 0-9, A-Z, a-z and * # + _ . @ -".into(),
        ))
    }
}

fn check_max_calls(value: Option<i32>) -> Result<(), StoreError> {
    match value {
        Some(n) if n < 0 => Err(StoreError::Invalid(
            "max_concurrent_calls must not be negative".into(),
        )),
        _ => Ok(()),
    }
}

fn check_retention(value: Option<i32>) -> Result<(), StoreError> {
    match value {
        Some(n) if !(1..=36_500).contains(&n) => Err(StoreError::Invalid(
            "retention_days must be between 1 and 36500".into(),
        )),
        _ => Ok(()),
    }
}

fn check_rate(value: Option<i32>) -> Result<(), StoreError> {
    match value {
        Some(n) if n <= 0 => Err(StoreError::Invalid(
            "requests_per_minute must be positive".into(),
        )),
        _ => Ok(()),
    }
}

/// A bad zone name fails the table's check with "time zone … not recognized"; say which
/// field that is.
fn timezone_error(e: tokio_postgres::Error) -> StoreError {
    match StoreError::from(e) {
        StoreError::Invalid(m) if m.contains("time zone") => {
            StoreError::Invalid(format!("timezone: {m}"))
        }
        other => other,
    }
}

/// A taken domain uuid or name as a [`StoreError::Conflict`] that names it.
fn tenant_error(
    e: tokio_postgres::Error,
    domain_uuid: Option<Uuid>,
    domain_name: Option<&str>,
) -> StoreError {
    let constraint = e
        .as_db_error()
        .and_then(|d| d.constraint())
        .map(str::to_string);
    match constraint.as_deref() {
        Some(c @ "tenants_domain_uuid_key") => conflict_on(e, c, || match domain_uuid {
            Some(u) => format!("a tenant for domain uuid {u} already exists"),
            None => "a tenant for this domain uuid already exists".into(),
        }),
        Some(c @ "tenants_domain_name_key") => conflict_on(e, c, || match domain_name {
            Some(n) => format!("a tenant for domain {n:?} already exists"),
            None => "a tenant for this domain name already exists".into(),
        }),
        _ => timezone_error(e),
    }
}

fn from_row(row: &tokio_postgres::Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: row.try_get("id")?,
        domain_uuid: row.try_get("domain_uuid")?,
        domain_name: row.try_get("domain_name")?,
        timezone: row.try_get("timezone")?,
        enabled: row.try_get("enabled")?,
        max_concurrent_calls: row.try_get("max_concurrent_calls")?,
        busy_transfer: row.try_get("busy_transfer")?,
        requests_per_minute: row.try_get("requests_per_minute")?,
        require_consent: row.try_get("require_consent")?,
        retention_days: row.try_get("retention_days")?,
    })
}

pub async fn create_tenant(db: &Db, new: NewTenant) -> Result<Tenant, StoreError> {
    check_domain_name(&new.domain_name)?;
    if let Some(zone) = &new.timezone {
        check_timezone(zone)?;
    }
    if let Some(target) = &new.busy_transfer {
        check_busy_transfer(target)?;
    }
    check_max_calls(new.max_concurrent_calls)?;
    check_rate(new.requests_per_minute)?;
    check_retention(new.retention_days)?;
    let id = Uuid::new_v4();
    db.admin(move |tx| {
        Box::pin(async move {
            tx.execute(SCOPE, &[&id.to_string()]).await?;
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO tenants (id, domain_uuid, domain_name, timezone, enabled, \
                         max_concurrent_calls, busy_transfer, requests_per_minute, \
                         require_consent, retention_days) \
                         VALUES ($1, $2, $3, coalesce($4, 'America/Sao_Paulo'), \
                         coalesce($5, true), $6, coalesce($7, ''), $8, $9, $10) \
                         RETURNING {COLUMNS}"
                    ),
                    &[
                        &id,
                        &new.domain_uuid,
                        &new.domain_name,
                        &new.timezone,
                        &new.enabled,
                        &new.max_concurrent_calls,
                        &new.busy_transfer,
                        &new.requests_per_minute,
                        &new.require_consent,
                        &new.retention_days,
                    ],
                )
                .await
                .map_err(|e| tenant_error(e, Some(new.domain_uuid), Some(&new.domain_name)))?;
            from_row(&row)
        })
    })
    .await
}

/// Every tenant by domain name. Needs a superuser or BYPASSRLS login (see the module
/// comment): the services' own login lists nothing.
pub async fn list_tenants(db: &Db, page: Page) -> Result<Vec<Tenant>, StoreError> {
    page.check()?;
    db.admin(move |tx| {
        Box::pin(async move {
            let rows = tx
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM tenants ORDER BY lower(domain_name), id \
                         LIMIT $1 OFFSET $2"
                    ),
                    &[&page.limit, &page.offset],
                )
                .await?;
            rows.iter().map(from_row).collect()
        })
    })
    .await
}

pub async fn get_tenant(db: &Db, id: Uuid) -> Result<Tenant, StoreError> {
    db.admin(move |tx| {
        Box::pin(async move {
            tx.execute(SCOPE, &[&id.to_string()]).await?;
            let row = tx
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"),
                    &[&id],
                )
                .await?
                .ok_or(StoreError::NotFound)?;
            from_row(&row)
        })
    })
    .await
}

pub async fn update_tenant(db: &Db, id: Uuid, patch: TenantPatch) -> Result<Tenant, StoreError> {
    let mut set = Assignments::default();
    if let Some(name) = patch.domain_name.clone() {
        check_domain_name(&name)?;
        set.set("domain_name", name);
    }
    if let Some(zone) = patch.timezone {
        check_timezone(&zone)?;
        set.set("timezone", zone);
    }
    if let Some(enabled) = patch.enabled {
        set.set("enabled", enabled);
    }
    if let Some(max) = patch.max_concurrent_calls {
        check_max_calls(max)?;
        set.set("max_concurrent_calls", max);
    }
    if let Some(target) = patch.busy_transfer {
        check_busy_transfer(&target)?;
        set.set("busy_transfer", target);
    }
    if let Some(rate) = patch.requests_per_minute {
        check_rate(rate)?;
        set.set("requests_per_minute", rate);
    }
    if let Some(required) = patch.require_consent {
        set.set("require_consent", required);
    }
    if let Some(days) = patch.retention_days {
        check_retention(days)?;
        set.set("retention_days", days);
    }
    if set.is_empty() {
        return get_tenant(db, id).await;
    }
    let new_name = patch.domain_name;
    db.admin(move |tx| {
        Box::pin(async move {
            tx.execute(SCOPE, &[&id.to_string()]).await?;
            let row = set
                .update_by_id(tx, "tenants", id, COLUMNS)
                .await
                .map_err(|e| tenant_error(e, None, new_name.as_deref()))?
                .ok_or(StoreError::NotFound)?;
            from_row(&row)
        })
    })
    .await
}

/// Deletes the tenant and, by cascade, everything it owns (agents, keys, events …).
pub async fn delete_tenant(db: &Db, id: Uuid) -> Result<(), StoreError> {
    db.admin(move |tx| {
        Box::pin(async move {
            tx.execute(SCOPE, &[&id.to_string()]).await?;
            let deleted = tx
                .execute("DELETE FROM tenants WHERE id = $1", &[&id])
                .await?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    })
    .await
}

/// By domain name (any case) or domain uuid text, through SQL `tenant_lookup()`, as
/// `voice_app` with no tenant set: works for any login the services use.
pub async fn lookup_tenant(db: &Db, domain: &str) -> Result<Option<Tenant>, StoreError> {
    let domain = domain.trim().to_string();
    if check_domain_name(&domain).is_err() {
        return Ok(None);
    }
    db.admin(move |tx| {
        Box::pin(async move {
            tx.execute("SELECT set_config('role', 'voice_app', true)", &[])
                .await?;
            let row = tx
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM tenant_lookup($1)"),
                    &[&domain],
                )
                .await?;
            row.as_ref().map(from_row).transpose()
        })
    })
    .await
}
