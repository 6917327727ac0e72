//! `voice-sim metrics-bench`: the event log and daily metrics at volume (issue 7, seed 002
//! ADR-003: one tenant's month on the dashboard in ≤ 50 ms with 1 M events).
//!
//! In a scratch database of its own (dropped at the end): tenants in several time zones,
//! a month of calls as events (most seeded by one INSERT … SELECT generate_series per chunk,
//! some through the EventSink as the services write them), then the aggregation, then the
//! dashboard read of one tenant's month many times, against the same month computed from
//! the events directly. Prints figures; the last stdout line is JSON.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde_json::json;
use uuid::Uuid;
use voice_core::db::scratch::ScratchDb;
use voice_core::db::{Db, DbError};
use voice_core::tenancy::events::{kinds, EventSink, NewEvent};
use voice_core::tenancy::metrics::{self, DailyMetric};

/// Zones the tenants cycle through: both sides of UTC, with and without daylight saving.
const ZONES: [&str; 8] = [
    "America/Sao_Paulo",
    "America/Manaus",
    "UTC",
    "Europe/Lisbon",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Noronha",
];

/// Events seeded per statement.
const CHUNK: i64 = 100_000;

#[derive(Args, Debug)]
pub struct MetricsBenchCmd {
    /// Events in all (seeded plus written through the EventSink).
    #[arg(long, default_value_t = 1_000_000)]
    events: i64,
    /// Of those, written through the EventSink (batched inserts, as the services do).
    #[arg(long, default_value_t = 50_000)]
    sink_events: i64,
    #[arg(long, default_value_t = 20)]
    tenants: usize,
    /// Agents per tenant (one call in seven has no agent).
    #[arg(long, default_value_t = 5)]
    agents: usize,
    /// Dashboard reads timed.
    #[arg(long, default_value_t = 300)]
    reads: usize,
    /// Reads of the same month straight from the events, timed.
    #[arg(long, default_value_t = 30)]
    raw_reads: usize,
    /// PostgreSQL server to create the scratch database on (default: $TEST_DATABASE_URL,
    /// else postgres://postgres@127.0.0.1:5432/postgres). Needs CREATEDB.
    #[arg(long)]
    database_url: Option<String>,
}

/// November 2026: the month the events fill (UTC) and the dashboard reads (local days).
fn month() -> (NaiveDate, NaiveDate, DateTime<Utc>) {
    let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
    let to = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default();
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    (from, to, start)
}

const MONTH_SECONDS: f64 = 30.0 * 86_400.0;

impl MetricsBenchCmd {
    pub async fn run(self) -> anyhow::Result<()> {
        if self.tenants == 0 || self.agents == 0 || self.events < self.sink_events {
            bail!("need at least one tenant and agent, and --sink-events ≤ --events");
        }
        if let Some(url) = &self.database_url {
            // ScratchDb reads the server from the environment; nothing else runs yet.
            std::env::set_var("TEST_DATABASE_URL", url);
        }
        let scratch = ScratchDb::create(8)
            .await
            .context("create the scratch database")?;
        let db = scratch.db.clone();
        println!("metrics-bench: scratch database {}", db.target());

        let (tenants, agents) = self.create_tenants(&db).await?;
        let seeded = self.events - self.sink_events;
        let seed_time = self.seed(&db, &tenants, &agents, seeded).await?;
        let sink_time = self.through_sink(&db, &tenants, &agents).await?;
        analyze(&db).await?;
        let size = table_size(&db).await?;
        println!(
            "events: {} ({} seeded in {:.1} s = {:.0}/s; {} through EventSink in {:.2} s = {:.0}/s); table + indexes {size}",
            self.events,
            seeded,
            seed_time.as_secs_f64(),
            seeded as f64 / seed_time.as_secs_f64().max(1e-9),
            self.sink_events,
            sink_time.as_secs_f64(),
            self.sink_events as f64 / sink_time.as_secs_f64().max(1e-9),
        );

        let (from, to, _) = month();
        // A day either side: the month in every zone.
        let (wide_from, wide_to) = (from.pred_opt().unwrap_or(from), to.succ_opt().unwrap_or(to));
        let full = aggregate_all(&db, &tenants, wide_from, wide_to).await?;
        println!(
            "aggregation, whole month, {} tenants: {:.0} ms in all ({:.0} ms per tenant, max {:.0}); {} rows",
            tenants.len(),
            ms(full.total),
            ms(full.total) / tenants.len() as f64,
            ms(full.max),
            full.rows
        );
        let again = aggregate_all(&db, &tenants, wide_from, wide_to).await?;
        println!(
            "aggregation again (nothing changes): {:.0} ms in all; {} rows changed",
            ms(again.total),
            again.changed
        );
        let recent = aggregate_all(&db, &tenants, to.pred_opt().unwrap_or(to), to).await?;
        println!(
            "aggregation of two days (what the periodic job does): {:.1} ms per tenant, max {:.1}",
            ms(recent.total) / tenants.len() as f64,
            ms(recent.max)
        );

        analyze(&db).await?;

        let tenant = tenants[0];
        let agent = agents[0];
        let (dashboard, rows) =
            time_reads(self.reads, || read_daily(&db, tenant, from, to, None)).await?;
        let (by_agent, _) = time_reads(self.reads, || {
            read_daily(&db, tenant, from, to, Some(agent))
        })
        .await?;
        let (summary, _) = time_reads(self.reads, || read_summary(&db, tenant, from)).await?;
        let (raw, raw_rows) =
            time_reads(self.raw_reads, || read_raw(&db, tenant, from, to)).await?;
        let same = same_figures(&rows, &raw_rows);
        let tenant_events = tenant_event_count(&db, tenant).await?;

        println!(
            "one tenant's month ({tenant_events} events, {} daily rows), {} reads each, ms:",
            rows.len(),
            self.reads
        );
        println!("  dashboard (daily_metrics, all agents)  {dashboard}");
        println!("  dashboard (daily_metrics, one agent)   {by_agent}");
        println!("  month totals (daily_metrics)           {summary}");
        println!(
            "  raw from events ({} reads)             {raw}",
            self.raw_reads
        );
        println!(
            "  aggregated rows equal the raw computation: {}",
            if same { "yes" } else { "NO" }
        );
        println!(
            "target: one tenant's month ≤ 50 ms: {} (p95 {:.2} ms)",
            if dashboard.p95 <= 50.0 {
                "met"
            } else {
                "MISSED"
            },
            dashboard.p95
        );
        println!(
            "{}",
            json!({
                "events": self.events,
                "tenants": tenants.len(),
                "agents_per_tenant": self.agents,
                "seed_events_per_s": seeded as f64 / seed_time.as_secs_f64().max(1e-9),
                "sink_events_per_s": self.sink_events as f64 / sink_time.as_secs_f64().max(1e-9),
                "aggregate_month_all_tenants_ms": ms(full.total),
                "aggregate_two_days_per_tenant_ms": ms(recent.total) / tenants.len() as f64,
                "tenant_month_events": tenant_events,
                "dashboard_ms": dashboard.to_json(),
                "dashboard_one_agent_ms": by_agent.to_json(),
                "month_summary_ms": summary.to_json(),
                "raw_from_events_ms": raw.to_json(),
                "aggregates_match_raw": same,
            })
        );
        drop(db);
        drop(scratch);
        Ok(())
    }

    async fn create_tenants(&self, db: &Db) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
        let mut tenants = Vec::with_capacity(self.tenants);
        let mut agents = Vec::with_capacity(self.tenants * self.agents);
        for i in 0..self.tenants {
            let tenant = db
                .create_tenant(Uuid::new_v4(), &format!("t{i}.bench.example"))
                .await?;
            let zone = ZONES[i % ZONES.len()];
            let count = self.agents;
            let created: Vec<Uuid> = db
                .with_tenant(tenant, move |tx| {
                    Box::pin(async move {
                        tx.execute(
                            "UPDATE tenants SET timezone = $1 WHERE id = current_tenant_id()",
                            &[&zone],
                        )
                        .await?;
                        let mut ids = Vec::with_capacity(count);
                        for a in 0..count {
                            let row = tx
                                .query_one(
                                    "INSERT INTO agents (tenant_id, name) VALUES ($1, $2)
                                     RETURNING id",
                                    &[&tenant, &format!("agent {a}")],
                                )
                                .await?;
                            ids.push(row.try_get(0)?);
                        }
                        Ok::<_, DbError>(ids)
                    })
                })
                .await?;
            tenants.push(tenant);
            agents.extend(created);
        }
        Ok((tenants, agents))
    }

    /// `count` events by SQL, in chunks. Event `g` belongs to tenant `g % T`; ten
    /// consecutive events of a tenant make a call (started, seven or eight turns, maybe a
    /// handoff, ended with 30..330 seconds); times spread evenly over the month.
    async fn seed(
        &self,
        db: &Db,
        tenants: &[Uuid],
        agents: &[Uuid],
        count: i64,
    ) -> anyhow::Result<Duration> {
        let (_, _, start) = month();
        let started = Instant::now();
        let mut lo = 0i64;
        while lo < count {
            let hi = (lo + CHUNK).min(count);
            let (tenants, agents) = (tenants.to_vec(), agents.to_vec());
            let per_tenant = self.agents as i32;
            let tenant_count = tenants.len() as i64;
            db.admin(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        "INSERT INTO events (tenant_id, agent_id, call_id, kind, at, data)
                         SELECT ($1::uuid[])[x.t + 1],
                                CASE WHEN x.c % 7 = 6 THEN NULL
                                     ELSE ($2::uuid[])[x.t * $3 + (x.c % $3)::int + 1] END,
                                'bench-' || x.t || '-' || x.c,
                                CASE WHEN x.p = 0 THEN 'call.started'
                                     WHEN x.p = 9 THEN 'call.ended'
                                     WHEN x.p = 8 AND x.c % 4 = 0 THEN 'handoff'
                                     ELSE 'turn.completed' END,
                                $4::timestamptz
                                    + make_interval(secs => g::float8 * $5::float8 / $6::float8),
                                CASE WHEN x.p = 9
                                         THEN jsonb_build_object('seconds', 30 + x.c % 300,
                                                                 'reason', 'hangup')
                                     WHEN x.p = 0 THEN '{}'::jsonb
                                     ELSE jsonb_build_object('latency_ms', 300 + g % 500) END
                         FROM generate_series($7::bigint, $8::bigint - 1) AS g,
                              LATERAL (SELECT (g % $9)::int AS t, g / ($9 * 10) AS c,
                                              ((g / $9) % 10)::int AS p) AS x",
                        &[
                            &tenants,
                            &agents,
                            &per_tenant,
                            &start,
                            &MONTH_SECONDS,
                            &(count as f64),
                            &lo,
                            &hi,
                            &tenant_count,
                        ],
                    )
                    .await?;
                    Ok::<(), DbError>(())
                })
            })
            .await
            .context("seed events")?;
            lo = hi;
            eprintln!(
                "  seeded {hi}/{count} events ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(started.elapsed())
    }

    /// `sink_events` through an EventSink (calls of ten events, as in `seed`, at times
    /// spread over the month), timed from the first emit to the end of flush.
    async fn through_sink(
        &self,
        db: &Db,
        tenants: &[Uuid],
        agents: &[Uuid],
    ) -> anyhow::Result<Duration> {
        let (_, _, start) = month();
        let sink = EventSink::start(db.clone());
        let started = Instant::now();
        let count = self.sink_events;
        for g in 0..count {
            let t = (g as usize) % tenants.len();
            let c = g as usize / (tenants.len() * 10);
            let p = (g as usize / tenants.len()) % 10;
            let kind = match p {
                0 => kinds::CALL_STARTED,
                9 => kinds::CALL_ENDED,
                _ => kinds::TURN_COMPLETED,
            };
            let offset = (g as f64 + 0.5) * MONTH_SECONDS / count as f64;
            let mut event = NewEvent::now(tenants[t], kind)
                .agent(agents[t * self.agents + c % self.agents])
                .call(format!("sink-{t}-{c}"))
                .at(start + chrono::Duration::milliseconds((offset * 1000.0) as i64));
            if p == 9 {
                event = event.data(json!({"seconds": 60, "reason": "hangup"}));
            }
            sink.emit(event);
            // Let the writer run now and then, as a service's other tasks would.
            if g % 10_000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        sink.flush().await;
        let elapsed = started.elapsed();
        let stats = sink.stats();
        if stats.written != count as u64 {
            bail!(
                "the EventSink wrote {} of {count} events: {stats:?}",
                stats.written
            );
        }
        Ok(elapsed)
    }
}

struct AggregateRun {
    total: Duration,
    max: Duration,
    rows: i64,
    changed: i64,
}

async fn aggregate_all(
    db: &Db,
    tenants: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<AggregateRun> {
    let started = Instant::now();
    let mut run = AggregateRun {
        total: Duration::ZERO,
        max: Duration::ZERO,
        rows: 0,
        changed: 0,
    };
    for &tenant in tenants {
        let one = Instant::now();
        let done = metrics::aggregate_days(db, tenant, from, to).await?;
        run.max = run.max.max(one.elapsed());
        run.rows += done.rows;
        run.changed += done.changed;
    }
    run.total = started.elapsed();
    Ok(run)
}

async fn read_daily(
    db: &Db,
    tenant: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    agent: Option<Uuid>,
) -> anyhow::Result<Vec<DailyMetric>> {
    Ok(db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move { metrics::daily(tx, from, to, agent).await })
        })
        .await?)
}

async fn read_summary(db: &Db, tenant: Uuid, month: NaiveDate) -> anyhow::Result<Vec<DailyMetric>> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move { metrics::month_summary(tx, month, None).await })
    })
    .await?;
    Ok(Vec::new())
}

async fn read_raw(
    db: &Db,
    tenant: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Vec<DailyMetric>> {
    Ok(db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move { metrics::daily_from_events(tx, from, to, None).await })
        })
        .await?)
}

/// Percentiles of timed reads, in ms.
struct Timings {
    p50: f64,
    p95: f64,
    max: f64,
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:7.2}  p95 {:7.2}  max {:7.2}",
            self.p50, self.p95, self.max
        )
    }
}

impl Timings {
    fn to_json(&self) -> serde_json::Value {
        json!({"p50": self.p50, "p95": self.p95, "max": self.max})
    }
}

/// Runs `read` `n` times one after another (one warm-up first); each timing covers the
/// whole transaction: a pooled connection, BEGIN, the tenant scope, the query, COMMIT.
async fn time_reads<F, Fut>(n: usize, mut read: F) -> anyhow::Result<(Timings, Vec<DailyMetric>)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<DailyMetric>>>,
{
    let rows = read().await?;
    let mut ms_each = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        let started = Instant::now();
        read().await?;
        ms_each.push(ms(started.elapsed()));
    }
    ms_each.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p / 100.0) * ms_each.len() as f64).ceil() as usize;
        ms_each[i.clamp(1, ms_each.len()) - 1]
    };
    Ok((
        Timings {
            p50: rank(50.0),
            p95: rank(95.0),
            max: rank(100.0),
        },
        rows,
    ))
}

fn same_figures(a: &[DailyMetric], b: &[DailyMetric]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.day, x.agent_id, x.calls, x.turns, x.handoffs)
                == (y.day, y.agent_id, y.calls, y.turns, y.handoffs)
                && (x.seconds - y.seconds).abs() < 1e-6
        })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn analyze(db: &Db) -> anyhow::Result<()> {
    db.admin(|tx| {
        Box::pin(async move {
            tx.batch_execute("ANALYZE events; ANALYZE daily_metrics")
                .await?;
            Ok::<(), DbError>(())
        })
    })
    .await?;
    Ok(())
}

async fn table_size(db: &Db) -> anyhow::Result<String> {
    Ok(db
        .admin(|tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT pg_size_pretty(pg_total_relation_size('events'))",
                        &[],
                    )
                    .await?;
                Ok::<String, DbError>(row.try_get(0)?)
            })
        })
        .await?)
}

async fn tenant_event_count(db: &Db, tenant: Uuid) -> anyhow::Result<i64> {
    Ok(db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                let row = tx.query_one("SELECT count(*) FROM events", &[]).await?;
                Ok::<i64, DbError>(row.try_get(0)?)
            })
        })
        .await?)
}
