//! A throwaway database for tests in any crate: [`ScratchDb::create`] makes
//! `voice_test_<random>` on the server of `TEST_DATABASE_URL` (default: the local server as
//! `postgres`), migrates it, and drops it when the value is dropped.

use std::str::FromStr;

use tokio_postgres::{Config, NoTls};
use uuid::Uuid;

use super::{describe, Db, DbError};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A migrated database of its own; dropped (with its connections) on drop.
pub struct ScratchDb {
    pub db: Db,
    /// The URL of the scratch database, for a service under test.
    pub url: String,
    name: String,
    server: Config,
}

impl ScratchDb {
    /// Creates and migrates a fresh database with a pool of `pool_size`.
    pub async fn create(pool_size: usize) -> Result<Self, DbError> {
        let server_url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let server = Config::from_str(&server_url).map_err(|e| DbError::InvalidUrl {
            url: super::redact_url(&server_url),
            message: describe(&e),
        })?;
        let name = format!("voice_test_{}", Uuid::new_v4().simple());
        admin_statement(&server, &format!("CREATE DATABASE {name}")).await?;
        let url = with_dbname(&server_url, &name);
        let mut config = server.clone();
        config.dbname(&name);
        let db = Db::from_config(config, pool_size).await?;
        db.migrate().await?;
        Ok(Self {
            db,
            url,
            name,
            server,
        })
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside or outside a runtime: a thread with its own runtime works in both.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(admin_statement(&server, &sql));
            }
        })
        .join();
    }
}

async fn admin_statement(server: &Config, sql: &str) -> Result<(), DbError> {
    let (client, connection) = server.connect(NoTls).await.map_err(|e| DbError::Connect {
        target: "TEST_DATABASE_URL".into(),
        message: describe(&e),
    })?;
    let task = tokio::spawn(connection);
    let result = client.batch_execute(sql).await.map_err(DbError::from);
    drop(client);
    let _ = task.await;
    result
}

/// `url` with its database name replaced (URL form or key=value form).
fn with_dbname(url: &str, name: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
        let path_start = base[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .unwrap_or(base.len());
        let mut out = format!("{}/{name}", &base[..path_start]);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    } else {
        format!("{url} dbname={name}")
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            with_dbname("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_dbname("postgres://u@h:5432?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_dbname("host=h user=u", "x"), "host=h user=u dbname=x");
    }
}
