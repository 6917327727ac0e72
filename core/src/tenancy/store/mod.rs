//! Reading and writing the tenancy rows.
//!
//! Tenants are the platform path: they take the [`Db`] and run on [`Db::admin`] (see
//! [`tenants`]). Everything else is tenant-scoped: the functions take a transaction opened by
//! [`Db::with_tenant`], where row-level security already confines every statement to that
//! tenant; the queries never name another tenant either, so a foreign id is simply not found.
//!
//! ```text
//! let agent = db.with_tenant(tenant, |tx| Box::pin(async move {
//!     store::create_agent(tx, tenant, new_agent).await
//! })).await?;
//! ```
//!
//! Inputs are checked before any SQL with [`StoreError::Invalid`] messages a person can act
//! on; what only the database can tell (a name taken, a foreign key) is mapped from its
//! SQLSTATE. No error ever carries a secret: credentials are only named, never shown.

mod agents;
mod api_keys;
mod knowledge;
mod providers;
mod tenants;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio_postgres::error::{DbError as PgDbError, SqlState};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::crypto::CryptoError;
use crate::db::DbError;
pub use crate::db::{Db, Transaction};

pub use agents::{
    create_agent, delete_agent, get_agent, list_agents, update_agent, AgentPatch, NewAgent,
};
pub use api_keys::{
    create_key, get_key, key_digest, list_keys, lookup_key, presented, revoke_key, same_digest,
    NewApiKey, KEY_PREFIX,
};
pub use knowledge::{
    create_document, delete_document, get_document, list_documents, search_knowledge,
    update_document, DocumentPatch, KnowledgeHit, NewDocument,
};
pub use providers::{
    create_provider, delete_provider, get_provider, list_providers, provider_chain,
    update_provider, NewProvider, ProviderPatch,
};
pub use tenants::{
    create_tenant, delete_tenant, get_tenant, list_tenants, lookup_tenant, update_tenant,
    NewTenant, TenantPatch,
};

/// Why a store call failed. `Display` is fit to show the caller: never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Something of the same name (or number, or role) already exists.
    #[error("{0}")]
    Conflict(String),
    /// The input breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Query(e) => Self::from(e),
            other => StoreError::Db(other),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            return StoreError::Db(DbError::Query(e));
        };
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict(unique_message(db));
        }
        // The server's message, never its detail: the detail quotes the failing row.
        if *code == SqlState::CHECK_VIOLATION
            || *code == SqlState::FOREIGN_KEY_VIOLATION
            || *code == SqlState::NOT_NULL_VIOLATION
            || code.code().starts_with("22")
        {
            return StoreError::Invalid(db.message().to_string());
        }
        if *code == SqlState::INSUFFICIENT_PRIVILEGE && db.message().contains("row-level security")
        {
            return StoreError::Invalid(
                "the row belongs to another tenant than the transaction's".into(),
            );
        }
        StoreError::Db(DbError::Query(e))
    }
}

/// A unique violation worded by its constraint (the functions word the common ones with the
/// name at fault through [`conflict_on`]).
fn unique_message(db: &PgDbError) -> String {
    match db.constraint() {
        Some("tenants_domain_uuid_key") => "a tenant for this domain uuid already exists".into(),
        Some("tenants_domain_name_key") => "a tenant for this domain name already exists".into(),
        Some("agents_tenant_id_name_key") => "an agent of this name already exists".into(),
        Some("agents_one_default") => "another agent is already the default".into(),
        Some("provider_instances_tenant_id_name_key") => {
            "a provider instance of this name already exists".into()
        }
        Some(other) => format!("already exists ({other})"),
        None => "already exists".into(),
    }
}

/// `e` as a [`StoreError::Conflict`] with `message` when it is a unique violation of
/// `constraint`; otherwise mapped as usual.
fn conflict_on(
    e: tokio_postgres::Error,
    constraint: &str,
    message: impl FnOnce() -> String,
) -> StoreError {
    let hit = e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(constraint)
    });
    if hit {
        StoreError::Conflict(message())
    } else {
        StoreError::from(e)
    }
}

/// A window of a list: `limit` rows (1..=200) after skipping `offset`. Deserializes from a
/// query string (`?limit=20&offset=40`, either may be absent); the store functions check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 200;

    /// A checked page; `None` takes the default.
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self, StoreError> {
        let page = Page {
            limit: limit.unwrap_or(Self::DEFAULT_LIMIT),
            offset: offset.unwrap_or(0),
        };
        page.check()?;
        Ok(page)
    }

    pub fn check(&self) -> Result<(), StoreError> {
        if !(1..=Self::MAX_LIMIT).contains(&self.limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be between 1 and {}",
                Self::MAX_LIMIT
            )));
        }
        if self.offset < 0 {
            return Err(StoreError::Invalid("offset must not be negative".into()));
        }
        Ok(())
    }
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// For `Option<Option<T>>` patch fields: absent stays `None`, JSON `null` becomes
/// `Some(None)` (clear), a value `Some(Some(v))`. Use with `#[serde(default)]`.
fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The `SET` list of an `UPDATE` built from the fields a patch carries.
#[derive(Default)]
struct Assignments {
    sets: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Assignments {
    fn set<T: ToSql + Sync + Send + 'static>(&mut self, column: &str, value: T) {
        self.params.push(Box::new(value));
        self.sets.push(format!("{column} = ${}", self.params.len()));
    }

    fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// `UPDATE table SET … WHERE id = $n RETURNING returning`, with its parameters.
    async fn update_by_id(
        mut self,
        tx: &Transaction<'_>,
        table: &str,
        id: Uuid,
        returning: &str,
    ) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
        self.params.push(Box::new(id));
        let sql = format!(
            "UPDATE {table} SET {} WHERE id = ${} RETURNING {returning}",
            self.sets.join(", "),
            self.params.len()
        );
        let params: Vec<&(dyn ToSql + Sync)> = self
            .params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        tx.query_opt(&sql, &params).await
    }
}

// Checks shared by the tables.

/// Text of 1..=`max` characters, not blank.
fn check_name(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::Invalid(format!("{field} must not be empty")));
    }
    check_len(field, value, max)
}

/// Text of at most `max` characters.
fn check_len(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.chars().count() > max {
        return Err(StoreError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if value.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

fn check_object(field: &str, value: &Value) -> Result<(), StoreError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{field} must be a JSON object"
        )))
    }
}

fn check_array(field: &str, value: &Value) -> Result<(), StoreError> {
    if value.is_array() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("{field} must be a JSON array")))
    }
}

/// A database value this build does not know (a newer migration, or a hand edit).
fn unexpected(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("unexpected {what} {value:?} in the database"))
}
