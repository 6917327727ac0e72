//! Tenant-scoped transactions, and the unscoped admin path.
//!
//! [`Db::with_tenant`] opens a transaction, switches it to role [`APP_ROLE`] and sets
//! `app.tenant_id`, both `LOCAL` (they end with the transaction, so a pooled connection
//! never carries one tenant's scope into the next use). Row-level security then shows and
//! accepts only that tenant's rows, whatever the statements inside forget to filter.

use std::future::Future;
use std::pin::Pin;

use uuid::Uuid;

use super::{describe, Db, DbError, Transaction};

/// The role tenant-scoped transactions run as (NOLOGIN, no BYPASSRLS; created by migration 1).
pub const APP_ROLE: &str = "voice_app";

/// What a [`Db::with_tenant`] or [`Db::admin`] closure returns: a boxed future borrowing the
/// transaction (`|tx| Box::pin(async move { … })`).
pub type TxFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// Both settings in one round trip. `set_config('role', …)` is `SET ROLE`: it checks
/// membership and, being local, ends with the transaction.
const ENTER_TENANT: &str =
    "SELECT set_config('role', 'voice_app', true), set_config('app.tenant_id', $1, true)";

impl Db {
    /// Runs `f` in one transaction as [`APP_ROLE`], scoped to `tenant`: every statement sees
    /// and may write only that tenant's rows. Commits when `f` returns `Ok`, rolls back on
    /// `Err`. The future may borrow only the transaction: the closure owns (moves in) what
    /// else it uses. The whole future is `Send`, so it can run in spawned tasks and handlers.
    ///
    /// ```text
    /// let names = db.with_tenant(tenant, |tx| Box::pin(async move {
    ///     let rows = tx.query("SELECT name FROM agents", &[]).await?;
    ///     Ok::<_, DbError>(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>())
    /// })).await?;
    /// ```
    pub async fn with_tenant<T, E, F>(&self, tenant: Uuid, f: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t Transaction<'t>) -> TxFuture<'t, T, E>,
        E: From<DbError>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        let enter = async {
            let statement = tx.prepare_cached(ENTER_TENANT).await?;
            tx.query_one(&statement, &[&tenant.to_string()]).await
        };
        if let Err(e) = enter.await {
            let message = describe(&e);
            // Not being allowed to SET ROLE deserves its own explanation.
            if e.as_db_error().is_some() {
                return Err(DbError::Role {
                    target: self.target().to_string(),
                    message,
                }
                .into());
            }
            return Err(DbError::Query(e).into());
        }
        finish(tx, f).await
    }

    /// Runs `f` in one transaction as the login itself, with no tenant: for migrations-like
    /// work and provisioning (creating tenants). Not for serving requests.
    pub async fn admin<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t Transaction<'t>) -> TxFuture<'t, T, E>,
        E: From<DbError>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        finish(tx, f).await
    }

    /// Creates the tenant of a FusionPBX domain; returns its id.
    pub async fn create_tenant(
        &self,
        domain_uuid: Uuid,
        domain_name: &str,
    ) -> Result<Uuid, DbError> {
        let id = Uuid::new_v4();
        let domain_name = domain_name.to_string();
        self.admin(move |tx| {
            Box::pin(async move {
                // The tenants policy is FORCEd, so a login that owns the table but is neither
                // superuser nor BYPASSRLS may insert only the tenant it is scoped to.
                tx.execute(
                    "SELECT set_config('app.tenant_id', $1, true)",
                    &[&id.to_string()],
                )
                .await?;
                tx.execute(
                    "INSERT INTO tenants (id, domain_uuid, domain_name) VALUES ($1, $2, $3)",
                    &[&id, &domain_uuid, &domain_name],
                )
                .await?;
                Ok(id)
            })
        })
        .await
    }
}

/// Runs `f`, then commits on `Ok` or rolls back on `Err`.
async fn finish<'c, T, E, F>(tx: Transaction<'c>, f: F) -> Result<T, E>
where
    F: for<'t> FnOnce(&'t Transaction<'t>) -> TxFuture<'t, T, E>,
    E: From<DbError>,
{
    let result = f(&tx).await;
    match result {
        Ok(value) => {
            tx.commit().await.map_err(DbError::from)?;
            Ok(value)
        }
        Err(e) => {
            // The closure's error is the one to report; a failed rollback (a dead
            // connection) is dropped by the pool on recycling.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}
