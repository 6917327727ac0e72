//! The pipeline worker: takes jobs from the queue and runs them.
//!
//! - `process`: `process_call` (download → store → transcribe → analyze → score → CRM)
//!   and `push_crm`.
//! - `stage`: the stages, their failures and their entries on the call row.
//! - `persist`: the worker's reads and writes, tenant-scoped and idempotent.
//! - `download`: fetching a recording within limits.
//! - `metrics`: jobs by outcome, stage durations.
//!
//! [`run`] starts `concurrency` loops, each its own queue consumer. A loop takes a job, runs
//! it while telling the queue it is alive (so a long transcription is not taken for a dead
//! worker's), then settles it: ack when done, retry with backoff on a transient failure,
//! dead-letter at once on a permanent one. When a job is given up, the call is marked
//! `failed` with the reason. A worker that dies mid-job leaves the job pending; another
//! reclaims it after the visibility timeout and, since every stage skips the work already
//! stored, finishes it without doing anything twice.

pub mod download;
pub mod metrics;
pub mod persist;
pub mod process;
pub mod stage;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use uuid::Uuid;
use voice_core::db::Db;

use crate::analyze::Analyzer;
use crate::crm::Pipedrive;
use crate::privacy::PrivacySettings;
use crate::queue::{Consumer, Delivery, Queue, RetryOutcome};
use crate::storage::Storage;
use crate::transcribe::Transcriber;
pub use metrics::PipelineMetrics;
use process::Outcome;
use stage::{Stage, StageError, StageState};

/// The job kinds this worker runs.
pub const PROCESS_CALL: &str = crate::intake::PROCESS_CALL;
pub const PUSH_CRM: &str = "push_crm";

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Run the pipeline in this process (it also needs `[queue] redis_url`).
    pub enabled: bool,
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// The consumer group every worker joins (one group: each job goes to one worker).
    pub group: String,
    /// How long a consumer waits for a job before looking again (reclaims, retries).
    pub poll_ms: u64,
    /// A job not heard from for this long is taken to belong to a dead worker.
    pub visibility_timeout_secs: u64,
    /// Attempts (first included) before a failing job is given up.
    pub max_attempts: u32,
    /// The first retry's delay; doubles with each attempt.
    pub backoff_base_ms: u64,
    /// The panel's address as users reach it, for links in CRM notes; empty: no links.
    pub public_url: Option<String>,
    pub download: download::DownloadSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            concurrency: 4,
            group: "insights".into(),
            poll_ms: 1000,
            visibility_timeout_secs: 300,
            max_attempts: 5,
            backoff_base_ms: 2000,
            public_url: None,
            download: download::DownloadSettings::default(),
        }
    }
}

impl WorkerSettings {
    /// The queue tuning these settings imply.
    pub fn queue_config(&self) -> crate::queue::QueueConfig {
        crate::queue::QueueConfig {
            visibility_timeout: Duration::from_secs(self.visibility_timeout_secs.max(1)),
            max_attempts: self.max_attempts.max(1),
            backoff_base: Duration::from_millis(self.backoff_base_ms.max(1)),
            ..Default::default()
        }
    }
}

/// Everything a job needs; shared by the worker's loops.
pub struct Pipeline {
    pub db: Db,
    pub storage: Storage,
    pub transcriber: Transcriber,
    pub analyzer: Analyzer,
    /// `Some` when CRM pushes are enabled.
    pub crm: Option<Pipedrive>,
    /// Downloads of recordings.
    pub http: reqwest::Client,
    pub settings: WorkerSettings,
    pub privacy: PrivacySettings,
    pub metrics: Arc<PipelineMetrics>,
}

impl Pipeline {
    /// The pipeline `config` describes. Fails when a provider cannot be set up (no API key
    /// for any transcription provider, an unknown LLM provider, CRM on without a token).
    pub fn from_config(
        config: &crate::config::InsightsConfig,
        db: Db,
        storage: Storage,
        metrics: Arc<PipelineMetrics>,
    ) -> Result<Self, String> {
        let transcriber = Transcriber::from_settings(&config.transcribe)
            .map_err(|e| format!("[transcribe]: {e}"))?;
        let analyzer =
            Analyzer::from_settings(&config.analyze).map_err(|e| format!("[analyze]: {e}"))?;
        let crm = if config.crm.enabled {
            Some(
                Pipedrive::from_settings(&config.crm.pipedrive)
                    .map_err(|e| format!("[crm.pipedrive]: {e}"))?,
            )
        } else {
            None
        };
        let http = download::client(&config.worker.download)?;
        Ok(Self {
            db,
            storage,
            transcriber,
            analyzer,
            crm,
            http,
            settings: config.worker.clone(),
            privacy: config.privacy.clone(),
            metrics,
        })
    }
}

/// The running worker: its loops stop (after their current job) when it is dropped or
/// [`Worker::stop`]ped.
pub struct Worker {
    stop: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Waits for the loops to finish their current jobs.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for handle in self.loops.drain(..) {
            let _ = handle.await;
        }
    }

    /// Kills the loops where they are, as a crash would (tests).
    pub fn abort(mut self) {
        for handle in self.loops.drain(..) {
            handle.abort();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts `pipeline.settings.concurrency` loops on `queue`. `name` tells this process's
/// consumers apart from other workers' (host and pid, say).
pub async fn run(
    pipeline: Arc<Pipeline>,
    queue: &Queue,
    name: &str,
) -> Result<Worker, crate::queue::QueueError> {
    let (stop, stopped) = watch::channel(false);
    let mut loops = Vec::new();
    for i in 0..pipeline.settings.concurrency.max(1) {
        let mut consumer = queue
            .consumer(&pipeline.settings.group, &format!("{name}-{i}"))
            .await?;
        let on_dead = pipeline.clone();
        consumer.on_dead_letter(move |dead| {
            // Poison or a job that killed every worker: mark its call failed, if we know it.
            if let Some(job) = &dead.job {
                let p = on_dead.clone();
                let (tenant, call, error) = (job.tenant_id, job.call_id, dead.error.clone());
                tokio::spawn(
                    async move { give_up(&p, tenant, call, Stage::Download, &error).await },
                );
            }
        });
        let p = pipeline.clone();
        let stopped = stopped.clone();
        loops.push(tokio::spawn(
            async move { consume(p, consumer, stopped).await },
        ));
    }
    info!(
        concurrency = loops.len(),
        group = %pipeline.settings.group,
        "pipeline worker started"
    );
    Ok(Worker { stop, loops })
}

async fn consume(p: Arc<Pipeline>, mut consumer: Consumer, mut stopped: watch::Receiver<bool>) {
    let poll = Duration::from_millis(p.settings.poll_ms.max(10));
    let mut backoff = Duration::from_millis(200);
    while !*stopped.borrow() {
        let next = tokio::select! {
            next = consumer.next(poll) => next,
            _ = stopped.changed() => break,
        };
        let delivery = match next {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                warn!(error = %e, "job queue unavailable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        handle(&p, &consumer, delivery).await;
    }
}

/// Runs one job with heartbeats, then settles it.
async fn handle(p: &Pipeline, consumer: &Consumer, delivery: Delivery) {
    let job = &delivery.job;
    let run = async {
        match job.kind.as_str() {
            PROCESS_CALL => process::process_call(p, job.tenant_id, job.call_id, job.attempt).await,
            PUSH_CRM => process::push_crm(p, job.tenant_id, job.call_id, job.attempt).await,
            other => Err((
                Stage::Download,
                StageError::Permanent(format!("unknown job kind `{other}`")),
            )),
        }
    };
    let result = with_heartbeat(p, consumer, &delivery, run).await;
    let settled = match result {
        Ok(outcome) => {
            if outcome == Outcome::Processed {
                p.metrics.jobs_processed.inc();
            }
            consumer.ack(&delivery).await.map(|_| ())
        }
        Err((stage, StageError::Permanent(message))) => {
            give_up(p, job.tenant_id, job.call_id, stage, &message).await;
            consumer.reject(&delivery, &message).await.map(|_| ())
        }
        Err((stage, StageError::Retryable(message))) => {
            match consumer.retry(&delivery, &message).await {
                Ok(RetryOutcome::Scheduled { attempt, delay, .. }) => {
                    p.metrics.jobs_retried.inc();
                    let state = StageState::Failed {
                        attempt: job.attempt,
                        error: message.clone(),
                        will_retry: true,
                    };
                    let marked = persist::mark(
                        &p.db,
                        job.tenant_id,
                        job.call_id,
                        stage,
                        &state,
                        None,
                        Some(message.clone()),
                    )
                    .await;
                    if let Err(e) = marked {
                        warn!(error = %e, "could not record the stage failure");
                    }
                    info!(
                        call = %job.call_id, %stage, next_attempt = attempt,
                        delay_ms = delay.as_millis() as u64, error = %message,
                        "stage failed; will retry"
                    );
                    Ok(())
                }
                Ok(RetryOutcome::DeadLettered(_)) => {
                    give_up(p, job.tenant_id, job.call_id, stage, &message).await;
                    Ok(())
                }
                Ok(RetryOutcome::AlreadySettled) => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = settled {
        // The entry stays pending and is reclaimed after the visibility timeout.
        warn!(error = %e, job = %job.id, "could not settle the job");
    }
}

/// Runs `work`, extending the job's lease every third of the visibility timeout.
async fn with_heartbeat<T>(
    p: &Pipeline,
    consumer: &Consumer,
    delivery: &Delivery,
    work: impl std::future::Future<Output = T>,
) -> T {
    let every = Duration::from_secs(p.settings.visibility_timeout_secs.max(3)) / 3;
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticker.tick() => {
                match consumer.extend(delivery).await {
                    Ok(true) => {}
                    // Someone else has it now; finishing is harmless (stages are idempotent).
                    Ok(false) => warn!(job = %delivery.job.id, "job reclaimed by another worker"),
                    Err(e) => warn!(error = %e, "heartbeat failed"),
                }
            }
        }
    }
}

/// The job is given up: the call is marked failed with the reason (a CRM push that fails
/// leaves the processed call as it is).
async fn give_up(p: &Pipeline, tenant: Uuid, call: Uuid, stage: Stage, message: &str) {
    p.metrics.jobs_failed.inc();
    let state = StageState::Failed {
        attempt: 0,
        error: message.to_string(),
        will_retry: false,
    };
    let status = (stage != Stage::Crm).then_some("failed");
    let marked = persist::mark(
        &p.db,
        tenant,
        call,
        stage,
        &state,
        status,
        Some(message.to_string()),
    )
    .await;
    match marked {
        Ok(()) => error!(%tenant, %call, %stage, error = %message, "job given up"),
        Err(e) => warn!(error = %e, %call, "could not mark the call failed"),
    }
}
