//! Migrations: from empty, idempotent, checksums, failures, concurrency, the embedded list.

use super::*;
use crate::db::migrate::validate;

/// The versions of every embedded migration, in order.
fn all_versions() -> Vec<i64> {
    MIGRATIONS
        .iter()
        .map(|m| m.version().expect("embedded version"))
        .collect()
}

/// A file name for a migration after the embedded ones.
fn next_file(name: &str) -> (i64, String) {
    let next = all_versions().last().copied().unwrap_or(0) + 1;
    (next, format!("{next:04}_{name}.sql"))
}

#[tokio::test]
async fn migrates_an_empty_database() {
    with_database(|config| async move {
        let db = Db::from_config(config, 2).await.expect("connect");
        let report = db.migrate().await.expect("migrate");
        assert_eq!(report.applied, all_versions());
        assert_eq!(report.already_applied, 0);
        assert!(report.unknown.is_empty());
        assert_eq!(recorded_versions(&db).await, all_versions());

        let checksum_ok = db
            .admin(|tx| {
                Box::pin(async move {
                    let row = tx
                        .query_one(
                            "SELECT sha256 = encode(sha256($1::bytea), 'hex'), file
                             FROM schema_migrations WHERE version = 1",
                            &[&MIGRATIONS[0].sql.as_bytes()],
                        )
                        .await?;
                    assert_eq!(row.get::<_, String>(1), "0001_tenancy.sql");
                    Ok::<bool, DbError>(row.get(0))
                })
            })
            .await
            .expect("read checksum");
        assert!(checksum_ok, "the recorded checksum is the file's SHA-256");

        // Every table exists with row-level security enabled and forced.
        let rls = db
            .admin(|tx| {
                Box::pin(async move {
                    let rows = tx
                        .query(
                            "SELECT relname::text, relrowsecurity, relforcerowsecurity
                             FROM pg_class WHERE relnamespace = current_schema()::regnamespace
                             AND relkind = 'r' AND relname <> 'schema_migrations'
                             ORDER BY relname",
                            &[],
                        )
                        .await?;
                    Ok::<_, DbError>(
                        rows.iter()
                            .map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1), r.get(2)))
                            .collect::<Vec<(String, bool, bool)>>(),
                    )
                })
            })
            .await
            .expect("read pg_class");
        let mut expected: Vec<&str> = TENANT_TABLES.to_vec();
        expected.push("tenants");
        expected.sort();
        assert_eq!(
            rls.iter().map(|(t, _, _)| t.as_str()).collect::<Vec<_>>(),
            expected
        );
        for (table, enabled, forced) in &rls {
            assert!(
                *enabled && *forced,
                "{table}: RLS enabled {enabled}, forced {forced}"
            );
        }

        let role_ok = count(
            &db,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'voice_app'
             AND NOT rolbypassrls AND NOT rolsuper AND NOT rolcanlogin",
        )
        .await;
        assert_eq!(
            role_ok, 1,
            "voice_app: NOLOGIN, no BYPASSRLS, not superuser"
        );
    })
    .await;
}

#[tokio::test]
async fn a_second_run_applies_nothing() {
    with_migrated(2, |db| async move {
        let again = db.migrate().await.expect("second migrate");
        assert!(again.applied.is_empty(), "{again:?}");
        assert_eq!(again.already_applied, MIGRATIONS.len());
        assert_eq!(recorded_versions(&db).await, all_versions());
    })
    .await;
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    with_migrated(2, |db| async move {
        let edited = format!("{}\n-- edited after it was applied\n", MIGRATIONS[0].sql);
        let (_, after) = next_file("after");
        let mut list = MIGRATIONS.to_vec();
        list[0] = Migration {
            file: MIGRATIONS[0].file,
            sql: &edited,
        };
        list.push(Migration {
            file: &after,
            sql: "CREATE TABLE should_not_exist (x int)",
        });
        let err = db.migrate_with(&list).await.unwrap_err();
        assert!(matches!(err, DbError::ChecksumMismatch { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("0001_tenancy.sql") && text.contains("was changed"),
            "{text}"
        );
        // Nothing after the changed file was applied.
        assert_eq!(recorded_versions(&db).await, all_versions());
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM pg_class WHERE relname = 'should_not_exist'"
            )
            .await,
            0
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_migration_is_rolled_back_whole_and_named() {
    with_migrated(2, |db| async move {
        let (next, file) = next_file("broken");
        let mut broken = MIGRATIONS.to_vec();
        broken.push(Migration {
            file: &file,
            sql: "CREATE TABLE half_done (x int);\nSELECT no_such_function();",
        });
        let err = db.migrate_with(&broken).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DbError::Migration { .. }), "{err:?}");
        assert!(
            text.contains(&file) && text.contains("no_such_function"),
            "{text}"
        );
        assert_eq!(recorded_versions(&db).await, all_versions());
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM pg_class WHERE relname = 'half_done'"
            )
            .await,
            0,
            "the failed migration's first statement was rolled back too"
        );

        let mut fixed = MIGRATIONS.to_vec();
        fixed.push(Migration {
            file: &file,
            sql: "CREATE TABLE half_done (x int);",
        });
        let report = db.migrate_with(&fixed).await.expect("fixed migration");
        assert_eq!(report.applied, vec![next]);
        assert_eq!(report.already_applied, MIGRATIONS.len());

        // This build (without the new file) still starts, and says the database is ahead.
        let report = db.migrate().await.expect("older build");
        assert_eq!(report.unknown, vec![next]);
        assert!(report.applied.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_both_succeed_and_apply_once() {
    with_database(|config| async move {
        let a = Db::from_config(config.clone(), 1).await.expect("connect a");
        let b = Db::from_config(config, 1).await.expect("connect b");
        let ta = tokio::spawn(async move { a.migrate().await });
        let tb = tokio::spawn(async move { b.migrate().await });
        let ra = ta.await.expect("join a").expect("migrate a");
        let rb = tb.await.expect("join b").expect("migrate b");
        let mut applied = ra.applied.clone();
        applied.extend(&rb.applied);
        applied.sort();
        assert_eq!(
            applied,
            all_versions(),
            "applied once in all: {ra:?} {rb:?}"
        );
        assert_eq!(ra.already_applied + rb.already_applied, MIGRATIONS.len());
    })
    .await;
}

#[test]
fn migration_lists_are_validated() {
    let m = |file| Migration { file, sql: "" };
    assert_eq!(
        validate(&[m("0001_a.sql"), m("0002_b_2.sql"), m("0010_c.sql")]).unwrap(),
        vec![1, 2, 10]
    );
    for bad in [
        vec![m("0002_a.sql"), m("0001_b.sql")],
        vec![m("0001_a.sql"), m("0001_b.sql")],
        vec![m("a_0001.sql")],
        vec![m("0001.sql")],
        vec![m("0001_Tenancy.sql")],
        vec![m("0001_a.txt")],
    ] {
        let err = validate(&bad).unwrap_err();
        assert!(
            matches!(err, DbError::InvalidMigrations(_)),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn every_file_in_migrations_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("read migrations/")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                std::fs::read_to_string(&path).expect("read migration"),
            )
        })
        .collect();
    files.sort();
    let embedded: Vec<(String, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.file.to_string(), m.sql.to_string()))
        .collect();
    assert_eq!(
        files, embedded,
        "MIGRATIONS must list migrations/*.sql in order"
    );
    validate(MIGRATIONS).expect("embedded list is valid");
}
