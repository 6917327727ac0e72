//! Daily metrics per tenant and agent, aggregated from the event log (seed 002, ADR-003:
//! event log → periodic aggregation → pre-computed table the dashboard reads).
//!
//! A day is the tenant's (`tenants.timezone`): an event at 02:30 UTC belongs to the
//! previous day in São Paulo. Aggregating recomputes the rows of a day range from the
//! events and upserts them, so running it again changes nothing and a late event is
//! counted by the next run. Counted: `call.started` (calls), `turn.completed` (turns),
//! `handoff` (handoffs), and the `seconds` of `call.ended` (see `event_seconds()` in
//! migrations/0003). One row per day and agent, plus the row of events with no agent.

use std::time::Duration;

use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{Db, DbError, Transaction};

#[cfg(test)]
mod tests;

/// One day of one agent (`agent_id` `None`: events tied to no agent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyMetric {
    pub day: NaiveDate,
    pub agent_id: Option<Uuid>,
    pub calls: i64,
    pub turns: i64,
    pub handoffs: i64,
    /// Summed call durations.
    pub seconds: f64,
}

/// Totals of a calendar month (in the tenant's days).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthSummary {
    /// First and last day of the month.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub calls: i64,
    pub turns: i64,
    pub handoffs: i64,
    pub seconds: f64,
}

/// What one aggregation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aggregated {
    /// Rows (day × agent) the events of the range make.
    pub rows: i64,
    /// Of those, rows inserted or changed.
    pub changed: i64,
    /// Rows of the range no event supports any more (the tenant's time zone changed).
    pub removed: i64,
}

/// The per-day, per-agent counts of days `$1` to `$2` in time zone `$4` (the tenant's),
/// straight from the events; `$3`: one agent, or NULL for all. The zone is a parameter,
/// not a join with `tenants`: bounds computed from another table's column would be a join
/// filter (the row-level security barrier keeps them off the index), and the scan would
/// read all the tenant's events instead of the range from `events_tenant_at`.
const COUNT_EVENTS: &str = "
    SELECT e.agent_id,
           (e.at AT TIME ZONE $4::text)::date AS day,
           count(*) FILTER (WHERE e.kind = 'call.started') AS calls,
           count(*) FILTER (WHERE e.kind = 'turn.completed') AS turns,
           count(*) FILTER (WHERE e.kind = 'handoff') AS handoffs,
           coalesce(sum(event_seconds(e.data)) FILTER (WHERE e.kind = 'call.ended'), 0)
               AS seconds
    FROM events e
    WHERE e.tenant_id = current_tenant_id()
      AND e.at >= ($1::date::timestamp AT TIME ZONE $4::text)
      AND e.at < (($2::date + 1)::timestamp AT TIME ZONE $4::text)
      AND e.kind IN ('call.started', 'turn.completed', 'handoff', 'call.ended')
      AND ($3::uuid IS NULL OR e.agent_id = $3)
    GROUP BY 1, 2";

/// The transaction's tenant's time zone; `None` when the tenant does not exist.
async fn tenant_zone(tx: &Transaction<'_>) -> Result<Option<String>, DbError> {
    let row = tx
        .query_opt(
            "SELECT timezone FROM tenants WHERE id = current_tenant_id()",
            &[],
        )
        .await?;
    row.map(|r| r.try_get(0)).transpose().map_err(DbError::from)
}

/// Recomputes days `$1`..=`$2`: upserts what the events say, removes rows they no longer
/// support. Both in one statement: they touch disjoint rows.
fn aggregate_sql() -> String {
    format!(
        "WITH counted AS ({COUNT_EVENTS}),
         upserted AS (
             INSERT INTO daily_metrics (tenant_id, agent_id, day, calls, turns, handoffs, seconds)
             SELECT current_tenant_id(), agent_id, day, calls, turns, handoffs, seconds
             FROM counted ORDER BY day, agent_id
             ON CONFLICT ON CONSTRAINT daily_metrics_key DO UPDATE
             SET calls = EXCLUDED.calls, turns = EXCLUDED.turns,
                 handoffs = EXCLUDED.handoffs, seconds = EXCLUDED.seconds
             WHERE (daily_metrics.calls, daily_metrics.turns, daily_metrics.handoffs,
                    daily_metrics.seconds)
                   IS DISTINCT FROM (EXCLUDED.calls, EXCLUDED.turns, EXCLUDED.handoffs,
                                     EXCLUDED.seconds)
             RETURNING 1),
         removed AS (
             DELETE FROM daily_metrics d
             WHERE d.tenant_id = current_tenant_id() AND d.day BETWEEN $1 AND $2
               AND NOT EXISTS (SELECT 1 FROM counted c
                               WHERE c.day = d.day AND c.agent_id IS NOT DISTINCT FROM d.agent_id)
             RETURNING 1)
         SELECT (SELECT count(*) FROM counted), (SELECT count(*) FROM upserted),
                (SELECT count(*) FROM removed)"
    )
}

/// Two aggregations of one tenant queue instead of racing on the same rows (their upserts
/// could lock them in different orders). Key: this constant and the tenant's hash.
const LOCK_CLASS: i32 = 0x6d65_7472; // "metr"

/// Recomputes `tenant`'s daily metrics for days `from` to `to` (inclusive, the tenant's
/// days) from its events. Idempotent.
pub async fn aggregate_days(
    db: &Db,
    tenant: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Aggregated, DbError> {
    if from > to {
        return Ok(Aggregated::default());
    }
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move { aggregate_in(tx, from, to).await })
    })
    .await
}

/// [`aggregate_days`] for yesterday and today in the tenant's time zone: yesterday too, so
/// events written after midnight for the day before (a call that ended at 23:59) count.
/// Events delayed longer (a long database outage) need an [`aggregate_days`] over their days.
pub async fn aggregate_recent(db: &Db, tenant: Uuid) -> Result<Aggregated, DbError> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let today = tx
                .query_opt(
                    "SELECT (now() AT TIME ZONE timezone)::date FROM tenants
                     WHERE id = current_tenant_id()",
                    &[],
                )
                .await?;
            let Some(today) = today else {
                return Ok(Aggregated::default());
            };
            let today: NaiveDate = today.try_get(0)?;
            let yesterday = today.pred_opt().unwrap_or(today);
            aggregate_in(tx, yesterday, today).await
        })
    })
    .await
}

async fn aggregate_in(
    tx: &Transaction<'_>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Aggregated, DbError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_tenant_id()::text))",
        &[&LOCK_CLASS],
    )
    .await?;
    let Some(zone) = tenant_zone(tx).await? else {
        return Ok(Aggregated::default());
    };
    let all_agents: Option<Uuid> = None;
    let row = tx
        .query_one(&aggregate_sql(), &[&from, &to, &all_agents, &zone])
        .await?;
    Ok(Aggregated {
        rows: row.try_get(0)?,
        changed: row.try_get(1)?,
        removed: row.try_get(2)?,
    })
}

/// Every tenant's ids, through `metrics_tenants()` (migrations/0003): the tenants table
/// shows a tenant-scoped transaction only its own row.
pub async fn all_tenants(db: &Db) -> Result<Vec<Uuid>, DbError> {
    db.admin(|tx| {
        Box::pin(async move {
            // As voice_app, which may execute it whatever the login's own grants.
            tx.execute("SELECT set_config('role', 'voice_app', true)", &[])
                .await?;
            let rows = tx.query("SELECT id FROM metrics_tenants()", &[]).await?;
            rows.iter()
                .map(|r| r.try_get(0).map_err(DbError::from))
                .collect()
        })
    })
    .await
}

/// The aggregation worker: every `every` (first run at once), [`aggregate_recent`] for
/// every tenant. A tenant that fails is logged and tried again next time. Runs until the
/// handle is aborted or the runtime stops.
pub fn spawn_aggregator(db: Db, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let tenants = match all_tenants(&db).await {
                Ok(tenants) => tenants,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics aggregation: cannot list tenants");
                    continue;
                }
            };
            let started = std::time::Instant::now();
            let mut failed = 0usize;
            for tenant in &tenants {
                if let Err(e) = aggregate_recent(&db, *tenant).await {
                    failed += 1;
                    tracing::warn!(%tenant, error = %e, "metrics aggregation failed");
                }
            }
            tracing::debug!(
                tenants = tenants.len(),
                failed,
                ms = started.elapsed().as_millis() as u64,
                "metrics aggregated"
            );
        }
    })
}

const READ_DAILY: &str = "
    SELECT day, agent_id, calls, turns, handoffs, seconds FROM daily_metrics
    WHERE tenant_id = current_tenant_id() AND day BETWEEN $1 AND $2
      AND ($3::uuid IS NULL OR agent_id = $3)
    ORDER BY day, agent_id NULLS FIRST";

/// The dashboard's read: days `from` to `to` of the transaction's tenant, one row per day
/// and agent, by day; `agent`: that agent's rows only.
pub async fn daily(
    tx: &Transaction<'_>,
    from: NaiveDate,
    to: NaiveDate,
    agent: Option<Uuid>,
) -> Result<Vec<DailyMetric>, DbError> {
    let statement = tx.prepare_cached(READ_DAILY).await?;
    let rows = tx.query(&statement, &[&from, &to, &agent]).await?;
    rows.iter().map(daily_metric).collect()
}

/// The same rows as [`daily`], computed from the events now instead of read from the
/// aggregates: for checking the aggregation and for comparison in benchmarks.
pub async fn daily_from_events(
    tx: &Transaction<'_>,
    from: NaiveDate,
    to: NaiveDate,
    agent: Option<Uuid>,
) -> Result<Vec<DailyMetric>, DbError> {
    let sql = format!(
        "SELECT day, agent_id, calls, turns, handoffs, seconds FROM ({COUNT_EVENTS}) c
         ORDER BY day, agent_id NULLS FIRST"
    );
    let Some(zone) = tenant_zone(tx).await? else {
        return Ok(Vec::new());
    };
    let rows = tx.query(&sql, &[&from, &to, &agent, &zone]).await?;
    rows.iter().map(daily_metric).collect()
}

fn daily_metric(row: &tokio_postgres::Row) -> Result<DailyMetric, DbError> {
    Ok(DailyMetric {
        day: row.try_get(0)?,
        agent_id: row.try_get(1)?,
        calls: row.try_get(2)?,
        turns: row.try_get(3)?,
        handoffs: row.try_get(4)?,
        seconds: row.try_get(5)?,
    })
}

/// Totals of the calendar month containing `month` (any day of it), from the aggregates;
/// `agent`: that agent's only.
pub async fn month_summary(
    tx: &Transaction<'_>,
    month: NaiveDate,
    agent: Option<Uuid>,
) -> Result<MonthSummary, DbError> {
    let (from, to) = month_bounds(month);
    let statement = tx
        .prepare_cached(
            "SELECT coalesce(sum(calls), 0)::bigint, coalesce(sum(turns), 0)::bigint,
                    coalesce(sum(handoffs), 0)::bigint, coalesce(sum(seconds), 0)
             FROM daily_metrics
             WHERE tenant_id = current_tenant_id() AND day BETWEEN $1 AND $2
               AND ($3::uuid IS NULL OR agent_id = $3)",
        )
        .await?;
    let row = tx.query_one(&statement, &[&from, &to, &agent]).await?;
    Ok(MonthSummary {
        from,
        to,
        calls: row.try_get(0)?,
        turns: row.try_get(1)?,
        handoffs: row.try_get(2)?,
        seconds: row.try_get(3)?,
    })
}

/// First and last day of the month containing `day`.
pub fn month_bounds(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = day.with_day0(0).unwrap_or(day);
    let last = first
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(NaiveDate::MAX);
    (first, last)
}
