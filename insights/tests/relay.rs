//! The outbox relay against the real PostgreSQL (a scratch database per test) and the real
//! Redis at 127.0.0.1:6379 (a fresh key prefix per test, deleted at the end). Redis outages
//! are real: the relay talks to Redis through a TCP proxy the test switches off and on.
//! Waits are bounded by a generous deadline only so that a broken relay fails instead of
//! hanging; nothing here measures speed.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use call_insights::intake::payload::IncomingCall;
use call_insights::intake::store::{self, Source, PROCESS_CALL};
use call_insights::queue::{Job, Queue, QueueKeys};
use call_insights::relay::{relay_once, spawn_relay, RelayError};
use fred::prelude::*;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;
use voice_core::db::scratch::ScratchDb;
use voice_core::db::{Db, DbError};

const REDIS: &str = "127.0.0.1:6379";
const DEADLINE: Duration = Duration::from_secs(30);

fn redis_url(addr: &str) -> String {
    format!("redis://{addr}")
}

/// Deletes a prefix's queue keys on drop, even when the test panicked (a fresh runtime on its
/// own thread, since Drop cannot await).
struct Cleanup(QueueKeys);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let k = self.0.clone();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let client = Client::new(
                    Config::from_url(&redis_url(REDIS)).unwrap(),
                    None,
                    None,
                    None,
                );
                if client.init().await.is_ok() {
                    let _: Result<i64, _> = client.del(vec![k.stream, k.delayed, k.dead]).await;
                    let _ = client.quit().await;
                }
            });
        });
        let _ = done.join();
    }
}

fn fresh_prefix() -> String {
    format!("test:relay:{}:", Uuid::new_v4())
}

async fn queue_at(addr: &str, prefix: &str) -> Queue {
    Queue::connect(&redis_url(addr), prefix)
        .await
        .expect("Redis at 127.0.0.1:6379")
}

async fn scratch() -> ScratchDb {
    ScratchDb::create(8)
        .await
        .expect("a scratch database (is PostgreSQL running?)")
}

async fn tenant(db: &Db, name: &str) -> Uuid {
    db.create_tenant(Uuid::new_v4(), name).await.unwrap()
}

/// What the webhook does for a call: its row and its `process_call` job, in one transaction.
async fn accept_call(db: &Db, tenant: Uuid, provider_call_id: &str) -> Uuid {
    let call = IncomingCall {
        event: "call.ended".into(),
        provider_call_id: provider_call_id.into(),
        from_number: "+5511999990000".into(),
        to_number: "+5511333330000".into(),
        agent_ref: "1001".into(),
        duration_sec: Some(42),
        started_at: None,
        ended_at: None,
        recording_url: Some("https://pbx.example/rec.wav".into()),
        consent: Some(true),
        meta: json!({}),
    };
    let accepted = store::accept(db, tenant, Source::Voip, call).await.unwrap();
    assert!(accepted.queued && !accepted.duplicate);
    accepted.call_id
}

/// Every jobs row (any tenant; the scratch login is a superuser): id → (tenant, call,
/// relayed?).
async fn job_rows(db: &Db) -> HashMap<Uuid, (Uuid, Option<Uuid>, bool)> {
    db.admin(|tx| {
        Box::pin(async move {
            let rows = tx
                .query(
                    "SELECT id, tenant_id, call_id, enqueued_at IS NOT NULL FROM jobs",
                    &[],
                )
                .await?;
            Ok::<_, DbError>(
                rows.iter()
                    .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
                    .collect(),
            )
        })
    })
    .await
    .unwrap()
}

/// Every job on the stream, in order (read with a consumer group, as a worker would).
async fn drain(queue: &Queue) -> Vec<Job> {
    let mut consumer = queue.consumer("workers", "test").await.unwrap();
    let mut jobs = Vec::new();
    while let Some(d) = consumer.next(Duration::from_millis(100)).await.unwrap() {
        assert!(consumer.ack(&d).await.unwrap());
        jobs.push(d.job);
    }
    jobs
}

#[tokio::test]
async fn relay_moves_an_accepted_job_to_the_queue_once() {
    let s = scratch().await;
    let prefix = fresh_prefix();
    let queue = queue_at(REDIS, &prefix).await;
    let _cleanup = Cleanup(queue.keys().clone());
    let t = tenant(&s.db, "relay-one.example.com").await;
    let call = accept_call(&s.db, t, "call-1").await;
    let rows = job_rows(&s.db).await;
    assert_eq!(rows.len(), 1);
    let (&job_id, &(_, _, relayed)) = rows.iter().next().unwrap();
    assert!(!relayed, "accepted jobs start unrelayed");

    assert_eq!(relay_once(&s.db, &queue).await.unwrap(), 1);

    let jobs = drain(&queue).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.id, job_id, "the queued job carries the outbox row's id");
    assert_eq!(job.tenant_id, t);
    assert_eq!(job.call_id, call);
    assert_eq!(job.kind, PROCESS_CALL);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.payload["call_id"], json!(call));
    assert_eq!(job.payload["provider_call_id"], json!("call-1"));
    assert!(job_rows(&s.db).await[&job_id].2, "the row is stamped");

    // Nothing left to relay: a second pass queues nothing.
    assert_eq!(relay_once(&s.db, &queue).await.unwrap(), 0);
    assert_eq!(queue.metrics().enqueued, 1, "one XADD in all");
    assert!(drain(&queue).await.is_empty());
}

#[tokio::test]
async fn relay_takes_the_oldest_jobs_and_tenant_wide_jobs_too() {
    let s = scratch().await;
    let queue = queue_at(REDIS, &fresh_prefix()).await;
    let _cleanup = Cleanup(queue.keys().clone());
    let t = tenant(&s.db, "relay-order.example.com").await;
    let first = accept_call(&s.db, t, "first").await;
    let second = accept_call(&s.db, t, "second").await;
    // A job of no call (retention, say) travels with the nil call id.
    s.db.with_tenant(t, move |tx| {
        Box::pin(async move {
            tx.execute(
                "INSERT INTO jobs (tenant_id, kind, payload) VALUES ($1, 'retention', '{\"days\": 30}')",
                &[&t],
            )
            .await?;
            Ok::<_, DbError>(())
        })
    })
    .await
    .unwrap();

    assert_eq!(relay_once(&s.db, &queue).await.unwrap(), 3);
    let jobs = drain(&queue).await;
    let order: Vec<(Uuid, &str)> = jobs.iter().map(|j| (j.call_id, j.kind.as_str())).collect();
    assert_eq!(
        order,
        vec![
            (first, PROCESS_CALL),
            (second, PROCESS_CALL),
            (Uuid::nil(), "retention")
        ]
    );
    assert_eq!(jobs[2].payload, json!({"days": 30}));
    assert!(job_rows(&s.db).await.values().all(|r| r.2));
}

/// A TCP proxy to the real Redis that the test can switch off (closing every connection)
/// and on again at the same address: a real outage, as the relay sees it.
struct RedisProxy {
    addr: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl RedisProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(REDIS).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Refuses new connections and cuts the open ones.
    async fn stop(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restart(&self) {
        let start = Instant::now();
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if start.elapsed() < DEADLINE => {
                    eprintln!("rebinding the proxy: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind the proxy: {e}"),
            }
        };
        self.serve(listener);
    }
}

#[tokio::test]
async fn relay_keeps_jobs_pending_while_redis_is_down_and_relays_them_after() {
    let s = scratch().await;
    let prefix = fresh_prefix();
    let proxy = RedisProxy::start().await;
    let through_proxy = queue_at(&proxy.addr.to_string(), &prefix).await;
    let direct = queue_at(REDIS, &prefix).await;
    let _cleanup = Cleanup(direct.keys().clone());
    let t = tenant(&s.db, "relay-outage.example.com").await;

    proxy.stop().await;
    // Webhooks are still accepted while Redis is down: the jobs wait in the outbox.
    for n in 0..3 {
        accept_call(&s.db, t, &format!("outage-{n}")).await;
    }
    let outcome = relay_once(&s.db, &through_proxy).await;
    assert!(
        matches!(outcome, Err(RelayError::Queue(_))),
        "Redis down is a queue error: {outcome:?}"
    );
    let rows = job_rows(&s.db).await;
    assert_eq!(rows.len(), 3);
    assert!(
        rows.values().all(|r| !r.2),
        "nothing stamped while Redis is down"
    );
    assert_eq!(direct.depth("workers").await.unwrap().stream, 0);

    proxy.restart().await;
    // The client reconnects with backoff: keep relaying until it gets through.
    let start = Instant::now();
    let mut relayed = 0;
    while relayed < 3 {
        assert!(
            start.elapsed() < DEADLINE,
            "not relayed after Redis came back"
        );
        match relay_once(&s.db, &through_proxy).await {
            Ok(n) => relayed += n,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(relayed, 3);
    let rows = job_rows(&s.db).await;
    assert!(rows.values().all(|r| r.2), "every row stamped once relayed");
    // At least once: a command that timed out during the outage may still have landed, but
    // every pending row is on the stream under its own id.
    let ids: HashSet<Uuid> = drain(&direct).await.iter().map(|j| j.id).collect();
    assert_eq!(ids, rows.keys().copied().collect());
    assert_eq!(relay_once(&s.db, &through_proxy).await.unwrap(), 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_relays_relay_each_job_exactly_once_with_its_own_tenant() {
    let s = scratch().await;
    let prefix = fresh_prefix();
    // Separate connections, as separate instances would have.
    let queues = [
        queue_at(REDIS, &prefix).await,
        queue_at(REDIS, &prefix).await,
        queue_at(REDIS, &prefix).await,
    ];
    let _cleanup = Cleanup(queues[0].keys().clone());
    let tenants = [
        tenant(&s.db, "relay-a.example.com").await,
        tenant(&s.db, "relay-b.example.com").await,
    ];
    // The same provider call id in both tenants: two different calls.
    let mut call_tenant = HashMap::new();
    for n in 0..40 {
        for &t in &tenants {
            let call = accept_call(&s.db, t, &format!("c-{n}")).await;
            call_tenant.insert(call, t);
        }
    }

    let passes: Vec<_> = queues
        .iter()
        .map(|q| {
            let (db, q) = (s.db.clone(), q.clone());
            tokio::spawn(async move { relay_once(&db, &q).await.unwrap() })
        })
        .collect();
    let mut total = 0;
    for pass in passes {
        total += pass.await.unwrap();
    }
    assert_eq!(total, 80, "the passes together relayed every job once");

    let jobs = drain(&queues[0]).await;
    assert_eq!(jobs.len(), 80, "no job on the stream twice");
    let rows = job_rows(&s.db).await;
    let ids: HashSet<Uuid> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, rows.keys().copied().collect());
    for job in &jobs {
        let (row_tenant, row_call, relayed) = rows[&job.id];
        assert!(relayed);
        assert_eq!(job.tenant_id, row_tenant);
        assert_eq!(Some(job.call_id), row_call);
        assert_eq!(
            call_tenant[&job.call_id], job.tenant_id,
            "each job carries its own tenant"
        );
    }
    for &t in &tenants {
        assert_eq!(jobs.iter().filter(|j| j.tenant_id == t).count(), 40);
    }
}

#[tokio::test]
async fn spawned_relay_feeds_the_queue_on_its_own() {
    let s = scratch().await;
    let queue = queue_at(REDIS, &fresh_prefix()).await;
    let _cleanup = Cleanup(queue.keys().clone());
    let t = tenant(&s.db, "relay-spawn.example.com").await;
    let mut consumer = queue.consumer("workers", "w").await.unwrap();
    let relay = spawn_relay(s.db.clone(), queue.clone(), Duration::from_millis(50));

    let call = accept_call(&s.db, t, "spawned").await;
    let start = Instant::now();
    let delivery = loop {
        assert!(start.elapsed() < DEADLINE, "the relay never queued the job");
        if let Some(d) = consumer.next(Duration::from_millis(100)).await.unwrap() {
            break d;
        }
    };
    assert_eq!((delivery.job.tenant_id, delivery.job.call_id), (t, call));
    relay.abort();
}
