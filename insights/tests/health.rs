//! `/healthz` reports each dependency for real: the database, the Redis queue and the
//! recordings store (a bucket of moto's S3 server that exists, then one that does not).
//! The database decides the HTTP status; a queue or store fault makes it "degraded".

mod common;

use call_insights::queue::Queue;
use common::{test_key, Stack};
use reqwest::StatusCode;
use uuid::Uuid;

const REDIS: &str = "redis://127.0.0.1:6379";
const S3: &str = "http://127.0.0.1:5090";

/// Settings with the queue on the real Redis and recordings in `bucket` of moto's server.
fn settings(bucket: &str) -> String {
    format!(
        r#"
[queue]
redis_url = "{REDIS}"
prefix = "test:health:{prefix}:"
[storage]
backend = "s3"
[storage.s3]
bucket = "{bucket}"
endpoint = "{S3}"
access_key_id = "AKIATESTKEYID"
secret_access_key = "test-secret-access-key"
allow_http = true
connect_timeout_secs = 2
max_retries = 0
"#,
        prefix = Uuid::new_v4().simple(),
    )
}

async fn make_bucket() -> String {
    let bucket = format!("health-{}", Uuid::new_v4().simple());
    let made = reqwest::Client::new()
        .put(format!("{S3}/{bucket}"))
        .send()
        .await
        .expect("moto's S3 server at 127.0.0.1:5090 (scripts/lib.sh ensure_s3)");
    assert!(made.status().is_success(), "{}", made.status());
    bucket
}

/// Connects the service's queue as `main` does once Redis answers.
async fn connect_queue(s: &Stack) {
    let config = &s.state.config;
    let queue = Queue::connect_with(
        config.queue.redis_url.expose(),
        &config.queue.prefix,
        config.worker.queue_config(),
    )
    .await
    .expect("Redis at 127.0.0.1:6379");
    assert!(s.state.queue.set(queue).is_ok());
}

#[tokio::test]
async fn every_dependency_is_checked_and_reported() {
    let bucket = make_bucket().await;
    let s = Stack::start_with(&settings(&bucket), Some(test_key())).await;

    // Before the queue is connected, the service says so and is not "ok".
    let h = s.get("/healthz", "").await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    assert_eq!(h.body["database"], "ok");
    assert_eq!(h.body["queue"], "connecting");
    assert_eq!(h.body["status"], "degraded");

    connect_queue(&s).await;
    let h = s.get("/healthz", "").await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    assert_eq!(h.body["queue"], "ok", "{}", h.text);
    assert_eq!(h.body["storage"], "ok (s3)", "{}", h.text);
    assert_eq!(h.body["credentials_key"], "ok");
    assert_eq!(h.body["status"], "ok");
}

#[tokio::test]
async fn a_missing_bucket_degrades_the_service_and_says_why() {
    let s = Stack::start_with(&settings("no-such-bucket-here"), Some(test_key())).await;
    connect_queue(&s).await;
    let h = s.get("/healthz", "").await;
    // Still serving (the database answers), but not healthy, with the reason.
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    assert_eq!(h.body["queue"], "ok", "{}", h.text);
    assert_eq!(h.body["status"], "degraded", "{}", h.text);
    let storage = h.body["storage"].as_str().unwrap_or_default();
    assert!(storage.contains("bucket"), "{storage}");
}
