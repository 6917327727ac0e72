//! Per-call stereo recordings (caller left, agent right) with the call's facts beside them.
//!
//! [`Recorders`] is the shared service: a few writer threads (one per core, at most four)
//! that own the files. Each call gets a [`CallRecorder`] whose methods only copy samples
//! into a message for its writer thread: they never block, never touch a file, and when a
//! call's queue is full ([`QUEUE_CAPACITY`] messages) they count a drop and go on. Dropped
//! caller audio becomes silence, so the two channels stay aligned.
//!
//! Alignment: the caller channel is the time base (caller sample n is frame n); agent audio
//! is placed at the caller-timeline position the bridge gives and waits until the caller
//! audio reaches it; a barge-in cut drops agent audio that was placed but never played.
//!
//! Crash safety: every `flush_ms` of audio the writer appends it to the file and makes the
//! file whole (WAV: header sizes rewritten; Ogg/Opus: page ended), and facts are written
//! one line at a time as they come. A process killed at any point leaves playable audio up
//! to the last flush and every fact written so far. (Data is in the kernel, not fsynced:
//! process crashes are covered, power loss is not.)
//!
//! Files: `{dir}/{tenant}/{YYYY-MM-DD}/{call_id}.wav|.opus` (the audio), `.jsonl` (first
//! line the [`CallFacts`], then one line per fact with its position `at_ms`), and `.json`
//! (the summary: facts, end, duration, drops), written at the end of the call. Dates are
//! UTC; tenant and call id are reduced to `[A-Za-z0-9._-]` ([`paths::safe_component`]).
//!
//! Opus: the two channels are coded as two mono streams (no leak between the parties),
//! at `opus_bitrate` for both. The default complexity is 1, for capacity. Encoding a 20 ms
//! frame of 16 kHz stereo speech took, on the 2-core development machine (`opus` group of
//! `benches/front_end.rs`): about 0.1 ms at complexity 0 or 1, 0.2 ms at 3, 0.3 ms at 5,
//! 0.6 ms at 10; WAV about 2 µs. At complexity 5 one writer thread keeps up with only
//! ~70 calls (0.3 ms × 50 frames/s each), so two cores could not record a few hundred;
//! at 1 a thread keeps up with ~180. What it costs: PESQ-WB on synthesized speech at
//! 24 kbit/s was 2.9 at complexity 1, 3.2 at 5, 3.4 at 10 (0 was 2.8, 3 was 2.7).
//! Raise it where there is CPU to spare.
//! Calls at a rate Opus does not take (32 kHz…) are resampled to the next Opus rate up
//! (see [`ogg_opus`]).

mod clock;
mod error;
mod facts;
mod metrics;
pub mod ogg_opus;
mod opus_streams;
pub mod paths;
mod settings;
mod timeline;
pub mod upload;
pub mod wav;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use tracing::warn;

pub use error::{RecordingError, WriteError};
pub use facts::CallFacts;
pub use metrics::RecordingMetrics;
pub use paths::RecordingPaths;
pub use settings::{RecordingFormat, RecordingSettings, DEFAULT_OPUS_COMPLEXITY};

use writer::{Msg, OpenCall, WriterConfig};

/// Messages a call may have waiting for its writer thread before it drops more: at least
/// 5 s of 20 ms frames both ways, so only a stalled disk makes a call drop.
pub const QUEUE_CAPACITY: usize = 512;

/// Lowest and highest call rates recorded.
const MIN_RATE: u32 = 8000;
const MAX_RATE: u32 = 48000;

/// The recording service, shared by every call (cheap to clone).
#[derive(Clone)]
pub struct Recorders {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RecordingSettings,
    writers: Vec<WriterThread>,
    next_key: AtomicU64,
    queue_capacity: usize,
    metrics: Arc<RecordingMetrics>,
}

struct WriterThread {
    tx: Sender<Msg>,
    /// Calls assigned to this thread and not closed yet.
    assigned: Arc<AtomicUsize>,
}

impl Recorders {
    /// Checks the settings and, when recording is enabled, creates `dir`, checks it can be
    /// written and starts the writer threads. When disabled, [`Recorders::start`] returns
    /// [`RecordingError::Disabled`].
    pub fn new(settings: RecordingSettings) -> Result<Self, RecordingError> {
        Self::with_queue_capacity(settings, QUEUE_CAPACITY)
    }

    fn with_queue_capacity(
        settings: RecordingSettings,
        queue_capacity: usize,
    ) -> Result<Self, RecordingError> {
        settings.validate()?;
        let metrics = Arc::new(RecordingMetrics::default());
        let mut writers = Vec::new();
        if settings.enabled {
            check_writable(&settings.dir)?;
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4);
            let config = WriterConfig {
                format: settings.format,
                opus_bitrate: settings.opus_bitrate,
                opus_complexity: settings.opus_complexity,
                flush_ms: settings.flush_ms,
            };
            for i in 0..threads {
                let (tx, rx) = mpsc::channel();
                let assigned = Arc::new(AtomicUsize::new(0));
                let (config, metrics, count) = (config.clone(), metrics.clone(), assigned.clone());
                std::thread::Builder::new()
                    .name(format!("recording-{i}"))
                    .spawn(move || writer::run(rx, config, metrics, count))
                    .map_err(RecordingError::Spawn)?;
                writers.push(WriterThread { tx, assigned });
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                writers,
                next_key: AtomicU64::new(0),
                queue_capacity,
                metrics,
            }),
        })
    }

    pub fn is_enabled(&self) -> bool {
        !self.inner.writers.is_empty()
    }

    pub fn settings(&self) -> &RecordingSettings {
        &self.inner.settings
    }

    pub fn metrics(&self) -> &RecordingMetrics {
        &self.inner.metrics
    }

    /// Starts recording a call on the least busy writer thread. Does no file I/O: the files
    /// are created by the writer thread, and a failure there is logged and counted.
    pub fn start(&self, call: CallFacts) -> Result<CallRecorder, RecordingError> {
        let writer = self
            .inner
            .writers
            .iter()
            .min_by_key(|w| w.assigned.load(Ordering::Relaxed))
            .ok_or(RecordingError::Disabled)?;
        let format = self.inner.settings.format;
        let rate_ok = (MIN_RATE..=MAX_RATE).contains(&call.rate)
            && (format == RecordingFormat::Wav || ogg_opus::supports_rate(call.rate));
        if !rate_ok {
            return Err(RecordingError::UnsupportedRate {
                rate: call.rate,
                format: format.extension(),
            });
        }
        let paths = RecordingPaths::new(
            &self.inner.settings.dir,
            &call.tenant,
            &call.call_id,
            call.started_at,
            format,
        );
        let key = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
        let queued = Arc::new(AtomicUsize::new(0));
        let open = OpenCall {
            key,
            facts: call,
            paths: paths.clone(),
            queued: queued.clone(),
        };
        writer.assigned.fetch_add(1, Ordering::Relaxed);
        if writer.tx.send(Msg::Open(Box::new(open))).is_err() {
            writer.assigned.fetch_sub(1, Ordering::Relaxed);
            return Err(RecordingError::WriterGone);
        }
        self.inner.metrics.calls_started.inc();
        self.inner.metrics.calls_active.inc();
        Ok(CallRecorder {
            key,
            tx: writer.tx.clone(),
            queued,
            capacity: self.inner.queue_capacity,
            caller_position: 0,
            dropped: 0,
            closed: false,
            paths,
            metrics: self.inner.metrics.clone(),
        })
    }

    /// Blocks until every writer thread has handled everything queued before this call:
    /// finished calls then have all their files. For shutdown and tests, never on a call task.
    pub fn drain(&self) {
        let answers: Vec<_> = self
            .inner
            .writers
            .iter()
            .filter_map(|w| {
                let (done, answer) = mpsc::channel();
                w.tx.send(Msg::Sync(done)).ok().map(|_| answer)
            })
            .collect();
        for answer in answers {
            let _ = answer.recv();
        }
    }
}

impl std::fmt::Debug for Recorders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorders")
            .field("settings", &self.inner.settings)
            .field("writer_threads", &self.inner.writers.len())
            .finish()
    }
}

/// Creates `dir` and proves a file can be written in it, so a bad setting fails at start
/// with one clear error instead of once per call.
fn check_writable(dir: &Path) -> Result<(), RecordingError> {
    let err = |source| RecordingError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let probe = dir.join(format!(
        ".write-check-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&probe, b"ok").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)?;
    Ok(())
}

/// One call's recorder, owned by the call task. Every method is non-blocking.
pub struct CallRecorder {
    key: u64,
    tx: Sender<Msg>,
    /// Data messages sent and not yet handled by the writer thread.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// Caller samples passed in so far: the position of the next caller sample.
    caller_position: u64,
    dropped: u64,
    closed: bool,
    paths: RecordingPaths,
    metrics: Arc<RecordingMetrics>,
}

impl CallRecorder {
    /// Caller audio at the call rate, in arrival order.
    pub fn caller(&mut self, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let at = self.caller_position;
        self.caller_position += samples.len() as u64;
        if self.has_room() {
            self.send(Msg::Caller {
                key: self.key,
                at,
                samples: samples.to_vec(),
            });
        }
    }

    /// Agent audio (call rate) to place at caller-timeline position `at`.
    pub fn agent(&mut self, at: u64, samples: &[i16]) {
        if !samples.is_empty() && self.has_room() {
            self.send(Msg::Agent {
                key: self.key,
                at,
                samples: samples.to_vec(),
            });
        }
    }

    /// Barge-in: agent audio placed at or after `at` was never played.
    pub fn agent_cut(&mut self, at: u64) {
        if self.has_room() {
            self.send(Msg::Cut { key: self.key, at });
        }
    }

    /// A per-call fact, appended as one JSON line with its position (`at_ms`: the caller
    /// audio passed in so far) added.
    pub fn fact(&mut self, fact: serde_json::Value) {
        if self.has_room() {
            self.send(Msg::Fact {
                key: self.key,
                at: self.caller_position,
                fact,
            });
        }
    }

    /// The call ended normally: the writer writes the rest of both channels (agent audio
    /// beyond the caller's end too), closes the files and writes the summary.
    pub fn finish(mut self, end: serde_json::Value) {
        self.close(Some(end));
    }

    /// Where this call's files are (created by the writer thread shortly after `start`).
    pub fn paths(&self) -> &RecordingPaths {
        &self.paths
    }

    /// Messages dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Room in the queue for one more data message; counts a drop when there is none.
    fn has_room(&mut self) -> bool {
        // Only this recorder adds to `queued`, so a load then an add cannot overshoot.
        if self.queued.load(Ordering::Acquire) < self.capacity {
            self.queued.fetch_add(1, Ordering::AcqRel);
            true
        } else {
            self.count_drop();
            false
        }
    }

    fn send(&mut self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            if self.dropped == 0 {
                warn!(audio = %self.paths.audio.display(), "recording writer thread is gone");
            }
            self.count_drop();
        }
    }

    fn count_drop(&mut self) {
        self.dropped += 1;
        self.metrics.dropped_messages.inc();
    }

    fn close(&mut self, end: Option<serde_json::Value>) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let _ = self.tx.send(Msg::Close {
            key: self.key,
            end,
            dropped: self.dropped,
        });
    }

    /// Blocks this call's writer thread until the returned sender sends or is dropped.
    #[cfg(test)]
    pub(crate) fn stall_writer(&self) -> Sender<()> {
        let (release, wait) = mpsc::channel();
        let _ = self.tx.send(Msg::Stall(wait));
        release
    }
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder")
            .field("audio", &self.paths.audio)
            .field("caller_position", &self.caller_position)
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl Drop for CallRecorder {
    /// A call task that ends without `finish` (a panic) still gets its files closed.
    fn drop(&mut self) {
        self.close(None);
    }
}
