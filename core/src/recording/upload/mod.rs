//! Hands every finished call recording to call-insights (`POST {url}/webhooks/recording`,
//! contract in `insights/src/intake/upload.rs`), durably: the recordings folder is the
//! queue ([`spool`]), so nothing is lost across restarts.
//!
//! Every `scan_secs` the [`Uploader`] looks for summaries (`{call}.json`, written when a
//! call ends) without a marker, and uploads them, `concurrency` at a time:
//! - 2xx (a duplicate too: call-insights is idempotent on `call_id`): `{call}.uploaded` is
//!   written (and with `delete_after_upload` the call's files are removed);
//! - 4xx but 408/429, or files that cannot be sent: `{call}.upload-failed` with the reason,
//!   and a warning; the call is not tried again (delete the marker to retry it);
//! - 5xx, 408, 429, no answer: tried again after 2 s, 4 s… up to 5 min, for ever (the wait
//!   starts over after a restart).
//!
//! A crash between the upload and the marker sends the call again: at least once.
//!
//! The tenant sent (`?domain=`) is the call's tenant as the recorder was given it (the
//! bridge's `tenant` stream parameter, the FusionPBX domain name; turn-api's session
//! tenant, also the domain name), read from the summary, not the sanitized folder name;
//! `domain` stands in when that is not a domain name or uuid ([`metadata::domain_for`]).
//!
//! The secret is `INSIGHTS_WEBHOOK_SECRET` (or `secret`); it is never logged nor shown.

mod metadata;
mod metrics;
mod send;
mod settings;
mod sign;
mod spool;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tracing::{info, warn};

use crate::config::Secret;
pub use metadata::domain_for;
pub use metrics::UploadMetrics;
use send::{Outcome, Request};
pub use settings::{UploadSettings, SECRET_ENV};

/// First wait after a failed attempt; it doubles up to [`BACKOFF_CAP`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Which service posts (`?source=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadSource {
    Bridge,
    TurnApi,
}

impl UploadSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadSource::Bridge => "bridge",
            UploadSource::TurnApi => "turn_api",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("invalid recording.upload settings: {0}")]
    InvalidSettings(String),
    #[error("recording.upload.url is set but there is no secret (set {SECRET_ENV})")]
    NoSecret,
    #[error("HTTP client: {0}")]
    Client(String),
}

/// What one pass over the folder did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    pub uploaded: u64,
    pub failed: u64,
    pub retried: u64,
    /// Due calls left for later (still waiting out their backoff).
    pub waiting: u64,
}

/// The upload service of one instance (cheap to clone).
#[derive(Clone)]
pub struct Uploader {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    settings: UploadSettings,
    secret: Secret,
    source: UploadSource,
    client: reqwest::Client,
    metrics: Arc<UploadMetrics>,
    backoff_base: Duration,
    /// Calls that failed and when they may be tried again (in memory: a restart retries at once).
    retries: Mutex<HashMap<PathBuf, Retry>>,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    failures: u32,
    not_before: Instant,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("dir", &self.inner.dir)
            .field("settings", &self.inner.settings)
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl Uploader {
    /// The uploader for recordings under `dir`; `None` when `settings.url` is empty.
    pub fn new(
        dir: &Path,
        settings: &UploadSettings,
        source: UploadSource,
    ) -> Result<Option<Self>, UploadError> {
        Self::with_backoff(dir, settings, source, BACKOFF_BASE)
    }

    pub(crate) fn with_backoff(
        dir: &Path,
        settings: &UploadSettings,
        source: UploadSource,
        backoff_base: Duration,
    ) -> Result<Option<Self>, UploadError> {
        if !settings.is_enabled() {
            return Ok(None);
        }
        settings.validate().map_err(UploadError::InvalidSettings)?;
        let secret = settings.resolved_secret();
        if secret.is_empty() {
            return Err(UploadError::NoSecret);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| UploadError::Client(e.to_string()))?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                settings: settings.clone(),
                secret,
                source,
                client,
                metrics: Arc::new(UploadMetrics::default()),
                backoff_base,
                retries: Mutex::new(HashMap::new()),
            }),
        }))
    }

    /// Starts uploading the recordings of `recording.dir` when `[recording.upload] url` is
    /// set (whether or not this instance records: calls left by an earlier run go too).
    pub fn start(
        recording: &crate::recording::RecordingSettings,
        source: UploadSource,
    ) -> Result<Option<Self>, UploadError> {
        let uploader = Self::new(&recording.dir, &recording.upload, source)?;
        if let Some(up) = &uploader {
            up.clone().spawn();
        }
        Ok(uploader)
    }

    pub fn metrics(&self) -> &UploadMetrics {
        &self.inner.metrics
    }

    /// Scans every `scan_secs` until the runtime stops (or the task is aborted).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = Duration::from_secs(self.inner.settings.scan_secs);
            info!(source = self.inner.source.as_str(), dir = %self.inner.dir.display(),
                "recording uploads to call-insights on");
            loop {
                self.scan_once().await;
                tokio::time::sleep(every).await;
            }
        })
    }

    /// One pass: uploads every due call whose backoff is over, and waits for them.
    pub async fn scan_once(&self) -> ScanReport {
        let dir = self.inner.dir.clone();
        let due = tokio::task::spawn_blocking(move || spool::due(&dir))
            .await
            .unwrap_or_default();
        let now = Instant::now();
        let mut report = ScanReport::default();
        let ready: Vec<PathBuf> = {
            let retries = self.lock_retries();
            due.into_iter()
                .filter(|p| match retries.get(p) {
                    Some(r) if r.not_before > now => {
                        report.waiting += 1;
                        false
                    }
                    _ => true,
                })
                .collect()
        };
        let outcomes: Vec<Outcome> = futures_util::stream::iter(ready)
            .map(|summary| async move { self.upload(&summary).await })
            .buffer_unordered(self.inner.settings.concurrency)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Outcome::Accepted { .. } => report.uploaded += 1,
                Outcome::Permanent(_) => report.failed += 1,
                Outcome::Retry(_) => report.retried += 1,
            }
        }
        report
    }

    async fn upload(&self, summary: &Path) -> Outcome {
        let inner = &self.inner;
        let request = Request {
            client: &inner.client,
            url: &inner.settings.url,
            secret: &inner.secret,
            fallback_domain: &inner.settings.domain,
            source: inner.source,
        };
        let (call_id, outcome) = request.send(summary).await;
        let call = call_id.as_deref().unwrap_or("?");
        let file = summary.display();
        match &outcome {
            Outcome::Accepted { audio } => {
                self.lock_retries().remove(summary);
                inner.metrics.uploaded.inc();
                info!(call, "recording uploaded to call-insights");
                if let Err(e) = spool::mark(summary, spool::UPLOADED, "") {
                    // Sent again at the next scan: call-insights answers it as a duplicate.
                    warn!(call, %file, error = %e, "could not mark a recording uploaded");
                } else if inner.settings.delete_after_upload {
                    if let Err(e) = spool::remove_call(summary, audio) {
                        warn!(call, %file, error = %e, "could not delete an uploaded recording");
                    }
                }
            }
            Outcome::Permanent(reason) => {
                self.lock_retries().remove(summary);
                inner.metrics.failed.inc();
                warn!(call, %file, %reason, "recording refused for good: set aside (delete its .upload-failed marker to retry)");
                if let Err(e) = spool::mark(summary, spool::FAILED, reason) {
                    warn!(call, %file, error = %e, "could not mark a recording failed");
                }
            }
            Outcome::Retry(reason) => {
                inner.metrics.retried.inc();
                let mut retries = self.lock_retries();
                let failures = retries
                    .get(summary)
                    .map_or(1, |r| r.failures.saturating_add(1));
                let wait = backoff(inner.backoff_base, failures);
                retries.insert(
                    summary.to_path_buf(),
                    Retry {
                        failures,
                        not_before: Instant::now() + wait,
                    },
                );
                warn!(call, %file, %reason, attempt = failures, retry_in_secs = wait.as_secs(),
                    "recording upload failed; will retry");
            }
        }
        outcome
    }

    fn lock_retries(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Retry>> {
        // The map holds only timings: one left by a panicking holder is still good.
        self.inner
            .retries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `base`, doubled for each failure after the first, at most [`BACKOFF_CAP`].
fn backoff(base: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(BACKOFF_CAP)
}
