//! The schema's own rules: the append-only event log, metrics upserts, checks.

use super::fixtures::*;
use super::*;

#[tokio::test]
async fn events_are_append_only() {
    with_migrated(2, |db| async move {
        let a = populate(&db, "a.example").await;
        // The app role has no UPDATE or DELETE grant.
        for sql in [
            "UPDATE events SET kind = 'call.ended'",
            "DELETE FROM events",
            "TRUNCATE events",
        ] {
            assert_denied(as_tenant(&db, a.tenant, sql, None).await, sql, "42501");
        }
        // And the trigger refuses them even from a login that bypasses grants.
        for sql in [
            "UPDATE events SET kind = 'call.ended'",
            "DELETE FROM events",
            "TRUNCATE events",
        ] {
            let err = db
                .admin(move |tx| {
                    Box::pin(async move { Ok::<u64, DbError>(tx.execute(sql, &[]).await?) })
                })
                .await
                .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        assert_eq!(count(&db, "SELECT count(*) FROM events").await, 1);
        // Deleting the tenant takes its events along (the cascade is allowed).
        let tenant = a.tenant;
        db.admin(move |tx| {
            Box::pin(async move {
                tx.execute("DELETE FROM tenants WHERE id = $1", &[&tenant])
                    .await?;
                Ok::<(), DbError>(())
            })
        })
        .await
        .expect("delete tenant");
        assert_eq!(count(&db, "SELECT count(*) FROM events").await, 0);
        assert_eq!(count(&db, "SELECT count(*) FROM agents").await, 0);
    })
    .await;
}

#[tokio::test]
async fn daily_metrics_upsert_one_row_per_tenant_agent_and_day() {
    with_migrated(2, |db| async move {
        let a = populate(&db, "a.example").await;
        let upsert = "INSERT INTO daily_metrics (tenant_id, agent_id, day, calls, seconds)
                      VALUES ($1, NULL, DATE '2025-03-01', 1, 30)
                      ON CONFLICT ON CONSTRAINT daily_metrics_key
                      DO UPDATE SET calls = daily_metrics.calls + EXCLUDED.calls,
                                    seconds = daily_metrics.seconds + EXCLUDED.seconds";
        for _ in 0..2 {
            let tenant = a.tenant;
            db.with_tenant(tenant, move |tx| {
                Box::pin(async move { Ok::<u64, DbError>(tx.execute(upsert, &[&tenant]).await?) })
            })
            .await
            .expect("upsert");
        }
        let (rows, calls, seconds) = db
            .with_tenant(a.tenant, |tx| {
                Box::pin(async move {
                    let row = tx
                        .query_one(
                            "SELECT count(*), sum(calls)::bigint, sum(seconds) FROM daily_metrics
                             WHERE day = DATE '2025-03-01' AND agent_id IS NULL",
                            &[],
                        )
                        .await?;
                    Ok::<(i64, i64, f64), DbError>((
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                    ))
                })
            })
            .await
            .expect("read metrics");
        assert_eq!((rows, calls, seconds), (1, 2, 60.0));
    })
    .await;
}

#[tokio::test]
async fn tenant_checks() {
    with_migrated(2, |db| async move {
        let a = new_tenant(&db, "a.example").await;
        // Domain names are unique regardless of case.
        let err = db
            .create_tenant(Uuid::new_v4(), "A.Example")
            .await
            .unwrap_err();
        assert_eq!(err.sqlstate(), Some("23505"), "{err}");
        // A tenant may change its time zone, to a real one only.
        let ok = as_tenant(
            &db,
            a,
            "UPDATE tenants SET timezone = 'America/Manaus'",
            None,
        )
        .await;
        assert_eq!(ok.expect("valid time zone"), 1);
        let err = as_tenant(&db, a, "UPDATE tenants SET timezone = 'Mars/Olympus'", None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("time zone"), "{err}");
        // Enumerations are checked.
        for sql in [
            "INSERT INTO agents (tenant_id, name, mode)
             VALUES (current_tenant_id(), 'x', 'telepathy')",
            "INSERT INTO provider_instances (tenant_id, kind, name)
             VALUES (current_tenant_id(), 'openai_v9', 'x')",
            "INSERT INTO api_keys (tenant_id, role, prefix, key_hash)
             VALUES (current_tenant_id(), 'root', 'vk_x', '\\x00')",
        ] {
            assert_denied(as_tenant(&db, a, sql, None).await, sql, "23514");
        }
        // Several instances of one provider kind are fine.
        for name in ["openai-1", "openai-2"] {
            let sql = format!(
                "INSERT INTO provider_instances (tenant_id, kind, name, priority)
                 VALUES (current_tenant_id(), 'openai', '{name}', 1)"
            );
            assert_eq!(as_tenant(&db, a, sql, None).await.expect(name), 1);
        }
    })
    .await;
}
