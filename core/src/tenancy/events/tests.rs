//! The event log against the real PostgreSQL (a scratch database per test).

use std::str::FromStr;
use std::time::Duration;

use serde_json::json;
use tokio_postgres::NoTls;

use super::*;
use crate::db::scratch::ScratchDb;

async fn scratch() -> ScratchDb {
    ScratchDb::create(4)
        .await
        .expect("scratch database (is PostgreSQL running?)")
}

async fn tenant_with_agent(db: &Db, domain: &str) -> (Uuid, Uuid) {
    let tenant = db
        .create_tenant(Uuid::new_v4(), domain)
        .await
        .expect("create tenant");
    let agent = db
        .with_tenant(tenant, move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "INSERT INTO agents (tenant_id, name) VALUES ($1, 'main') RETURNING id",
                        &[&tenant],
                    )
                    .await?;
                Ok::<Uuid, DbError>(row.try_get(0)?)
            })
        })
        .await
        .expect("create agent");
    (tenant, agent)
}

/// The call ids of `tenant`'s events, in insertion order (read past row-level security).
async fn call_ids(db: &Db, tenant: Uuid) -> Vec<Option<String>> {
    db.admin(move |tx| {
        Box::pin(async move {
            let rows = tx
                .query(
                    "SELECT call_id FROM events WHERE tenant_id = $1 ORDER BY id",
                    &[&tenant],
                )
                .await?;
            Ok::<_, DbError>(rows.iter().map(|r| r.get(0)).collect())
        })
    })
    .await
    .expect("read events")
}

/// A statement on the server's maintenance database (for taking the scratch one away).
async fn on_server(sql: &str) {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let config = tokio_postgres::Config::from_str(&url).expect("TEST_DATABASE_URL");
    let (client, connection) = config.connect(NoTls).await.expect("connect to the server");
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = task.await;
}

fn database_name(scratch: &ScratchDb) -> String {
    tokio_postgres::Config::from_str(&scratch.url)
        .expect("scratch url")
        .get_dbname()
        .expect("scratch dbname")
        .to_string()
}

#[test]
fn kinds_follow_the_tables_pattern() {
    for good in [
        "call.started",
        "turn.completed",
        "handoff",
        "call.ended",
        "a",
        "tool_call.x9",
    ] {
        assert!(valid_kind(good), "{good}");
    }
    for bad in [
        "",
        "Call.started",
        "call.",
        ".call",
        "call..ended",
        "9call",
        "call.9x",
        "call-ended",
        "call ended",
        "chamada.iniciada\u{e1}",
        "_call",
    ] {
        assert!(!valid_kind(bad), "{bad}");
    }
    let not_object = NewEvent::now(Uuid::nil(), "call.started").data(json!([1]));
    assert!(matches!(not_object.validate(), Err(EventError::Invalid(_))));
}

#[tokio::test]
async fn the_sink_writes_everything_it_was_given_then_flush_returns() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let (a, agent_a) = tenant_with_agent(db, "a.example").await;
    let (b, _) = tenant_with_agent(db, "b.example").await;
    let sink = EventSink::start(db.clone());

    // More than two batches, the tenants interleaved.
    for i in 0..1_200 {
        let (tenant, agent) = if i % 3 == 0 {
            (b, None)
        } else {
            (a, Some(agent_a))
        };
        let mut event = NewEvent::now(tenant, kinds::TURN_COMPLETED)
            .call(format!("call-{i}"))
            .data(json!({"latency_ms": i}));
        event.agent_id = agent;
        sink.emit(event);
    }
    sink.flush().await;

    let written_a = call_ids(db, a).await;
    let written_b = call_ids(db, b).await;
    assert_eq!(written_a.len(), 800);
    assert_eq!(written_b.len(), 400);
    // Emit order is kept within a tenant.
    let expected_a: Vec<Option<String>> = (0..1_200)
        .filter(|i| i % 3 != 0)
        .map(|i| Some(format!("call-{i}")))
        .collect();
    assert_eq!(written_a, expected_a);
    let stats = sink.stats();
    assert_eq!(stats.queued, 1_200);
    assert_eq!(stats.written, 1_200);
    assert_eq!(stats.rejected + stats.dropped_full + stats.failed_writes, 0);

    // The row holds what was emitted.
    let row = db
        .admin(move |tx| {
            Box::pin(async move {
                tx.query_one(
                    "SELECT agent_id, kind, data FROM events WHERE call_id = 'call-1'",
                    &[],
                )
                .await
                .map_err(DbError::from)
            })
        })
        .await
        .expect("read one event");
    assert_eq!(row.get::<_, Option<Uuid>>(0), Some(agent_a));
    assert_eq!(row.get::<_, String>(1), "turn.completed");
    assert_eq!(row.get::<_, Value>(2), json!({"latency_ms": 1}));
}

#[tokio::test]
async fn dropping_the_last_sink_still_writes_what_was_queued() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let (a, _) = tenant_with_agent(db, "a.example").await;
    let sink = EventSink::start(db.clone());
    for i in 0..10 {
        sink.emit(NewEvent::now(a, kinds::CALL_STARTED).call(format!("c{i}")));
    }
    drop(sink);
    let deadline = Instant::now() + Duration::from_secs(20);
    while call_ids(db, a).await.len() < 10 {
        assert!(
            Instant::now() < deadline,
            "queued events not written after drop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unwritable_events_are_dropped_and_do_not_hold_up_the_rest() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let (a, agent_a) = tenant_with_agent(db, "a.example").await;
    let (_b, agent_b) = tenant_with_agent(db, "b.example").await;
    let sink = EventSink::start(db.clone());

    sink.emit(NewEvent::now(a, "call.started").call("good-1"));
    // Refused before the queue: kind and data shape.
    sink.emit(NewEvent::now(a, "Call Started").call("bad-kind"));
    sink.emit(
        NewEvent::now(a, "call.started")
            .call("bad-data")
            .data(json!("text")),
    );
    // Refused by the database, in the same batch as good events.
    sink.emit(
        NewEvent::now(a, "call.started")
            .agent(agent_b)
            .call("foreign-agent"),
    );
    sink.emit(NewEvent::now(a, "call.started").call("nul\0byte"));
    sink.emit(
        NewEvent::now(a, "call.ended")
            .call("nul-in-json")
            .data(json!({"reason": "a\u{0}b"})),
    );
    sink.emit(NewEvent::now(Uuid::new_v4(), "call.started").call("no-such-tenant"));
    sink.emit(
        NewEvent::now(a, "call.ended")
            .agent(agent_a)
            .call("good-2")
            .data(json!({"seconds": 3})),
    );
    sink.flush().await;

    assert_eq!(
        call_ids(db, a).await,
        vec![Some("good-1".to_string()), Some("good-2".to_string())]
    );
    let stats = sink.stats();
    assert_eq!(stats.rejected, 6, "{stats:?}");
    assert_eq!(stats.written, 2);

    // Not stuck: later events still go through.
    sink.emit(NewEvent::now(a, "handoff").call("good-3"));
    sink.flush().await;
    assert_eq!(call_ids(db, a).await.len(), 3);
}

#[tokio::test]
async fn the_sink_keeps_its_events_through_a_database_outage() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let name = database_name(&scratch);
    let (a, agent_a) = tenant_with_agent(db, "a.example").await;
    let sink = EventSink::start_with(
        db.clone(),
        SinkOptions {
            capacity: 8,
            batch_size: 4,
            batch_wait: Duration::from_millis(20),
            shutdown_grace: Duration::from_secs(5),
        },
    );

    // The database goes away: no new connections, the pool's ones are cut.
    on_server(&format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;

    // The test runtime runs one task at a time: the writer takes nothing before we yield,
    // so 8 events fit the queue and 12 are dropped.
    for i in 0..20 {
        sink.emit(
            NewEvent::now(a, kinds::CALL_STARTED)
                .agent(agent_a)
                .call(format!("c{i}")),
        );
    }
    let stats = sink.stats();
    assert_eq!((stats.queued, stats.dropped_full), (8, 12));

    // The writer tries, fails, and keeps the events.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.stats().failed_writes < 3 {
        assert!(Instant::now() < deadline, "writer never attempted a write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sink.stats().written, 0);

    on_server(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    tokio::time::timeout(Duration::from_secs(30), sink.flush())
        .await
        .expect("flush after the database came back");

    let expected: Vec<Option<String>> = (0..8).map(|i| Some(format!("c{i}"))).collect();
    assert_eq!(call_ids(db, a).await, expected);
    let stats = sink.stats();
    assert_eq!(stats.written, 8);
    assert_eq!(stats.rejected, 0);
}

#[tokio::test]
async fn append_writes_one_event_in_the_callers_transaction() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let (a, agent_a) = tenant_with_agent(db, "a.example").await;
    let (b, _) = tenant_with_agent(db, "b.example").await;

    let id = db
        .with_tenant(a, move |tx| {
            Box::pin(async move {
                let event = NewEvent::now(a, kinds::HANDOFF)
                    .agent(agent_a)
                    .call("x")
                    .data(json!({"reason": "asked for a person"}));
                append(tx, &event).await
            })
        })
        .await
        .expect("append");
    assert!(id > 0);
    assert_eq!(call_ids(db, a).await, vec![Some("x".to_string())]);

    let bad_kind = db
        .with_tenant(a, move |tx| {
            Box::pin(async move { append(tx, &NewEvent::now(a, "Handoff!")).await })
        })
        .await;
    assert!(
        matches!(bad_kind, Err(EventError::Invalid(_))),
        "{bad_kind:?}"
    );

    // Another tenant's event in this tenant's transaction: refused by row-level security.
    let foreign = db
        .with_tenant(a, move |tx| {
            Box::pin(async move { append(tx, &NewEvent::now(b, kinds::HANDOFF)).await })
        })
        .await;
    assert!(matches!(foreign, Err(EventError::Db(_))), "{foreign:?}");
    assert!(call_ids(db, b).await.is_empty());
}

#[tokio::test]
async fn a_disabled_sink_discards_quietly() {
    let sink = EventSink::disabled();
    assert!(!sink.is_enabled());
    sink.emit(NewEvent::now(Uuid::new_v4(), kinds::CALL_STARTED));
    sink.flush().await;
    assert_eq!(sink.stats(), SinkStats::default());
}
