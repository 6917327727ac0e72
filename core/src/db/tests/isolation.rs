//! Row-level security: every read and write path tried with another tenant's ids.

use super::fixtures::*;
use super::*;

/// Runs `body` with tenants A and B, each with a row in every table; afterwards checks that
/// B's rows are all still there, unchanged.
async fn with_two_tenants<F, Fut>(body: F)
where
    F: FnOnce(Db, Rows, Rows) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_migrated(4, |db| async move {
        let a = populate(&db, "a.example").await;
        let b = populate(&db, "b.example").await;
        body(db.clone(), a, b).await;
        assert_untouched(&db, b).await;
    })
    .await;
}

async fn assert_untouched(db: &Db, b: Rows) {
    for (table, id) in b.by_table() {
        let sql = format!("SELECT count(*) FROM {table} WHERE id = $1");
        let n = db
            .admin(move |tx| {
                Box::pin(async move {
                    let row = tx.query_one(&sql, &[id.param()]).await?;
                    Ok::<i64, DbError>(row.try_get(0)?)
                })
            })
            .await
            .expect(table);
        assert_eq!(n, 1, "B's {table} row is still there");
    }
    let row = db
        .admin(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT a.prompt, p.priority, d.body, k.revoked_at IS NULL, m.calls,
                                t.timezone
                         FROM agents a, provider_instances p, knowledge_documents d,
                              api_keys k, daily_metrics m, tenants t
                         WHERE a.id = $1 AND p.id = $2 AND d.id = $3 AND k.id = $4
                               AND m.id = $5 AND t.id = $6",
                        &[
                            &b.agent,
                            &b.provider,
                            &b.document,
                            &b.key,
                            &b.metric,
                            &b.tenant,
                        ],
                    )
                    .await?;
                Ok::<_, DbError>((
                    row.try_get::<_, String>(0)?,
                    row.try_get::<_, i32>(1)?,
                    row.try_get::<_, String>(2)?,
                    row.try_get::<_, bool>(3)?,
                    row.try_get::<_, i64>(4)?,
                    row.try_get::<_, String>(5)?,
                ))
            })
        })
        .await
        .expect("read B's rows");
    assert_eq!(
        row,
        (
            "Você atende a recepção.".to_string(),
            10,
            "Atendemos das 8h às 18h.".to_string(),
            true,
            1,
            "America/Sao_Paulo".to_string()
        ),
        "B's rows are unchanged"
    );
    let i = b.insights;
    let row = db
        .admin(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT c.status, r.storage_key, t.text, s.label, i.summary, st.name,
                                sc.total_score, sc.template_id, j.enqueued_at IS NULL
                         FROM calls c, recordings r, transcripts t, segments s, insights i,
                              scorecard_templates st, scorecards sc, jobs j
                         WHERE c.id = $1 AND r.id = $2 AND t.id = $3 AND s.id = $4
                               AND i.id = $5 AND st.id = $6 AND sc.id = $7 AND j.id = $8",
                        &[
                            &i.call,
                            &i.recording,
                            &i.transcript,
                            &i.segment,
                            &i.insight,
                            &i.template,
                            &i.scorecard,
                            &i.job,
                        ],
                    )
                    .await?;
                Ok::<_, DbError>((
                    row.try_get::<_, String>(0)?,
                    row.try_get::<_, String>(1)?,
                    row.try_get::<_, String>(2)?,
                    row.try_get::<_, String>(3)?,
                    row.try_get::<_, String>(4)?,
                    row.try_get::<_, String>(5)?,
                    row.try_get::<_, f64>(6)?,
                    row.try_get::<_, Option<Uuid>>(7)?,
                    row.try_get::<_, bool>(8)?,
                ))
            })
        })
        .await
        .expect("read B's call-insights rows");
    assert_eq!(
        row,
        (
            "processed".to_string(),
            "rec/call-1.wav".to_string(),
            "Quero um orçamento de frete.".to_string(),
            "abertura".to_string(),
            "Pediu um orçamento.".to_string(),
            "Vendas".to_string(),
            80.0,
            Some(i.template),
            true,
        ),
        "B's call-insights rows are unchanged"
    );
}

#[tokio::test]
async fn a_tenant_reads_only_its_own_rows() {
    with_two_tenants(|db, a, _b| async move {
        for (table, _) in a.by_table() {
            let key = if table == "tenants" {
                "id"
            } else {
                "tenant_id"
            };
            let sql = format!("SELECT {key} FROM {table}");
            let owners = db
                .with_tenant(a.tenant, move |tx| {
                    Box::pin(async move {
                        let rows = tx.query(&sql, &[]).await?;
                        rows.iter()
                            .map(|r| r.try_get::<_, Uuid>(0))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(DbError::from)
                    })
                })
                .await
                .expect(table);
            assert_eq!(owners, vec![a.tenant], "{table}");
        }
    })
    .await;
}

#[tokio::test]
async fn another_tenants_rows_cannot_be_selected_updated_or_deleted_by_id() {
    with_two_tenants(|db, a, b| async move {
        for (table, id) in b.by_table() {
            let sql = format!("SELECT 1 FROM {table} WHERE id = $1");
            let n = as_tenant(&db, a.tenant, sql, Some(id)).await.expect(table);
            assert_eq!(n, 0, "select B's {table} row");
        }
        for (table, set) in [
            ("tenants", "timezone = 'UTC'"),
            ("agents", "prompt = 'hijacked'"),
            ("provider_instances", "priority = 0"),
            ("knowledge_documents", "body = 'hijacked'"),
            ("api_keys", "revoked_at = now()"),
            ("daily_metrics", "calls = 999"),
            ("calls", "status = 'failed'"),
            ("recordings", "storage_key = 'hijacked'"),
            ("transcripts", "text = 'hijacked'"),
            ("segments", "label = 'hijacked'"),
            ("insights", "summary = 'hijacked'"),
            ("scorecard_templates", "name = 'hijacked'"),
            ("scorecards", "total_score = 0"),
            ("jobs", "enqueued_at = now()"),
        ] {
            let sql = format!("UPDATE {table} SET {set} WHERE id = $1");
            let n = as_tenant(&db, a.tenant, sql, b.id_in(table))
                .await
                .expect(table);
            assert_eq!(n, 0, "update B's {table} row");
        }
        for table in [
            "agents",
            "provider_instances",
            "knowledge_documents",
            "api_keys",
            "daily_metrics",
            "recordings",
            "transcripts",
            "segments",
            "insights",
            "scorecards",
            "scorecard_templates",
            "jobs",
            "calls",
        ] {
            let sql = format!("DELETE FROM {table} WHERE id = $1");
            let n = as_tenant(&db, a.tenant, sql, b.id_in(table))
                .await
                .expect(table);
            assert_eq!(n, 0, "delete B's {table} row");
        }
        // Statements without a WHERE reach A's rows only (one in each table).
        for sql in [
            "UPDATE tenants SET timezone = 'UTC'",
            "UPDATE agents SET prompt = 'changed'",
            "DELETE FROM knowledge_documents",
            "DELETE FROM provider_instances",
            "UPDATE calls SET status = 'failed'",
            "UPDATE transcripts SET text = 'changed'",
            "UPDATE insights SET summary = 'changed'",
            "UPDATE scorecards SET total_score = 1",
            "DELETE FROM jobs",
        ] {
            let n = as_tenant(&db, a.tenant, sql, None).await.expect(sql);
            assert_eq!(n, 1, "{sql}");
        }
    })
    .await;
}

#[tokio::test]
async fn writes_with_another_tenants_ids_are_refused() {
    with_two_tenants(|db, a, b| async move {
        // A call of B with nothing attached yet, for the composite keys below.
        let b_call2 = db
            .admin(move |tx| {
                Box::pin(async move {
                    let row = tx
                        .query_one(
                            "INSERT INTO calls (tenant_id, provider_call_id)
                             VALUES ($1, 'call-2') RETURNING id",
                            &[&b.tenant],
                        )
                        .await?;
                    Ok::<Uuid, DbError>(row.try_get(0)?)
                })
            })
            .await
            .expect("B's second call");
        let with_ids = |sql: &str| {
            sql.replace("{a}", &a.tenant.to_string())
                .replace("{b}", &b.tenant.to_string())
                .replace("{b_agent}", &b.agent.to_string())
                .replace("{b_call2}", &b_call2.to_string())
                .replace("{b_call}", &b.insights.call.to_string())
                .replace("{b_template}", &b.insights.template.to_string())
                .replace("{hash}", &hex(&random_hash()))
        };
        // Rows of B, or rows moved to B: the policies' WITH CHECK refuses them.
        let denied = [
            "INSERT INTO agents (tenant_id, name) VALUES ('{b}', 'x')",
            "INSERT INTO provider_instances (tenant_id, kind, name) VALUES ('{b}', 'groq', 'x')",
            "INSERT INTO knowledge_documents (tenant_id, body) VALUES ('{b}', 'x')",
            "INSERT INTO api_keys (tenant_id, role, prefix, key_hash)
             VALUES ('{b}', 'viewer', 'vk_x', '\\x{hash}')",
            "INSERT INTO events (tenant_id, kind) VALUES ('{b}', 'call.started')",
            "INSERT INTO daily_metrics (tenant_id, day) VALUES ('{b}', current_date)",
            "UPDATE agents SET tenant_id = '{b}'",
            "UPDATE provider_instances SET tenant_id = '{b}'",
            "UPDATE knowledge_documents SET tenant_id = '{b}'",
            "UPDATE api_keys SET tenant_id = '{b}'",
            "UPDATE daily_metrics SET tenant_id = '{b}'",
            "INSERT INTO calls (tenant_id, provider_call_id) VALUES ('{b}', 'x')",
            "INSERT INTO scorecard_templates (tenant_id, key) VALUES ('{b}', 'x')",
            "INSERT INTO retention_log (tenant_id, call_id, deleted, older_than)
             VALUES ('{b}', '{b_call}', '{media}', now())",
            "UPDATE calls SET tenant_id = '{b}'",
            "UPDATE scorecard_templates SET tenant_id = '{b}'",
            // The audit trails are append-only.
            "UPDATE crm_events SET status = 'ok'",
            "DELETE FROM crm_events",
            "UPDATE retention_log SET deleted = '{}'",
            "DELETE FROM retention_log",
            // What voice_app has no grant for at all.
            "INSERT INTO tenants (domain_uuid, domain_name)
             VALUES (gen_random_uuid(), 'c.example')",
            "UPDATE tenants SET domain_name = 'c.example'",
            "DELETE FROM tenants WHERE id = '{b}'",
            "UPDATE events SET tenant_id = '{b}'",
            "SELECT 1 FROM schema_migrations",
        ];
        for sql in denied {
            let result = as_tenant(&db, a.tenant, with_ids(sql), None).await;
            assert_denied(result, sql, "42501");
        }
        let sql = with_ids("INSERT INTO agents (tenant_id, name) VALUES ('{b}', 'x')");
        let err = as_tenant(&db, a.tenant, sql, None).await.unwrap_err();
        assert!(err.to_string().contains("row-level security"), "{err}");

        // A's own rows may not point at B's agent. Foreign-key checks ignore row-level
        // security, so this is the composite key's and the events trigger's work.
        for sql in [
            "INSERT INTO knowledge_documents (tenant_id, agent_id, body)
             VALUES ('{a}', '{b_agent}', 'x')",
            "INSERT INTO events (tenant_id, agent_id, kind)
             VALUES ('{a}', '{b_agent}', 'call.started')",
            "INSERT INTO recordings (tenant_id, call_id) VALUES ('{a}', '{b_call2}')",
            "INSERT INTO transcripts (tenant_id, call_id) VALUES ('{a}', '{b_call2}')",
            "INSERT INTO segments (tenant_id, call_id, ordinal, label, start_sec, end_sec)
             VALUES ('{a}', '{b_call2}', 1, 'x', 0, 1)",
            "INSERT INTO insights (tenant_id, call_id) VALUES ('{a}', '{b_call2}')",
            "INSERT INTO crm_events (tenant_id, call_id, provider, action, status)
             VALUES ('{a}', '{b_call2}', 'pipedrive', 'note', 'ok')",
            "INSERT INTO jobs (tenant_id, call_id, kind) VALUES ('{a}', '{b_call2}', 'x')",
            "UPDATE scorecards SET template_id = '{b_template}'",
        ] {
            let result = as_tenant(&db, a.tenant, with_ids(sql), None).await;
            assert_denied(result, sql, "23503");
        }
    })
    .await;
}

#[tokio::test]
async fn the_scope_ends_with_the_transaction() {
    // One connection, so every transaction below reuses the one with_tenant used.
    with_migrated(1, |db| async move {
        let a = populate(&db, "a.example").await;
        let (user, setting) = db
            .admin(|tx| {
                Box::pin(async move {
                    let row = tx
                        .query_one(
                            "SELECT current_user::text, current_setting('app.tenant_id', true)",
                            &[],
                        )
                        .await?;
                    Ok::<(String, Option<String>), DbError>((row.try_get(0)?, row.try_get(1)?))
                })
            })
            .await
            .expect("read settings");
        assert_ne!(user, APP_ROLE, "the role does not outlive the transaction");
        // Once set in a session, a custom setting reads '' (not NULL) afterwards: the
        // policies must treat that as "no tenant", not fail on ''::uuid.
        assert_eq!(setting.as_deref(), Some(""));
        let seen = db
            .admin(|tx| {
                Box::pin(async move {
                    tx.batch_execute("SET LOCAL ROLE voice_app").await?;
                    let mut seen = 0i64;
                    for table in TENANT_TABLES.iter().chain(&["tenants"]) {
                        let row = tx
                            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                            .await?;
                        seen += row.try_get::<_, i64>(0)?;
                    }
                    Ok::<i64, DbError>(seen)
                })
            })
            .await
            .expect("voice_app without a tenant");
        assert_eq!(seen, 0, "no tenant set: no rows");
        // The rows are there for the tenant itself.
        let n = as_tenant(&db, a.tenant, "SELECT 1 FROM agents", None)
            .await
            .expect("agents");
        assert_eq!(n, 1);
    })
    .await;
}
