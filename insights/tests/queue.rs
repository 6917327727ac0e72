//! The job queue against the real Redis at 127.0.0.1:6379. Each test uses its own key
//! prefix and deletes its keys at the end. Waits are bounded by generous deadlines only so
//! that a broken queue fails instead of hanging; nothing here measures speed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use call_insights::queue::{
    Consumer, DeadLetterReason, Delivery, Job, Queue, QueueConfig, QueueKeys, RetryOutcome,
};
use fred::prelude::*;
use serde_json::json;
use uuid::Uuid;

const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Upper bound on any wait; reaching it means the behaviour under test is broken.
const DEADLINE: Duration = Duration::from_secs(15);

/// A queue under a fresh prefix; `cleanup` deletes its keys.
struct TestQueue {
    queue: Queue,
    prefix: String,
    raw: Client,
}

impl TestQueue {
    async fn new(config: QueueConfig) -> Self {
        let prefix = format!("test:{}:", Uuid::new_v4());
        let queue = Queue::connect_with(REDIS_URL, &prefix, config)
            .await
            .expect("Redis at 127.0.0.1:6379");
        let raw = Client::new(Config::from_url(REDIS_URL).unwrap(), None, None, None);
        raw.init().await.unwrap();
        Self { queue, prefix, raw }
    }

    fn keys(&self) -> QueueKeys {
        self.queue.keys().clone()
    }

    async fn cleanup(self) {
        drop(self);
    }
}

/// Deletes the test's keys even when the test panicked: a fresh runtime on its own thread,
/// since Drop cannot await.
impl Drop for TestQueue {
    fn drop(&mut self) {
        let k = self.keys();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let client = Client::new(Config::from_url(REDIS_URL).unwrap(), None, None, None);
                if client.init().await.is_ok() {
                    let _: Result<i64, _> = client.del(vec![k.stream, k.delayed, k.dead]).await;
                    let _ = client.quit().await;
                }
            });
        });
        let _ = done.join();
    }
}

fn fast_config() -> QueueConfig {
    QueueConfig {
        visibility_timeout: Duration::from_millis(300),
        backoff_base: Duration::from_millis(40),
        backoff_cap: Duration::from_millis(200),
        max_attempts: 3,
        ..QueueConfig::default()
    }
}

fn job(n: u64) -> Job {
    Job::new(
        Uuid::new_v4(),
        Uuid::new_v4(),
        "process_call",
        json!({"n": n, "url": "https://pbx.example/rec.wav"}),
    )
}

/// Polls `next` until a delivery arrives or the deadline passes.
async fn next_within(consumer: &mut Consumer) -> Option<Delivery> {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Some(d) = consumer
            .next(Duration::from_millis(100))
            .await
            .expect("next")
        {
            return Some(d);
        }
    }
    None
}

#[tokio::test]
async fn queue_enqueue_consume_ack() {
    let t = TestQueue::new(fast_config()).await;
    let mut consumer = t.queue.consumer("workers", "w1").await.unwrap();
    let sent = job(1);
    let stream_id = t.queue.enqueue(&sent).await.unwrap();

    let d = consumer
        .next(Duration::from_millis(500))
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(d.job, sent);
    assert_eq!(d.stream_id, stream_id);
    assert_eq!(d.delivery_count, 1);
    assert!(!d.reclaimed);
    assert!(consumer.ack(&d).await.unwrap());
    // A second ack of the same entry reports that it was already settled.
    assert!(!consumer.ack(&d).await.unwrap());

    assert!(consumer.next(Duration::ZERO).await.unwrap().is_none());
    let depth = t.queue.depth("workers").await.unwrap();
    assert_eq!((depth.stream, depth.pending, depth.delayed), (0, 0, 0));
    let m = t.queue.metrics();
    assert_eq!((m.enqueued, m.acked, m.duplicates), (1, 1, 1));
    drop(consumer);
    t.cleanup().await;
}

#[tokio::test]
async fn queue_two_consumers_share_work_without_duplicates() {
    let t = TestQueue::new(fast_config()).await;
    let mut sent = HashSet::new();
    // Both consumers exist (and the group) before the jobs arrive.
    let consumers = [
        t.queue.consumer("workers", "a").await.unwrap(),
        t.queue.consumer("workers", "b").await.unwrap(),
    ];
    for n in 0..40 {
        let j = job(n);
        sent.insert(j.id);
        t.queue.enqueue(&j).await.unwrap();
    }
    let mut tasks = Vec::new();
    for mut consumer in consumers {
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(d) = consumer.next(Duration::from_millis(200)).await.unwrap() {
                // Yield so the other consumer gets a turn on this two-core machine.
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert!(consumer.ack(&d).await.unwrap());
                seen.push(d.job.id);
            }
            seen
        }));
    }
    let mut all = Vec::new();
    let mut per_consumer = Vec::new();
    for task in tasks {
        let seen = task.await.unwrap();
        per_consumer.push(seen.len());
        all.extend(seen);
    }
    let unique: HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(all.len(), 40, "every job once, none twice");
    assert_eq!(unique, sent);
    assert!(
        per_consumer.iter().all(|n| *n > 0),
        "both consumers got work: {per_consumer:?}"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn queue_job_of_a_dead_consumer_is_reclaimed_and_completed_once() {
    let t = TestQueue::new(fast_config()).await;
    let mut doomed = t.queue.consumer("workers", "doomed").await.unwrap();
    let mut survivor = t.queue.consumer("workers", "survivor").await.unwrap();
    let sent = job(7);
    t.queue.enqueue(&sent).await.unwrap();

    let taken = doomed
        .next(Duration::from_millis(500))
        .await
        .unwrap()
        .expect("the doomed consumer takes the job");
    // The worker dies: no ack, connection gone.
    drop(taken);
    drop(doomed);

    // Before the visibility timeout nobody else may take it.
    assert!(survivor.next(Duration::ZERO).await.unwrap().is_none());

    let d = next_within(&mut survivor).await.expect("reclaimed");
    assert_eq!(d.job, sent);
    assert!(d.reclaimed);
    assert_eq!(d.delivery_count, 2);
    assert!(survivor.ack(&d).await.unwrap());

    // Completed once: nothing left anywhere, no further delivery.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(survivor.next(Duration::ZERO).await.unwrap().is_none());
    let depth = t.queue.depth("workers").await.unwrap();
    assert_eq!((depth.stream, depth.pending), (0, 0));
    let m = t.queue.metrics();
    assert_eq!((m.reclaimed, m.acked), (1, 1));
    drop(survivor);
    t.cleanup().await;
}

#[tokio::test]
async fn queue_long_job_extends_its_visibility() {
    let t = TestQueue::new(fast_config()).await;
    let mut busy = t.queue.consumer("workers", "busy").await.unwrap();
    let mut other = t.queue.consumer("workers", "other").await.unwrap();
    t.queue.enqueue(&job(1)).await.unwrap();
    let d = busy
        .next(Duration::from_millis(500))
        .await
        .unwrap()
        .unwrap();
    // Twice the visibility timeout, with heartbeats: never reclaimed.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(busy.extend(&d).await.unwrap());
        assert!(other.next(Duration::ZERO).await.unwrap().is_none());
    }
    // Without heartbeats it is taken over, and the old owner learns it lost the job.
    let stolen = next_within(&mut other).await.expect("reclaimed");
    assert!(!busy.extend(&d).await.unwrap());
    assert!(other.ack(&stolen).await.unwrap());
    assert!(!busy.ack(&d).await.unwrap(), "the late ack is a duplicate");
    drop((busy, other));
    t.cleanup().await;
}

#[tokio::test]
async fn queue_retry_with_backoff_then_success() {
    let t = TestQueue::new(fast_config()).await;
    let mut consumer = t.queue.consumer("workers", "w").await.unwrap();
    let sent = job(3);
    t.queue.enqueue(&sent).await.unwrap();

    let mut attempts = Vec::new();
    for _ in 0..10 {
        let d = next_within(&mut consumer)
            .await
            .expect("each attempt arrives");
        assert_eq!(d.job.id, sent.id, "same job id across retries");
        assert_eq!(d.job.payload, sent.payload);
        attempts.push(d.job.attempt);
        if d.job.attempt < 3 {
            match consumer.retry(&d, "provider timeout").await.unwrap() {
                RetryOutcome::Scheduled { attempt, delay, .. } => {
                    assert_eq!(attempt, d.job.attempt + 1);
                    assert!(delay <= Duration::from_millis(200));
                }
                other => panic!("expected a scheduled retry, got {other:?}"),
            }
            // While waiting for its backoff the job is in the delayed set, not the stream.
            let depth = t.queue.depth("workers").await.unwrap();
            assert_eq!((depth.stream, depth.delayed), (0, 1));
        } else {
            assert!(consumer.ack(&d).await.unwrap());
            break;
        }
    }
    assert_eq!(attempts, vec![1, 2, 3]);
    let m = t.queue.metrics();
    assert_eq!(
        (m.retried, m.promoted, m.acked, m.dead_lettered),
        (2, 2, 1, 0)
    );
    assert!(t.queue.dead_letters(10).await.unwrap().is_empty());
    drop(consumer);
    t.cleanup().await;
}

#[tokio::test]
async fn queue_max_attempts_goes_to_dead_letter_with_the_error() {
    let t = TestQueue::new(fast_config()).await;
    let mut consumer = t.queue.consumer("workers", "w").await.unwrap();
    let sent = job(4);
    t.queue.enqueue(&sent).await.unwrap();

    let mut dead = None;
    for _ in 0..10 {
        let d = next_within(&mut consumer)
            .await
            .expect("each attempt arrives");
        let error = format!("transcription failed on attempt {}", d.job.attempt);
        match consumer.retry(&d, &error).await.unwrap() {
            RetryOutcome::Scheduled { .. } => continue,
            RetryOutcome::DeadLettered(d) => {
                dead = Some(d);
                break;
            }
            RetryOutcome::AlreadySettled => panic!("nobody else settles this job"),
        }
    }
    let dead = dead.expect("dead-lettered within max_attempts");
    assert_eq!(dead.reason, DeadLetterReason::MaxAttempts);
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.error, "transcription failed on attempt 3");

    let letters = t.queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.id, dead.dead_letter_id);
    assert_eq!(letter.reason, Some(DeadLetterReason::MaxAttempts));
    assert_eq!(letter.error, "transcription failed on attempt 3");
    assert_eq!(letter.attempts, 3);
    assert!(letter.failed_at.is_some());
    let kept = letter.job.as_ref().expect("the job decodes");
    assert_eq!(
        (kept.id, kept.call_id, kept.attempt),
        (sent.id, sent.call_id, 3)
    );

    assert!(consumer.next(Duration::ZERO).await.unwrap().is_none());
    let depth = t.queue.depth("workers").await.unwrap();
    assert_eq!(
        (depth.stream, depth.pending, depth.delayed, depth.dead),
        (0, 0, 0, 1)
    );
    assert_eq!(t.queue.metrics().dead_lettered, 1);
    drop(consumer);
    t.cleanup().await;
}

#[tokio::test]
async fn queue_poison_entry_goes_to_dead_letter_and_work_continues() {
    let t = TestQueue::new(fast_config()).await;
    let mut consumer = t.queue.consumer("workers", "w").await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = seen.clone();
    consumer.on_dead_letter(move |dead| hook_seen.lock().unwrap().push(dead.clone()));

    // Written by something else: a bad UUID and a payload that is not JSON.
    let poison_id: String = t
        .raw
        .xadd(
            t.keys().stream,
            false,
            None::<()>,
            "*",
            vec![
                ("id", "not-a-uuid"),
                ("kind", "process_call"),
                ("payload", "{broken"),
            ],
        )
        .await
        .unwrap();
    let good = job(5);
    t.queue.enqueue(&good).await.unwrap();

    let d = consumer
        .next(Duration::from_millis(500))
        .await
        .unwrap()
        .expect("the good job after the poison one");
    assert_eq!(d.job, good);
    assert!(consumer.ack(&d).await.unwrap());
    assert!(consumer.next(Duration::ZERO).await.unwrap().is_none());

    let letters = t.queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.reason, Some(DeadLetterReason::Poison));
    assert_eq!(letter.source_id, poison_id);
    assert!(letter.error.contains("missing field"), "{}", letter.error);
    assert!(letter.job.is_none());
    assert_eq!(
        letter.raw_job.get("id").map(String::as_str),
        Some("not-a-uuid")
    );

    let hooked = seen.lock().unwrap().clone();
    assert_eq!(hooked.len(), 1);
    assert_eq!(hooked[0].dead_letter_id, letter.id);
    let depth = t.queue.depth("workers").await.unwrap();
    assert_eq!((depth.stream, depth.pending), (0, 0));
    drop(consumer);
    t.cleanup().await;
}

#[tokio::test]
async fn queue_job_that_keeps_killing_workers_is_dead_lettered() {
    let config = QueueConfig {
        max_deliveries: 2,
        ..fast_config()
    };
    let t = TestQueue::new(config).await;
    let sent = job(6);
    t.queue.enqueue(&sent).await.unwrap();
    // Two workers in turn take it and die without settling it.
    for name in ["first", "second"] {
        let mut c = t.queue.consumer("workers", name).await.unwrap();
        let d = next_within(&mut c).await.expect("delivered");
        assert_eq!(d.job.id, sent.id);
    }
    // The third delivery is over the limit: dead-lettered instead of handed out.
    let mut third = t.queue.consumer("workers", "third").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(third.next(Duration::ZERO).await.unwrap().is_none());
    let letters = t.queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, Some(DeadLetterReason::TooManyDeliveries));
    assert_eq!(letters[0].job.as_ref().map(|j| j.id), Some(sent.id));
    drop(third);
    t.cleanup().await;
}

#[tokio::test]
async fn queue_promote_due_is_idempotent_under_concurrent_callers() {
    let t = TestQueue::new(fast_config()).await;
    let other = Queue::connect_with(REDIS_URL, &t.prefix, fast_config())
        .await
        .unwrap();
    assert_eq!(other.keys(), t.queue.keys(), "both handles on one queue");

    let mut sent = HashSet::new();
    for n in 0..60 {
        let j = job(n);
        sent.insert(j.id);
        t.queue.enqueue_after(&j, Duration::ZERO).await.unwrap();
    }
    // Not yet due jobs stay put.
    t.queue
        .enqueue_after(&job(99), Duration::from_secs(3600))
        .await
        .unwrap();

    let (a, b) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += t.queue.promote_due().await.unwrap();
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..5 {
                n += other.promote_due().await.unwrap();
            }
            n
        }
    );
    assert_eq!(a + b, 60, "each due job promoted exactly once ({a} + {b})");
    assert_eq!(t.queue.promote_due().await.unwrap(), 0);

    let depth = t.queue.depth("workers").await.unwrap();
    assert_eq!((depth.stream, depth.delayed), (60, 1));
    let mut consumer = t.queue.consumer("workers", "w").await.unwrap();
    let mut got = Vec::new();
    while let Some(d) = consumer.next(Duration::ZERO).await.unwrap() {
        got.push(d.job.id);
        consumer.ack(&d).await.unwrap();
    }
    let unique: HashSet<Uuid> = got.iter().copied().collect();
    assert_eq!(got.len(), 60);
    assert_eq!(unique, sent);
    drop(consumer);
    let _ = other;
    t.cleanup().await;
}

#[tokio::test]
async fn queue_consumer_recovers_when_the_stream_key_is_deleted() {
    let t = TestQueue::new(fast_config()).await;
    let mut consumer = t.queue.consumer("workers", "w").await.unwrap();
    // Someone deletes the stream (and with it the consumer group).
    let _: i64 = t.raw.del(t.keys().stream).await.unwrap();
    assert!(consumer.next(Duration::ZERO).await.unwrap().is_none());
    let sent = job(8);
    t.queue.enqueue(&sent).await.unwrap();
    let d = next_within(&mut consumer).await.expect("work resumes");
    assert_eq!(d.job, sent);
    assert!(consumer.ack(&d).await.unwrap());
    drop(consumer);
    t.cleanup().await;
}
