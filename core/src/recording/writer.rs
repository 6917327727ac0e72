//! A writer thread: owns the files of the calls assigned to it and turns their messages
//! into stereo frames, file writes and flushes. The call tasks never wait for it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use serde_json::{json, Value};
use tracing::{debug, error, warn};

use super::facts::{write_summary, FactLog};
use super::ogg_opus::OggOpusFile;
use super::timeline::Timeline;
use super::wav::WavFile;
use super::{CallFacts, RecordingFormat, RecordingMetrics, RecordingPaths, WriteError};

/// Agent audio may be placed at most this far ahead of the caller (bounds memory per call).
const MAX_AGENT_AHEAD_SECS: u64 = 60;

pub(crate) enum Msg {
    Open(Box<OpenCall>),
    Caller {
        key: u64,
        at: u64,
        samples: Vec<i16>,
    },
    Agent {
        key: u64,
        at: u64,
        samples: Vec<i16>,
    },
    Cut {
        key: u64,
        at: u64,
    },
    /// A fact at caller position `at`.
    Fact {
        key: u64,
        at: u64,
        fact: Value,
    },
    /// The call ended (`end` is `None` when its recorder was dropped without `finish`).
    Close {
        key: u64,
        end: Option<Value>,
        dropped: u64,
    },
    /// Answered once everything queued before it is handled.
    Sync(Sender<()>),
    /// Blocks the thread until the sender is dropped or sends (tests fill a queue with it).
    #[cfg(test)]
    Stall(Receiver<()>),
}

pub(crate) struct OpenCall {
    pub key: u64,
    pub facts: CallFacts,
    pub paths: RecordingPaths,
    /// Data messages of this call queued and not handled yet.
    pub queued: Arc<AtomicUsize>,
}

/// What every call of a thread is written with.
#[derive(Debug, Clone)]
pub(crate) struct WriterConfig {
    pub format: RecordingFormat,
    pub opus_bitrate: u32,
    pub opus_complexity: u8,
    pub flush_ms: u32,
}

/// Runs until every sender is gone, then closes whatever calls are still open.
pub(crate) fn run(
    rx: Receiver<Msg>,
    config: WriterConfig,
    metrics: Arc<RecordingMetrics>,
    assigned: Arc<AtomicUsize>,
) {
    let mut calls: HashMap<u64, CallWriter> = HashMap::new();
    let mut stereo = Vec::new();
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Open(open) => {
                let call = CallWriter::open(&open, &config, metrics.clone());
                calls.insert(open.key, call);
            }
            Msg::Caller { key, at, samples } => {
                if let Some(call) = calls.get_mut(&key) {
                    call.caller(at, &samples, &mut stereo);
                    call.handled();
                }
            }
            Msg::Agent { key, at, samples } => {
                if let Some(call) = calls.get_mut(&key) {
                    call.agent(at, &samples);
                    call.handled();
                }
            }
            Msg::Cut { key, at } => {
                if let Some(call) = calls.get_mut(&key) {
                    call.timeline.cut(at);
                    call.handled();
                }
            }
            Msg::Fact { key, at, fact } => {
                if let Some(call) = calls.get_mut(&key) {
                    call.fact(at, fact);
                    call.handled();
                }
            }
            Msg::Close { key, end, dropped } => {
                if let Some(call) = calls.remove(&key) {
                    call.close(end, dropped, &mut stereo);
                    assigned.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Msg::Sync(done) => {
                let _ = done.send(());
            }
            #[cfg(test)]
            Msg::Stall(until) => {
                let _ = until.recv();
            }
        }
    }
    for (_, call) in calls.drain() {
        call.close(None, 0, &mut stereo);
    }
}

enum AudioFile {
    Wav(WavFile),
    Opus(Box<OggOpusFile>),
}

impl AudioFile {
    fn create(
        config: &WriterConfig,
        paths: &RecordingPaths,
        facts: &CallFacts,
    ) -> Result<Self, WriteError> {
        std::fs::create_dir_all(paths.folder())?;
        Ok(match config.format {
            RecordingFormat::Wav => AudioFile::Wav(WavFile::create(&paths.audio, facts.rate, 2)?),
            RecordingFormat::Opus => AudioFile::Opus(Box::new(OggOpusFile::create(
                &paths.audio,
                facts.rate,
                config.opus_bitrate,
                config.opus_complexity,
                ogg_serial(&facts.call_id),
            )?)),
        })
    }

    fn write(&mut self, stereo: &[i16]) -> Result<(), WriteError> {
        match self {
            AudioFile::Wav(w) => {
                w.write(stereo);
                Ok(())
            }
            AudioFile::Opus(o) => o.write(stereo),
        }
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        match self {
            AudioFile::Wav(w) => w.flush(),
            AudioFile::Opus(o) => o.flush(),
        }
    }

    fn finish(self) -> Result<(), WriteError> {
        match self {
            AudioFile::Wav(w) => w.finish(),
            AudioFile::Opus(o) => o.finish(),
        }
    }
}

/// One call's state on its writer thread.
struct CallWriter {
    facts: CallFacts,
    paths: RecordingPaths,
    queued: Arc<AtomicUsize>,
    timeline: Timeline,
    /// `None` once the audio file failed: the rest of the call is not recorded.
    audio: Option<AudioFile>,
    fact_log: FactLog,
    format: RecordingFormat,
    /// Frames to write between flushes, and written since the last one.
    flush_every: u64,
    unflushed: u64,
    discarded_agent_samples: u64,
    errors: u64,
    wav_full_logged: bool,
    /// False when a file of this call already existed (a repeated call id): then this call
    /// must not write the summary over the other call's.
    owns_files: bool,
    metrics: Arc<RecordingMetrics>,
}

impl CallWriter {
    fn open(open: &OpenCall, config: &WriterConfig, metrics: Arc<RecordingMetrics>) -> Self {
        let rate = u64::from(open.facts.rate);
        let mut call = CallWriter {
            facts: open.facts.clone(),
            paths: open.paths.clone(),
            queued: open.queued.clone(),
            timeline: Timeline::new((rate * MAX_AGENT_AHEAD_SECS) as usize),
            audio: None,
            fact_log: FactLog::in_memory(),
            format: config.format,
            flush_every: (rate * u64::from(config.flush_ms) / 1000).max(1),
            unflushed: 0,
            discarded_agent_samples: 0,
            errors: 0,
            wav_full_logged: false,
            owns_files: true,
            metrics,
        };
        match AudioFile::create(config, &call.paths, &call.facts) {
            Ok(audio) => call.audio = Some(audio),
            Err(e) => call.create_failed("create the audio file", &e),
        }
        match FactLog::create(&call.paths.facts, &call.facts) {
            Ok(log) => call.fact_log = log,
            Err(e) => call.create_failed("create the facts file", &e),
        }
        call
    }

    /// One data message of this call is done: room for another in its queue.
    fn handled(&self) {
        self.queued.fetch_sub(1, Ordering::Release);
    }

    fn caller(&mut self, at: u64, samples: &[i16], stereo: &mut Vec<i16>) {
        stereo.clear();
        self.timeline.caller(at, samples, stereo);
        self.write_audio(stereo);
    }

    fn agent(&mut self, at: u64, samples: &[i16]) {
        let discarded = self.timeline.agent(at, samples);
        if discarded > 0 {
            debug!(call_id = %self.facts.call_id, discarded, "agent audio outside the recording window");
            self.discarded_agent_samples += discarded as u64;
        }
    }

    fn fact(&mut self, at: u64, fact: Value) {
        let at_ms = at.saturating_mul(1000) / u64::from(self.facts.rate);
        if let Err(e) = self.fact_log.add(at_ms, fact) {
            self.failed("write a fact", &e);
        }
    }

    fn write_audio(&mut self, stereo: &[i16]) {
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let mut result = audio.write(stereo);
        self.unflushed += stereo.len() as u64 / 2;
        if result.is_ok() && self.unflushed >= self.flush_every {
            self.unflushed = 0;
            result = audio.flush();
        }
        if let AudioFile::Wav(w) = audio {
            if w.is_full() && !self.wav_full_logged {
                self.wav_full_logged = true;
                warn!(call_id = %self.facts.call_id, "WAV size limit (4 GiB) reached: the rest of the call is not recorded");
            }
        }
        if let Err(e) = result {
            self.audio = None;
            self.failed("write audio", &e);
        }
    }

    fn close(mut self, end: Option<Value>, dropped: u64, stereo: &mut Vec<i16>) {
        stereo.clear();
        self.timeline.drain_agent(stereo);
        self.write_audio(stereo);
        if let Some(audio) = self.audio.take() {
            if let Err(e) = audio.finish() {
                self.failed("finish the audio file", &e);
            }
        }
        let frames = self.timeline.position();
        let summary = json!({
            "call": self.facts,
            "finished": end.is_some(),
            "end": end,
            "format": self.format,
            "audio_ms": frames * 1000 / u64::from(self.facts.rate),
            "audio_frames": frames,
            "dropped_messages": dropped,
            "discarded_agent_samples": self.discarded_agent_samples,
            "write_errors": self.errors,
            "facts": self.fact_log.facts(),
            "facts_omitted": self.fact_log.omitted(),
            "files": {
                "audio": file_name(&self.paths.audio),
                "facts": file_name(&self.paths.facts),
            },
        });
        if !self.owns_files {
            error!(call_id = %self.facts.call_id, summary = %self.paths.summary.display(), "recording: call id used twice; this call's summary is not written");
        } else if let Err(e) = write_summary(&self.paths.summary, &summary) {
            self.failed("write the summary", &e);
        }
        self.metrics.calls_finished.inc();
        self.metrics.calls_active.dec();
    }

    fn create_failed(&mut self, what: &str, e: &WriteError) {
        if matches!(e, WriteError::Io(io) if io.kind() == std::io::ErrorKind::AlreadyExists) {
            self.owns_files = false;
        }
        self.failed(what, e);
    }

    /// Logs the first error of a call loudly and the rest quietly; counts them all.
    fn failed(&mut self, what: &str, e: &WriteError) {
        self.errors += 1;
        self.metrics.write_errors.inc();
        if self.errors == 1 {
            error!(call_id = %self.facts.call_id, folder = %self.paths.folder().display(), error = %e, "recording: cannot {what}");
        } else {
            debug!(call_id = %self.facts.call_id, error = %e, "recording: cannot {what}");
        }
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A stable Ogg stream serial number per call.
fn ogg_serial(call_id: &str) -> u32 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    call_id.hash(&mut h);
    h.finish() as u32
}
