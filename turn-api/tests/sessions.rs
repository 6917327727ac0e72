//! The session stores: Redis at 127.0.0.1:6379 (a unique key prefix per test) and memory.

use std::time::Duration;

use turn_api::sessions::{MemoryStore, RedisStore, Session, SessionStore, TurnRecord};

const REDIS: &str = "redis://127.0.0.1:6379";

fn prefix(test: &str) -> String {
    format!(
        "turn-api-test:{}:{}:{test}:",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

fn session(id: &str) -> Session {
    Session {
        id: id.into(),
        tenant: "a.example.com".into(),
        call_id: "call-1".into(),
        caller: Some("1001".into()),
        callee: None,
        created_at_ms: 1_700_000_000_000,
        turns: 2,
        conversation: serde_json::json!({"history": [["agent", "Olá"]], "turns": 2}),
        history: vec![TurnRecord {
            turn: 1,
            caller_text: "oi".into(),
            reply_text: "Olá".into(),
            action: "transfer".into(),
            target: Some("1000".into()),
        }],
        tenant_id: Some("6f1c2a8e-0000-4000-8000-000000000001".into()),
        agent_id: None,
        consent: Some(true),
    }
}

async fn round_trip(store: &dyn SessionStore) {
    store.ping().await.unwrap();
    assert_eq!(store.get("s1").await.unwrap(), None);
    let mut s = session("s1");
    store.put(&s).await.unwrap();
    assert_eq!(store.get("s1").await.unwrap(), Some(s.clone()));
    s.turns = 3;
    store.put(&s).await.unwrap();
    assert_eq!(store.get("s1").await.unwrap().map(|s| s.turns), Some(3));
    assert_eq!(store.remove("s1").await.unwrap(), Some(s));
    assert_eq!(store.remove("s1").await.unwrap(), None);
    assert_eq!(store.get("s1").await.unwrap(), None);
}

/// A session lives for the TTL after its last write, and each write pushes it back.
async fn expiry(store: &dyn SessionStore) {
    store.put(&session("e1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    store.put(&session("e1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        store.get("e1").await.unwrap().is_some(),
        "the write refreshed the TTL"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.get("e1").await.unwrap(), None);
}

#[tokio::test]
async fn memory_store_round_trip_and_expiry() {
    let store = MemoryStore::new(Duration::from_secs(1));
    round_trip(&store).await;
    expiry(&store).await;
    // The expired session was swept on the next write.
    store.put(&session("x")).await.unwrap();
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn redis_store_round_trip_and_expiry() {
    let p = prefix("round");
    let store = RedisStore::connect(REDIS, &p, Duration::from_secs(1))
        .await
        .unwrap();
    round_trip(&store).await;
    expiry(&store).await;
}

#[tokio::test]
async fn redis_store_keeps_sessions_under_its_prefix_apart() {
    let a = RedisStore::connect(REDIS, &prefix("a"), Duration::from_secs(60))
        .await
        .unwrap();
    let b = RedisStore::connect(REDIS, &prefix("b"), Duration::from_secs(60))
        .await
        .unwrap();
    a.put(&session("same")).await.unwrap();
    assert_eq!(b.get("same").await.unwrap(), None);
    assert!(a.remove("same").await.unwrap().is_some());
}

#[tokio::test]
async fn an_unreachable_or_bad_redis_is_a_clear_error() {
    let err = RedisStore::connect("not a url", "p:", Duration::from_secs(1))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a valid Redis URL"), "{err}");
    let err = RedisStore::connect("redis://:hunter2@127.0.0.1:1", "p:", Duration::from_secs(1))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unavailable"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
