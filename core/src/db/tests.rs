//! Against the real PostgreSQL (`TEST_DATABASE_URL`, default the local server as `postgres`).
//! Each test creates its own database `voice_test_<random>` and drops it at the end, also when
//! the test fails.

use std::future::Future;
use std::str::FromStr;

use tokio_postgres::{Config, NoTls};
use uuid::Uuid;

use super::*;

mod connect;
mod fixtures;
mod isolation;
mod lookup;
mod migrations;
mod schema;
mod search;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn server_config() -> Config {
    let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    Config::from_str(&url).expect("TEST_DATABASE_URL is not a PostgreSQL URL")
}

async fn server_client() -> tokio_postgres::Client {
    let (client, connection) = server_config()
        .connect(NoTls)
        .await
        .expect("connect to TEST_DATABASE_URL (is PostgreSQL running?)");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Runs `body` with the configuration of a fresh database, dropped afterwards even when
/// `body` panics.
async fn with_database<F, Fut>(body: F)
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = format!("voice_test_{}", Uuid::new_v4().simple());
    let server = server_client().await;
    server
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    let mut config = server_config();
    config.dbname(&name);
    let outcome = tokio::spawn(body(config)).await;
    server
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop the test database");
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// [`with_database`], migrated, with a pool of `pool_size`.
async fn with_migrated<F, Fut>(pool_size: usize, body: F)
where
    F: FnOnce(Db) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_database(move |config| async move {
        let db = Db::from_config(config, pool_size).await.expect("connect");
        db.migrate().await.expect("migrate");
        body(db).await;
    })
    .await;
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    db.admin(move |tx| {
        Box::pin(async move {
            let row = tx.query_one(sql, &[]).await?;
            Ok::<i64, DbError>(row.try_get(0)?)
        })
    })
    .await
    .expect(sql)
}

async fn recorded_versions(db: &Db) -> Vec<i64> {
    db.admin(|tx| {
        Box::pin(async move {
            let rows = tx
                .query(
                    "SELECT version FROM schema_migrations ORDER BY version",
                    &[],
                )
                .await?;
            Ok::<_, DbError>(rows.iter().map(|r| r.get(0)).collect())
        })
    })
    .await
    .expect("read schema_migrations")
}

const TENANT_TABLES: [&str; 16] = [
    "agents",
    "provider_instances",
    "knowledge_documents",
    "api_keys",
    "events",
    "daily_metrics",
    // 0004: call insights.
    "calls",
    "recordings",
    "transcripts",
    "segments",
    "insights",
    "scorecard_templates",
    "scorecards",
    "crm_events",
    "jobs",
    // 0005: LGPD.
    "retention_log",
];
