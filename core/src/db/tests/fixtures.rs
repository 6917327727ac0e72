//! One tenant's rows in every table, and running single statements as a tenant.

use super::*;
use tokio_postgres::types::ToSql;

/// One tenant's rows, one in every table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rows {
    pub(super) tenant: Uuid,
    pub(super) agent: Uuid,
    pub(super) provider: Uuid,
    pub(super) document: Uuid,
    pub(super) key: Uuid,
    pub(super) event: i64,
    pub(super) metric: Uuid,
    pub(super) insights: InsightsRows,
}

/// The call-insights tables (migrations 0004 and 0005): one call and a row of it in each.
#[derive(Debug, Clone, Copy)]
pub(super) struct InsightsRows {
    pub(super) call: Uuid,
    pub(super) recording: Uuid,
    pub(super) transcript: Uuid,
    pub(super) segment: Uuid,
    pub(super) insight: Uuid,
    pub(super) template: Uuid,
    pub(super) scorecard: Uuid,
    pub(super) crm_event: Uuid,
    pub(super) job: Uuid,
    pub(super) retention: i64,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum RowId {
    Uuid(Uuid),
    Serial(i64),
}

impl RowId {
    pub(super) fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            RowId::Uuid(id) => id,
            RowId::Serial(id) => id,
        }
    }
}

impl Rows {
    /// This tenant's row in `table`.
    pub(super) fn id_in(&self, table: &str) -> Option<RowId> {
        self.by_table()
            .into_iter()
            .find(|(t, _)| *t == table)
            .map(|(_, id)| id)
    }

    pub(super) fn by_table(&self) -> [(&'static str, RowId); 17] {
        let i = &self.insights;
        [
            ("tenants", RowId::Uuid(self.tenant)),
            ("agents", RowId::Uuid(self.agent)),
            ("provider_instances", RowId::Uuid(self.provider)),
            ("knowledge_documents", RowId::Uuid(self.document)),
            ("api_keys", RowId::Uuid(self.key)),
            ("events", RowId::Serial(self.event)),
            ("daily_metrics", RowId::Uuid(self.metric)),
            ("calls", RowId::Uuid(i.call)),
            ("recordings", RowId::Uuid(i.recording)),
            ("transcripts", RowId::Uuid(i.transcript)),
            ("segments", RowId::Uuid(i.segment)),
            ("insights", RowId::Uuid(i.insight)),
            ("scorecard_templates", RowId::Uuid(i.template)),
            ("scorecards", RowId::Uuid(i.scorecard)),
            ("crm_events", RowId::Uuid(i.crm_event)),
            ("jobs", RowId::Uuid(i.job)),
            ("retention_log", RowId::Serial(i.retention)),
        ]
    }
}

/// 32 random bytes, as an API key's hash.
pub(super) fn random_hash() -> Vec<u8> {
    [Uuid::new_v4().into_bytes(), Uuid::new_v4().into_bytes()].concat()
}

pub(super) async fn new_tenant(db: &Db, domain: &str) -> Uuid {
    db.create_tenant(Uuid::new_v4(), domain)
        .await
        .expect("create tenant")
}

/// Creates a tenant and one row of it in every table, through the tenant-scoped path.
pub(super) async fn populate(db: &Db, domain: &str) -> Rows {
    let tenant = new_tenant(db, domain).await;
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let id = |row: tokio_postgres::Row| row.try_get::<_, Uuid>(0);
            let agent = id(tx
                .query_one(
                    "INSERT INTO agents (tenant_id, name, mode, prompt, vad, tools, handoff)
                     VALUES ($1, 'recepcao', 'realtime', 'Você atende a recepção.',
                             '{\"threshold\": 0.5}', '[\"transfer_to_human\"]',
                             '{\"target\": \"1000\"}')
                     RETURNING id",
                    &[&tenant],
                )
                .await?)?;
            let provider = id(tx
                .query_one(
                    "INSERT INTO provider_instances
                         (tenant_id, kind, name, settings, credentials, priority)
                     VALUES ($1, 'openai_realtime', 'principal', '{\"model\": \"gpt-realtime\"}',
                             $2, 10)
                     RETURNING id",
                    &[&tenant, &b"ciphertext".as_slice()],
                )
                .await?)?;
            let document = id(tx
                .query_one(
                    "INSERT INTO knowledge_documents (tenant_id, agent_id, title, body)
                     VALUES ($1, $2, 'Horário', 'Atendemos das 8h às 18h.') RETURNING id",
                    &[&tenant, &agent],
                )
                .await?)?;
            let key = id(tx
                .query_one(
                    "INSERT INTO api_keys (tenant_id, name, role, prefix, key_hash)
                     VALUES ($1, 'painel', 'admin', 'vk_abcd', $2) RETURNING id",
                    &[&tenant, &random_hash()],
                )
                .await?)?;
            let event: i64 = tx
                .query_one(
                    "INSERT INTO events (tenant_id, agent_id, call_id, kind, data)
                     VALUES ($1, $2, 'call-1', 'call.started', '{\"caller\": \"1001\"}')
                     RETURNING id",
                    &[&tenant, &agent],
                )
                .await?
                .try_get(0)?;
            let metric = id(tx
                .query_one(
                    "INSERT INTO daily_metrics (tenant_id, agent_id, day, calls, turns, seconds)
                     VALUES ($1, $2, current_date, 1, 4, 62.5) RETURNING id",
                    &[&tenant, &agent],
                )
                .await?)?;
            let insights = insights_rows(tx, tenant).await?;
            Ok::<_, DbError>(Rows {
                tenant,
                agent,
                provider,
                document,
                key,
                event,
                metric,
                insights,
            })
        })
    })
    .await
    .expect("populate")
}

/// A processed call of `tenant` with its recording, transcript, segment, insights,
/// scorecard (on the tenant's template), CRM event, job and retention record.
async fn insights_rows(tx: &Transaction<'_>, tenant: Uuid) -> Result<InsightsRows, DbError> {
    let mut ids = Vec::new();
    for sql in [
        "INSERT INTO calls (tenant_id, provider_call_id, from_number, status)
         VALUES ($1, 'call-1', '+5511999990000', 'processed') RETURNING id",
        "INSERT INTO recordings (tenant_id, call_id, storage_key, format)
         VALUES ($1, $2, 'rec/call-1.wav', 'wav') RETURNING id",
        "INSERT INTO transcripts (tenant_id, call_id, text)
         VALUES ($1, $2, 'Quero um orçamento de frete.') RETURNING id",
        "INSERT INTO segments (tenant_id, call_id, ordinal, label, start_sec, end_sec)
         VALUES ($1, $2, 0, 'abertura', 0, 4) RETURNING id",
        "INSERT INTO insights (tenant_id, call_id, summary, tags)
         VALUES ($1, $2, 'Pediu um orçamento.', '{frete}') RETURNING id",
        "INSERT INTO scorecard_templates (tenant_id, key, name, is_default)
         VALUES ($1, 'vendas', 'Vendas', true) RETURNING id",
        "INSERT INTO scorecards (tenant_id, call_id, template_id, template_key, total_score)
         VALUES ($1, $2, $3, 'vendas', 80) RETURNING id",
        "INSERT INTO crm_events (tenant_id, call_id, provider, action, status)
         VALUES ($1, $2, 'pipedrive', 'note', 'ok') RETURNING id",
        "INSERT INTO jobs (tenant_id, call_id, kind) VALUES ($1, $2, 'process_call')
         RETURNING id",
    ] {
        // $2 is the call, $3 the template: each statement takes only the ones it names.
        let call = ids.first().copied().unwrap_or(tenant);
        let template = ids.get(5).copied().unwrap_or(tenant);
        let all: [&(dyn ToSql + Sync); 3] = [&tenant, &call, &template];
        let n = if sql.contains("$3") {
            3
        } else if sql.contains("$2") {
            2
        } else {
            1
        };
        let row = tx.query_one(sql, &all[..n]).await?;
        ids.push(row.try_get::<_, Uuid>(0)?);
    }
    let retention: i64 = tx
        .query_one(
            "INSERT INTO retention_log (tenant_id, call_id, deleted, older_than)
             VALUES ($1, $2, '{media}', now()) RETURNING id",
            &[&tenant, &ids[0]],
        )
        .await?
        .try_get(0)?;
    Ok(InsightsRows {
        call: ids[0],
        recording: ids[1],
        transcript: ids[2],
        segment: ids[3],
        insight: ids[4],
        template: ids[5],
        scorecard: ids[6],
        crm_event: ids[7],
        job: ids[8],
        retention,
    })
}

/// Runs one statement as `tenant` and returns the rows it affected, or its error.
pub(super) async fn as_tenant(
    db: &Db,
    tenant: Uuid,
    sql: impl Into<String>,
    id: Option<RowId>,
) -> Result<u64, DbError> {
    let sql = sql.into();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let params: Vec<&(dyn ToSql + Sync)> = id.iter().map(|i| i.param()).collect();
            Ok(tx.execute(&sql, &params).await?)
        })
    })
    .await
}

pub(super) fn assert_denied(result: Result<u64, DbError>, what: &str, code: &str) {
    match result {
        Err(e) => assert_eq!(e.sqlstate(), Some(code), "{what}: {e}"),
        Ok(n) => panic!("{what}: succeeded ({n} rows), expected SQLSTATE {code}"),
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
