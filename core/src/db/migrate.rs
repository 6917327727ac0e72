//! Schema migrations: `migrations/NNNN_name.sql`, embedded in every binary, applied in
//! version order at start by every service.
//!
//! Each migration runs in its own transaction together with its row in `schema_migrations`
//! (version, file, SHA-256), so it is applied whole or not at all. Every step first takes a
//! transaction-scoped advisory lock: services starting together queue on it, and the ones
//! after the first find the work done. A recorded migration whose file changed is refused.
//! Files must not contain BEGIN/COMMIT, nor statements that cannot run in a transaction
//! (CREATE INDEX CONCURRENTLY).

use super::{describe, Db, DbError};

/// One migration: its file name (`0001_tenancy.sql`, the digits are the version) and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration<'a> {
    pub file: &'a str,
    pub sql: &'a str,
}

macro_rules! embed {
    ($file:literal) => {
        Migration {
            file: $file,
            sql: include_str!(concat!("../../../migrations/", $file)),
        }
    };
}

/// The migrations this build carries, in version order. A new file in `migrations/` goes
/// here too (a test checks the two agree).
pub static MIGRATIONS: &[Migration<'static>] = &[
    embed!("0001_tenancy.sql"),
    embed!("0002_directory.sql"),
    embed!("0003_metrics.sql"),
    embed!("0004_calls.sql"),
    embed!("0005_privacy.sql"),
];

/// What [`Db::migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call, in order.
    pub applied: Vec<i64>,
    /// Versions found already applied (with the same checksum).
    pub already_applied: usize,
    /// Versions recorded in the database that this build does not know: a newer build
    /// migrated it. Not an error (rolling upgrades), but worth a warning.
    pub unknown: Vec<i64>,
}

/// Serializes migrators of one database (advisory locks are per database). "voice_mg".
const LOCK_KEY: i64 = 0x766f_6963_655f_6d67;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    bigint PRIMARY KEY,
    file       text NOT NULL,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

impl<'a> Migration<'a> {
    /// The version: the file name's leading digits.
    pub fn version(&self) -> Result<i64, DbError> {
        let digits: &str = self
            .file
            .split('_')
            .next()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                DbError::InvalidMigrations(format!(
                    "{:?} does not start with a version number and '_'",
                    self.file
                ))
            })?;
        digits
            .parse()
            .map_err(|_| DbError::InvalidMigrations(format!("{:?}: version too large", self.file)))
    }
}

/// Checks names (`NNNN_lowercase_name.sql`) and that versions strictly increase; returns
/// the versions.
pub fn validate(migrations: &[Migration<'_>]) -> Result<Vec<i64>, DbError> {
    let mut versions = Vec::with_capacity(migrations.len());
    for m in migrations {
        let stem = m.file.strip_suffix(".sql").unwrap_or("");
        let name_ok = stem.split_once('_').is_some_and(|(_, name)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
        if !name_ok {
            return Err(DbError::InvalidMigrations(format!(
                "{:?} is not named NNNN_lowercase_name.sql",
                m.file
            )));
        }
        let version = m.version()?;
        if let Some(&last) = versions.last() {
            if version <= last {
                return Err(DbError::InvalidMigrations(format!(
                    "{:?} (version {version}) comes after version {last}: versions must \
                     strictly increase",
                    m.file
                )));
            }
        }
        versions.push(version);
    }
    Ok(versions)
}

impl Db {
    /// Applies the migrations this build carries ([`MIGRATIONS`]).
    pub async fn migrate(&self) -> Result<MigrationReport, DbError> {
        self.migrate_with(MIGRATIONS).await
    }

    /// Applies `migrations` (in version order) that the database has not recorded yet.
    pub async fn migrate_with(
        &self,
        migrations: &[Migration<'_>],
    ) -> Result<MigrationReport, DbError> {
        let versions = validate(migrations)?;
        let mut client = self.client().await?;
        let mut report = MigrationReport::default();

        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await?;
        tx.batch_execute(CREATE_TABLE).await?;
        tx.commit().await?;

        for (m, &version) in migrations.iter().zip(&versions) {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                .await?;
            let current: String = tx
                .query_one(
                    "SELECT encode(sha256($1::bytea), 'hex')",
                    &[&m.sql.as_bytes()],
                )
                .await?
                .try_get(0)?;
            let recorded = tx
                .query_opt(
                    "SELECT sha256 FROM schema_migrations WHERE version = $1",
                    &[&version],
                )
                .await?;
            if let Some(row) = recorded {
                let recorded: String = row.try_get(0)?;
                tx.rollback().await?;
                if recorded != current {
                    return Err(DbError::ChecksumMismatch {
                        file: m.file.to_string(),
                        recorded,
                        current,
                    });
                }
                report.already_applied += 1;
                continue;
            }
            tx.batch_execute(m.sql)
                .await
                .map_err(|e| DbError::Migration {
                    file: m.file.to_string(),
                    message: describe(&e),
                })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, file, sha256) VALUES ($1, $2, $3)",
                &[&version, &m.file, &current],
            )
            .await?;
            tx.commit().await.map_err(|e| DbError::Migration {
                file: m.file.to_string(),
                message: describe(&e),
            })?;
            tracing::info!(db = %self.target(), file = m.file, "applied migration");
            report.applied.push(version);
        }

        let known: Vec<i64> = versions;
        report.unknown = client
            .query(
                "SELECT version FROM schema_migrations WHERE version <> ALL($1) ORDER BY version",
                &[&known],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if !report.unknown.is_empty() {
            tracing::warn!(
                db = %self.target(),
                versions = ?report.unknown,
                "the database has migrations this build does not know (a newer build applied them)"
            );
        }
        Ok(report)
    }
}
