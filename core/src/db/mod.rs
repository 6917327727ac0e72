//! PostgreSQL: the connection pool, schema migrations and tenant-scoped transactions.
//!
//! - [`Db::connect`] opens a pool and checks one connection works.
//! - [`Db::migrate`] applies the embedded `migrations/*.sql` ([`migrate`]).
//! - [`Db::with_tenant`] runs a closure in a transaction as role `voice_app` with
//!   `app.tenant_id` set, so row-level security limits every statement to that tenant
//!   ([`tenant`]). [`Db::admin`] and [`Db::create_tenant`] are the unscoped path, for
//!   provisioning only.
//!
//! Deployment: the login in the URL needs membership in `voice_app` (the first migration
//! grants it to the login that runs it). Row-level security binds that login itself only when
//! it is neither a superuser nor BYPASSRLS; inside `with_tenant` it binds regardless, because
//! the transaction runs as `voice_app`.

mod error;
pub mod migrate;
pub mod scratch;
pub mod tenant;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

pub use deadpool_postgres::Transaction;
pub use error::{describe, redact_url, DbError};
pub use migrate::{Migration, MigrationReport, MIGRATIONS};
pub use tenant::{TxFuture, APP_ROLE};

/// Connections the pool keeps at most, unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a free connection before the pool reports it is exhausted.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A pool of PostgreSQL connections. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// The URL without its password, for messages.
    target: Arc<str>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("target", &self.target).finish()
    }
}

impl Db {
    /// Connects to `url` (`postgres://user:password@host:port/dbname` or key=value form) with
    /// [`DEFAULT_POOL_SIZE`] connections at most.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        Self::connect_with(url, DEFAULT_POOL_SIZE).await
    }

    /// [`Db::connect`] with a pool of at most `pool_size` connections.
    pub async fn connect_with(url: &str, pool_size: usize) -> Result<Self, DbError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| DbError::InvalidUrl {
            url: redact_url(url),
            message: describe(&e),
        })?;
        Self::from_config(config, pool_size).await
    }

    /// Connects with a parsed configuration, and opens one connection to fail early (and
    /// clearly) on a wrong host, database or login.
    pub async fn from_config(
        mut config: tokio_postgres::Config,
        pool_size: usize,
    ) -> Result<Self, DbError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target: Arc<str> = display_target(&config).into();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| DbError::Pool {
                target: target.to_string(),
                message: e.to_string(),
            })?;
        let db = Self { pool, target };
        drop(db.client().await?);
        Ok(db)
    }

    /// The pool, for callers that need a raw connection.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Where this pool connects, without the password: `postgres://user@host:port/dbname`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// One connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        use deadpool_postgres::PoolError;
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => DbError::Connect {
                target: self.target.to_string(),
                message: describe(&e),
            },
            PoolError::Timeout(_) => DbError::Pool {
                target: self.target.to_string(),
                message: format!(
                    "timed out waiting for a connection ({} in use)",
                    self.pool.status().size
                ),
            },
            other => DbError::Pool {
                target: self.target.to_string(),
                message: other.to_string(),
            },
        })
    }
}

/// `postgres://user@host:port/dbname` from a parsed configuration (which never shows the
/// password).
fn display_target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            format!("{name}:{port}")
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let dbname = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("postgres://{user}{}/{dbname}", hosts.join(","))
}
