//! What the fake saw, shared by all its requests: counters are atomics, lists sit behind
//! a mutex held only to push or copy (and stop growing at a cap).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::fake_common::stats::{lock, push_capped, AudioTime, Counters};

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeOpenAiAudioStats {
    /// Transcription requests answered with a text.
    pub transcriptions: u64,
    /// Speech requests whose audio started.
    pub speech_requests: u64,
    /// Requests refused (auth, validation, injected status).
    pub refused: u64,
    /// Requests without the right `Authorization: Bearer` key.
    pub auth_failures: u64,
    /// Most transcription requests in flight at once.
    pub max_in_flight_transcriptions: u64,
    /// Audio uploaded for transcription, in ms.
    pub audio_ms_received: u64,
    /// Speech audio sent, in ms.
    pub audio_ms_sent: u64,
    /// Per accepted transcription: model, language (if sent), response_format, filename.
    pub models: Vec<String>,
    pub languages: Vec<Option<String>>,
    pub response_formats: Vec<String>,
    pub filenames: Vec<String>,
    /// The `input` of every accepted speech request.
    pub speech_texts: Vec<String>,
    /// The last accepted speech request body, whole.
    pub last_speech_request: Option<Value>,
    /// Why each refused request was refused (capped).
    pub protocol_errors: Vec<String>,
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    counts: Counters<{ Count::ALL }>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    received: AudioTime,
    sent: AudioTime,
    rest: Mutex<Rest>,
}

#[derive(Default)]
struct Rest {
    models: Vec<String>,
    languages: Vec<Option<String>>,
    response_formats: Vec<String>,
    filenames: Vec<String>,
    speech_texts: Vec<String>,
    last_speech_request: Option<Value>,
    protocol_errors: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Transcription,
    Speech,
    Refused,
    AuthFailure,
}

impl Count {
    const ALL: usize = Count::AuthFailure as usize + 1;
}

/// A transcription in flight; dropping it ends it.
pub(crate) struct InFlight<'a>(&'a StatsRecorder);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }
}

/// One accepted transcription, as recorded.
pub(crate) struct TranscriptionSeen {
    pub model: String,
    pub language: Option<String>,
    pub response_format: String,
    pub filename: String,
}

impl StatsRecorder {
    pub fn add(&self, what: Count) {
        self.counts.add(what as usize);
    }

    pub fn begin_transcription(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(self)
    }

    pub fn refused(&self, why: String) {
        self.add(Count::Refused);
        push_capped(&mut lock(&self.rest).protocol_errors, why);
    }

    pub fn transcription(&self, seen: TranscriptionSeen, samples: usize, rate: u32) {
        self.add(Count::Transcription);
        self.received.add(samples, rate);
        let mut r = lock(&self.rest);
        push_capped(&mut r.models, seen.model);
        push_capped(&mut r.languages, seen.language);
        push_capped(&mut r.response_formats, seen.response_format);
        push_capped(&mut r.filenames, seen.filename);
    }

    pub fn speech(&self, request: Value, text: String) {
        self.add(Count::Speech);
        let mut r = lock(&self.rest);
        push_capped(&mut r.speech_texts, text);
        r.last_speech_request = Some(request);
    }

    pub fn audio_sent(&self, samples: usize, rate: u32) {
        self.sent.add(samples, rate);
    }

    pub fn snapshot(&self) -> FakeOpenAiAudioStats {
        let get = |c: Count| self.counts.get(c as usize);
        let r = lock(&self.rest);
        FakeOpenAiAudioStats {
            transcriptions: get(Count::Transcription),
            speech_requests: get(Count::Speech),
            refused: get(Count::Refused),
            auth_failures: get(Count::AuthFailure),
            max_in_flight_transcriptions: self.max_in_flight.load(Ordering::Relaxed),
            audio_ms_received: self.received.ms(),
            audio_ms_sent: self.sent.ms(),
            models: r.models.clone(),
            languages: r.languages.clone(),
            response_formats: r.response_formats.clone(),
            filenames: r.filenames.clone(),
            speech_texts: r.speech_texts.clone(),
            last_speech_request: r.last_speech_request.clone(),
            protocol_errors: r.protocol_errors.clone(),
        }
    }
}
