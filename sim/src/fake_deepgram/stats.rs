//! What the fake saw, shared by all its streams and requests: counters are atomics, the
//! rest sits behind a mutex held only to push or copy.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::fake_common::stats::{lock, push_capped, AudioTime, Counters, Sessions};

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeDeepgramStats {
    /// Live streams upgraded.
    pub sessions: u64,
    pub sessions_active: u64,
    /// Upgrades and requests refused (auth, parameters, injected status).
    pub refused: u64,
    /// Caller audio received over all streams, in ms.
    pub audio_ms_received: u64,
    pub binary_frames: u64,
    /// Text frames from clients (control messages, valid or not).
    pub text_messages: u64,
    pub keepalives: u64,
    pub finalizes: u64,
    pub close_streams: u64,
    /// `Results` messages sent (interim and final).
    pub results_sent: u64,
    pub interims_sent: u64,
    /// `is_final: true` results sent (empty ones included).
    pub finals_sent: u64,
    pub speech_finals_sent: u64,
    pub utterance_ends_sent: u64,
    pub speech_started_sent: u64,
    /// Streams closed with 1011 for want of audio or KeepAlive (`NET-0001`).
    pub idle_closes: u64,
    pub prerecorded_requests: u64,
    /// Audio of the accepted pre-recorded WAV uploads, in ms.
    pub prerecorded_audio_ms: u64,
    /// The `url` of every accepted pre-recorded JSON request, in order (capped).
    pub prerecorded_urls: Vec<String>,
    /// Query of the last accepted live stream or pre-recorded request.
    pub last_query: BTreeMap<String, String>,
    /// Every client mistake the fake noticed (capped).
    pub protocol_errors: Vec<String>,
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    pub sessions: Sessions,
    counts: Counters<{ Count::ALL }>,
    audio: AudioTime,
    uploaded: AudioTime,
    rest: Mutex<Rest>,
}

#[derive(Default)]
struct Rest {
    last_query: BTreeMap<String, String>,
    protocol_errors: Vec<String>,
    urls: Vec<String>,
}

/// Counters that only go up by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Refused,
    BinaryFrame,
    TextMessage,
    KeepAlive,
    Finalize,
    CloseStream,
    Result,
    Interim,
    Final,
    SpeechFinal,
    UtteranceEnd,
    SpeechStarted,
    IdleClose,
    Prerecorded,
}

impl Count {
    const ALL: usize = Count::Prerecorded as usize + 1;
}

impl StatsRecorder {
    pub fn add(&self, what: Count) {
        self.counts.add(what as usize);
    }

    pub fn audio_received(&self, samples: usize, rate: u32) {
        self.audio.add(samples, rate);
    }

    /// A pre-recorded upload of `samples` per channel at `rate`.
    pub fn uploaded(&self, samples: usize, rate: u32) {
        self.uploaded.add(samples, rate);
    }

    /// A pre-recorded request naming its audio by URL.
    pub fn url(&self, url: String) {
        push_capped(&mut lock(&self.rest).urls, url);
    }

    pub fn query(&self, query: BTreeMap<String, String>) {
        lock(&self.rest).last_query = query;
    }

    pub fn protocol_error(&self, message: String) {
        push_capped(&mut lock(&self.rest).protocol_errors, message);
    }

    pub fn snapshot(&self) -> FakeDeepgramStats {
        let get = |c: Count| self.counts.get(c as usize);
        let rest = lock(&self.rest);
        FakeDeepgramStats {
            sessions: self.sessions.opened(),
            sessions_active: self.sessions.active(),
            refused: get(Count::Refused),
            audio_ms_received: self.audio.ms(),
            binary_frames: get(Count::BinaryFrame),
            text_messages: get(Count::TextMessage),
            keepalives: get(Count::KeepAlive),
            finalizes: get(Count::Finalize),
            close_streams: get(Count::CloseStream),
            results_sent: get(Count::Result),
            interims_sent: get(Count::Interim),
            finals_sent: get(Count::Final),
            speech_finals_sent: get(Count::SpeechFinal),
            utterance_ends_sent: get(Count::UtteranceEnd),
            speech_started_sent: get(Count::SpeechStarted),
            idle_closes: get(Count::IdleClose),
            prerecorded_requests: get(Count::Prerecorded),
            prerecorded_audio_ms: self.uploaded.ms(),
            prerecorded_urls: rest.urls.clone(),
            last_query: rest.last_query.clone(),
            protocol_errors: rest.protocol_errors.clone(),
        }
    }
}
