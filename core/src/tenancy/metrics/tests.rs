//! Daily metrics against the real PostgreSQL: a synthetic month of events for tenants in
//! different time zones, the expected figures computed here independently (fixed UTC
//! offsets: neither zone has daylight saving time in 2026).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as Span, FixedOffset, TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::db::scratch::ScratchDb;
use crate::tenancy::events::{append, kinds, NewEvent};

const SAO_PAULO: i32 = -3 * 3600;
const TOKYO: i32 = 9 * 3600;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

async fn scratch() -> ScratchDb {
    ScratchDb::create(4)
        .await
        .expect("scratch database (is PostgreSQL running?)")
}

async fn tenant(db: &Db, domain: &str, timezone: &str) -> Uuid {
    let id = db
        .create_tenant(Uuid::new_v4(), domain)
        .await
        .expect("create tenant");
    set_timezone(db, id, timezone).await;
    id
}

async fn set_timezone(db: &Db, tenant: Uuid, timezone: &str) {
    let timezone = timezone.to_string();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute(
                "UPDATE tenants SET timezone = $1 WHERE id = current_tenant_id()",
                &[&timezone],
            )
            .await?;
            Ok::<(), DbError>(())
        })
    })
    .await
    .expect("set timezone");
}

async fn agent(db: &Db, tenant: Uuid, name: &str) -> Uuid {
    let name = name.to_string();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let row = tx
                .query_one(
                    "INSERT INTO agents (tenant_id, name) VALUES ($1, $2) RETURNING id",
                    &[&tenant, &name],
                )
                .await?;
            Ok::<Uuid, DbError>(row.try_get(0)?)
        })
    })
    .await
    .expect("create agent")
}

async fn write(db: &Db, tenant: Uuid, events: Vec<NewEvent>) {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            for event in &events {
                append(tx, event).await?;
            }
            Ok::<(), crate::tenancy::events::EventError>(())
        })
    })
    .await
    .expect("write events");
}

async fn read_daily(
    db: &Db,
    tenant: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    agent: Option<Uuid>,
) -> Vec<DailyMetric> {
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move { daily(tx, from, to, agent).await })
    })
    .await
    .expect("read daily metrics")
}

/// A small deterministic generator (no dependency, same month every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Calls spread over 2026-10-30 .. 2026-12-02 UTC (past both ends of November in either
/// zone), each: started, turns, maybe a handoff, ended with its seconds (whole or half, so
/// sums are exact in floating point).
fn synthetic_month(tenant: Uuid, agents: &[Option<Uuid>], seed: u64) -> Vec<NewEvent> {
    let mut rng = Lcg(seed);
    let start = utc("2026-10-30T00:00:00Z");
    let span_s = 33 * 86_400;
    let mut events = Vec::new();
    for call in 0..400 {
        let mut at = start + Span::seconds(rng.below(span_s) as i64);
        let agent = agents[rng.below(agents.len() as u64) as usize];
        let call_id = format!("{tenant}-{call}");
        let event = |kind: &str, at: DateTime<Utc>, data: Value| NewEvent {
            tenant_id: tenant,
            agent_id: agent,
            call_id: Some(call_id.clone()),
            kind: kind.to_string(),
            at,
            data,
        };
        events.push(event(kinds::CALL_STARTED, at, json!({})));
        for _ in 0..rng.below(6) {
            at += Span::seconds(5 + rng.below(600) as i64);
            events.push(event(
                kinds::TURN_COMPLETED,
                at,
                json!({"latency_ms": rng.below(900)}),
            ));
        }
        if rng.below(5) == 0 {
            events.push(event(kinds::HANDOFF, at, json!({"reason": "human"})));
        }
        if rng.below(7) == 0 {
            // Not a counted kind: must not make rows.
            events.push(event("tool.called", at, json!({"name": "lookup"})));
        }
        let seconds = rng.below(1200) as f64 / 2.0;
        at += Span::seconds(rng.below(60) as i64);
        events.push(event(
            kinds::CALL_ENDED,
            at,
            json!({"seconds": seconds, "reason": "hangup"}),
        ));
    }
    events
}

type Key = (NaiveDate, Option<Uuid>);

/// What the aggregation must find for days `from`..=`to` at a fixed UTC offset.
fn expected(
    events: &[NewEvent],
    offset_s: i32,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<DailyMetric> {
    let zone = FixedOffset::east_opt(offset_s).expect("offset");
    let mut by_key: BTreeMap<Key, DailyMetric> = BTreeMap::new();
    for e in events {
        let day = zone.from_utc_datetime(&e.at.naive_utc()).date_naive();
        if day < from || day > to {
            continue;
        }
        let counted = [
            kinds::CALL_STARTED,
            kinds::TURN_COMPLETED,
            kinds::HANDOFF,
            kinds::CALL_ENDED,
        ];
        if !counted.contains(&e.kind.as_str()) {
            continue;
        }
        let row = by_key
            .entry((day, e.agent_id))
            .or_insert_with(|| DailyMetric {
                day,
                agent_id: e.agent_id,
                calls: 0,
                turns: 0,
                handoffs: 0,
                seconds: 0.0,
            });
        match e.kind.as_str() {
            kinds::CALL_STARTED => row.calls += 1,
            kinds::TURN_COMPLETED => row.turns += 1,
            kinds::HANDOFF => row.handoffs += 1,
            _ => row.seconds += e.data["seconds"].as_f64().unwrap_or(0.0),
        }
    }
    // BTreeMap orders None first, then agents by id: the order `daily` returns.
    by_key.into_values().collect()
}

struct Month {
    db_scratch: ScratchDb,
    a: Uuid,
    b: Uuid,
    a_agents: [Uuid; 3],
    b_agent: Uuid,
    b_night: Uuid,
    a_events: Vec<NewEvent>,
    b_events: Vec<NewEvent>,
}

const NOV_1: (i32, u32, u32) = (2026, 11, 1);

/// Tenant A in São Paulo (agents one, two, night), B in Tokyo (one, night); a month of
/// calls each, plus events either side of local midnight on the night agents.
async fn month() -> Month {
    let scratch = scratch().await;
    let db = scratch.db.clone();
    let a = tenant(&db, "a.example", "America/Sao_Paulo").await;
    let b = tenant(&db, "b.example", "Asia/Tokyo").await;
    let a_agents = [
        agent(&db, a, "one").await,
        agent(&db, a, "two").await,
        agent(&db, a, "night").await,
    ];
    let b_agent = agent(&db, b, "one").await;
    let b_night = agent(&db, b, "night").await;

    let mut a_events = synthetic_month(a, &[Some(a_agents[0]), Some(a_agents[1]), None], 7);
    let mut b_events = synthetic_month(b, &[Some(b_agent), None], 11);
    // São Paulo midnight is 03:00 UTC: 02:30 is still the 9th there, 03:30 the 10th.
    for at in ["2026-11-10T02:30:00Z", "2026-11-10T03:30:00Z"] {
        a_events.push(
            NewEvent::now(a, kinds::CALL_STARTED)
                .agent(a_agents[2])
                .at(utc(at)),
        );
    }
    // Tokyo midnight is 15:00 UTC the day before.
    for at in ["2026-11-10T14:59:59Z", "2026-11-10T15:00:00Z"] {
        b_events.push(
            NewEvent::now(b, kinds::CALL_STARTED)
                .agent(b_night)
                .at(utc(at)),
        );
    }
    write(&db, a, a_events.clone()).await;
    write(&db, b, b_events.clone()).await;
    Month {
        db_scratch: scratch,
        a,
        b,
        a_agents,
        b_agent,
        b_night,
        a_events,
        b_events,
    }
}

fn november() -> (NaiveDate, NaiveDate) {
    (date(NOV_1.0, NOV_1.1, NOV_1.2), date(2026, 11, 30))
}

#[tokio::test]
async fn a_month_aggregates_to_the_hand_computed_figures_in_each_tenants_days() {
    let m = month().await;
    let db = &m.db_scratch.db;
    let (from, to) = november();

    let first = aggregate_days(db, m.a, from, to)
        .await
        .expect("aggregate A");
    aggregate_days(db, m.b, from, to)
        .await
        .expect("aggregate B");

    let want_a = expected(&m.a_events, SAO_PAULO, from, to);
    let want_b = expected(&m.b_events, TOKYO, from, to);
    assert!(want_a.len() > 60, "the month should have many rows");
    assert_eq!(read_daily(db, m.a, from, to, None).await, want_a);
    assert_eq!(read_daily(db, m.b, from, to, None).await, want_b);
    assert_eq!(first.rows, want_a.len() as i64);
    assert_eq!(first.changed, want_a.len() as i64);

    // Events either side of local midnight land on the tenant's day.
    let night = read_daily(db, m.a, from, to, Some(m.a_agents[2])).await;
    let night_days: Vec<(NaiveDate, i64)> = night.iter().map(|r| (r.day, r.calls)).collect();
    assert_eq!(
        night_days,
        vec![(date(2026, 11, 9), 1), (date(2026, 11, 10), 1)]
    );
    let b_night = read_daily(db, m.b, from, to, Some(m.b_night)).await;
    let b_night_days: Vec<(NaiveDate, i64)> = b_night.iter().map(|r| (r.day, r.calls)).collect();
    assert_eq!(
        b_night_days,
        vec![(date(2026, 11, 10), 1), (date(2026, 11, 11), 1)]
    );

    // The same figures straight from the events.
    let live = db
        .with_tenant(m.a, move |tx| {
            Box::pin(async move { daily_from_events(tx, from, to, None).await })
        })
        .await
        .expect("live figures");
    assert_eq!(live, want_a);
}

#[tokio::test]
async fn aggregating_again_changes_nothing_and_doubles_nothing() {
    let m = month().await;
    let db = &m.db_scratch.db;
    let (from, to) = november();
    aggregate_days(db, m.a, from, to).await.expect("aggregate");
    let before = read_daily(db, m.a, from, to, None).await;

    let again = aggregate_days(db, m.a, from, to).await.expect("again");
    assert_eq!(again.changed, 0);
    assert_eq!(again.removed, 0);
    assert_eq!(again.rows, before.len() as i64);
    // Overlapping ranges too.
    aggregate_days(db, m.a, date(2026, 11, 20), date(2026, 12, 1))
        .await
        .expect("overlap");
    assert_eq!(read_daily(db, m.a, from, to, None).await, before);
    assert_eq!(before, expected(&m.a_events, SAO_PAULO, from, to));

    let summary = db
        .with_tenant(m.a, move |tx| {
            Box::pin(async move { month_summary(tx, date(2026, 11, 17), None).await })
        })
        .await
        .expect("month summary");
    assert_eq!((summary.from, summary.to), (from, to));
    assert_eq!(summary.calls, before.iter().map(|r| r.calls).sum::<i64>());
    assert_eq!(summary.turns, before.iter().map(|r| r.turns).sum::<i64>());
    assert_eq!(
        summary.handoffs,
        before.iter().map(|r| r.handoffs).sum::<i64>()
    );
    assert_eq!(
        summary.seconds,
        before.iter().map(|r| r.seconds).sum::<f64>()
    );
}

#[tokio::test]
async fn agents_are_split_and_other_tenants_never_counted() {
    let m = month().await;
    let db = &m.db_scratch.db;
    let (from, to) = november();
    aggregate_days(db, m.a, from, to)
        .await
        .expect("aggregate A");
    aggregate_days(db, m.b, from, to)
        .await
        .expect("aggregate B");
    let all_a = expected(&m.a_events, SAO_PAULO, from, to);

    for agent in m.a_agents {
        let want: Vec<DailyMetric> = all_a
            .iter()
            .filter(|r| r.agent_id == Some(agent))
            .cloned()
            .collect();
        assert!(!want.is_empty());
        assert_eq!(read_daily(db, m.a, from, to, Some(agent)).await, want);
    }
    // Rows without an agent exist, and only from A's events.
    assert!(all_a.iter().any(|r| r.agent_id.is_none()));

    // B's agent seen from A: nothing. A's rows in the table (read past row-level security)
    // add up to A's events alone.
    assert!(read_daily(db, m.a, from, to, Some(m.b_agent))
        .await
        .is_empty());
    let a = m.a;
    let (calls, turns): (i64, i64) = db
        .admin(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT sum(calls)::bigint, sum(turns)::bigint FROM daily_metrics
                         WHERE tenant_id = $1",
                        &[&a],
                    )
                    .await?;
                Ok::<_, DbError>((row.try_get(0)?, row.try_get(1)?))
            })
        })
        .await
        .expect("admin totals");
    assert_eq!(calls, all_a.iter().map(|r| r.calls).sum::<i64>());
    assert_eq!(turns, all_a.iter().map(|r| r.turns).sum::<i64>());
}

#[tokio::test]
async fn a_new_time_zone_moves_the_days_and_removes_stale_rows() {
    let m = month().await;
    let db = &m.db_scratch.db;
    let (from, to) = november();
    aggregate_days(db, m.a, from, to).await.expect("aggregate");

    set_timezone(db, m.a, "UTC").await;
    let again = aggregate_days(db, m.a, from, to)
        .await
        .expect("aggregate in UTC");
    assert!(again.removed >= 1, "{again:?}");
    assert_eq!(
        read_daily(db, m.a, from, to, None).await,
        expected(&m.a_events, 0, from, to)
    );
    // Both night events are on the 10th in UTC.
    let night = read_daily(db, m.a, from, to, Some(m.a_agents[2])).await;
    assert_eq!(night.len(), 1);
    assert_eq!((night[0].day, night[0].calls), (date(2026, 11, 10), 2));
}

#[tokio::test]
async fn seconds_that_are_not_a_sensible_number_count_as_zero() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "c.example", "UTC").await;
    let at = utc("2026-11-05T12:00:00Z");
    let datas = [
        json!({"seconds": 10}),
        json!({"seconds": "12.5"}),
        json!({"seconds": " 7 "}),
        json!({"seconds": "abc"}),
        json!({"seconds": -5}),
        json!({"seconds": true}),
        json!({"seconds": null}),
        json!({"seconds": {"value": 3}}),
        json!({"seconds": 1e12}),
        json!({}),
    ];
    let events = datas
        .iter()
        .map(|d| NewEvent::now(t, kinds::CALL_ENDED).at(at).data(d.clone()))
        .collect();
    write(db, t, events).await;
    // A number no float holds, written as JSON text.
    db.with_tenant(t, move |tx| {
        Box::pin(async move {
            tx.execute(
                "INSERT INTO events (tenant_id, kind, at, data)
                 VALUES ($1, 'call.ended', $2, '{\"seconds\": 1e400}')",
                &[&t, &at],
            )
            .await?;
            Ok::<(), DbError>(())
        })
    })
    .await
    .expect("insert huge seconds");

    let day = date(2026, 11, 5);
    aggregate_days(db, t, day, day).await.expect("aggregate");
    let rows = read_daily(db, t, day, day, None).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].seconds, 29.5);
    assert_eq!((rows[0].calls, rows[0].turns), (0, 0));
}

#[tokio::test]
async fn recent_days_and_the_periodic_aggregator() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "d.example", "UTC").await;
    let other = tenant(db, "e.example", "Asia/Tokyo").await;
    let a = agent(db, t, "one").await;
    write(db, t, vec![NewEvent::now(t, kinds::CALL_STARTED).agent(a)]).await;
    let today = Utc::now().date_naive();

    let done = aggregate_recent(db, t).await.expect("aggregate recent");
    assert_eq!(done.rows, 1);
    let rows = read_daily(db, t, today, today, None).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].calls, 1);
    // A tenant that does not exist: nothing to do, no error.
    assert_eq!(
        aggregate_recent(db, Uuid::new_v4())
            .await
            .expect("unknown tenant"),
        Aggregated::default()
    );

    let mut tenants = all_tenants(db).await.expect("list tenants");
    tenants.sort();
    let mut want = vec![t, other];
    want.sort();
    assert_eq!(tenants, want);

    // The worker picks up a new event by itself.
    write(db, t, vec![NewEvent::now(t, kinds::CALL_STARTED).agent(a)]).await;
    let worker = spawn_aggregator(db.clone(), Duration::from_millis(100));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = read_daily(db, t, today, today, Some(a)).await;
        if rows.first().map(|r| r.calls) == Some(2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "aggregator never counted the new event: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.abort();
}

#[test]
fn month_bounds_cover_the_calendar_month() {
    assert_eq!(
        month_bounds(date(2026, 2, 14)),
        (date(2026, 2, 1), date(2026, 2, 28))
    );
    assert_eq!(
        month_bounds(date(2028, 2, 29)),
        (date(2028, 2, 1), date(2028, 2, 29))
    );
    assert_eq!(
        month_bounds(date(2026, 12, 31)),
        (date(2026, 12, 1), date(2026, 12, 31))
    );
}
