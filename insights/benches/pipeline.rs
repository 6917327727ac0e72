//! Calls per minute through one pipeline worker, with every provider faked at zero delay:
//! what the worker itself costs (PostgreSQL writes, Redis queue, storage, JSON, HTTP to the
//! fakes), not what the providers take.
//!
//! `cargo bench -p call-insights --bench pipeline` (needs PostgreSQL, Redis: see README).
//! Settings from the environment: `CALLS` (default 2000), `CONCURRENCY` (the worker's
//! `[worker] concurrency`, default 16), `STORAGE` (`local`, default, or `s3` for moto's
//! server at 127.0.0.1:5090).
//!
//! The calls and their jobs are accepted first (as webhooks would, outbox included) and
//! relayed to the queue; the clock starts when the worker starts and stops when the last
//! call is processed, CRM push included.

#[allow(dead_code)]
#[path = "../tests/pipeline/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{tone_wav, Bench};
use voice_core::db::DbError;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let calls = env_or("CALLS", 2000);
    let concurrency = env_or("CONCURRENCY", 16);
    let extra = format!("[worker]\nconcurrency = {concurrency}\npoll_ms = 20");
    let mut b = Bench::start(&extra).await;
    if std::env::var("STORAGE").as_deref() == Ok("s3") {
        b.storage = harness::s3_storage().await;
    }
    let t = b.tenant("bench.example.com").await;
    let url = b.fakes.files.put("call.wav", tone_wav(4));

    let accept_started = Instant::now();
    for i in 0..calls {
        b.accept(t, &format!("bench-{i}"), &url, Some(true)).await;
    }
    let accepted_in = accept_started.elapsed();
    while b.relay().await > 0 {}

    let started = Instant::now();
    let worker = b.worker("bench").await;
    let mut last_report = Instant::now();
    loop {
        let done = processed(&b, t).await;
        if done >= calls as i64 {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  … {done}/{calls} processed");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    worker.stop().await;

    let per_minute = calls as f64 / elapsed.as_secs_f64() * 60.0;
    println!(
        "pipeline: {calls} calls through 1 worker (concurrency {concurrency}, storage {}) in {:.2} s: {:.0} calls/min ({:.1} ms per call per slot)",
        b.storage.backend(),
        elapsed.as_secs_f64(),
        per_minute,
        elapsed.as_secs_f64() * 1000.0 * concurrency as f64 / calls as f64,
    );
    println!(
        "intake (accept + outbox, one at a time): {calls} calls in {:.2} s: {:.0} calls/min",
        accepted_in.as_secs_f64(),
        calls as f64 / accepted_in.as_secs_f64() * 60.0
    );
    let notes = b.fakes.pipedrive.notes().len();
    println!(
        "checks: transcriptions {}, CRM notes {notes}",
        b.fakes.deepgram.stats().prerecorded_requests
    );
}

async fn processed(b: &Bench, tenant: uuid::Uuid) -> i64 {
    b.db()
        .with_tenant(tenant, |tx| {
            Box::pin(async move {
                // Processed and pushed to the CRM (its stage is done).
                let r = tx
                    .query_one(
                        "SELECT count(*) FROM calls WHERE status = 'processed'
                           AND stage_status -> 'crm' ->> 'status' = 'done'",
                        &[],
                    )
                    .await?;
                Ok::<_, DbError>(r.get::<_, i64>(0))
            })
        })
        .await
        .unwrap_or(0)
}
