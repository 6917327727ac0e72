//! What the fake saw, shared by all its sessions: counters are atomics; the protocol
//! errors and the per-session records sit behind a mutex held only to push or copy.

use std::sync::Mutex;

use serde_json::Value;

use crate::fake_common::stats::{lock, push_capped, AudioTime, Counters, Sessions, MAX_RECORDS};

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeTtsStats {
    /// Streams (accepted upgrades).
    pub sessions: u64,
    pub sessions_active: u64,
    /// Upgrades refused (bad path, key, voice, model, format, parameters or a fault).
    pub refused_upgrades: u64,
    pub bos: u64,
    pub eos: u64,
    /// Text chunks received (BOS, EOS and keep-alives not counted).
    pub texts: u64,
    pub flushes: u64,
    /// Lone `" "` messages with nothing buffered.
    pub keep_alives: u64,
    /// Texts spoken (one per flush, schedule step or EOS with text buffered).
    pub generations: u64,
    pub audio_messages: u64,
    pub bytes_sent: u64,
    pub audio_ms_sent: u64,
    /// `isFinal` messages sent (streams that ended normally).
    pub finals: u64,
    /// Streams the client closed (or dropped) before the fake sent `isFinal`.
    pub closed_by_client: u64,
    /// Streams closed for `inactivity_timeout`.
    pub inactivity_closes: u64,
    /// Every client mistake (capped).
    pub protocol_errors: Vec<String>,
    /// One record per stream, in the order they opened (capped).
    pub per_session: Vec<SessionStats>,
}

/// What one stream saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStats {
    pub voice_id: String,
    pub model_id: String,
    pub output_format: String,
    pub language_code: Option<String>,
    pub inactivity_timeout_s: u64,
    /// The key came in the `xi-api-key` header (else in the first message).
    pub key_in_header: bool,
    pub bos: bool,
    pub eos: bool,
    /// Client messages after BOS.
    pub messages: u64,
    /// Text chunks, as received (capped).
    pub texts: Vec<String>,
    pub flushes: u64,
    pub keep_alives: u64,
    pub voice_settings: Option<Value>,
    pub chunk_length_schedule: Vec<usize>,
    pub audio_messages: u64,
    pub bytes_sent: u64,
    pub final_sent: bool,
    pub closed_by_client: bool,
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    pub sessions: Sessions,
    counts: Counters<{ Count::ALL }>,
    bytes: std::sync::atomic::AtomicU64,
    audio: AudioTime,
    rest: Mutex<Rest>,
}

#[derive(Default)]
struct Rest {
    protocol_errors: Vec<String>,
    per_session: Vec<SessionStats>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    RefusedUpgrade,
    Bos,
    Eos,
    Text,
    Flush,
    KeepAlive,
    Generation,
    AudioMessage,
    Final,
    ClosedByClient,
    InactivityClose,
}

impl Count {
    const ALL: usize = Count::InactivityClose as usize + 1;
}

impl StatsRecorder {
    pub fn add(&self, what: Count) {
        self.counts.add(what as usize);
    }

    pub fn protocol_error(&self, message: String) {
        push_capped(&mut lock(&self.rest).protocol_errors, message);
    }

    /// Starts a stream's record; returns its index (past the cap: not kept).
    pub fn new_session(&self, record: SessionStats) -> usize {
        let mut rest = lock(&self.rest);
        let index = rest.per_session.len();
        push_capped(&mut rest.per_session, record);
        index.min(MAX_RECORDS)
    }

    /// Updates record `index` (nothing past the cap).
    pub fn session(&self, index: usize, update: impl FnOnce(&mut SessionStats)) {
        if let Some(s) = lock(&self.rest).per_session.get_mut(index) {
            update(s);
        }
    }

    /// One `audio` message of `bytes` (`samples` at `rate`) went out.
    pub fn audio_sent(&self, index: usize, bytes: u64, samples: usize, rate: u32) {
        self.add(Count::AudioMessage);
        self.bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        self.audio.add(samples, rate);
        self.session(index, |s| {
            s.audio_messages += 1;
            s.bytes_sent += bytes;
        });
    }

    pub fn snapshot(&self) -> FakeTtsStats {
        let get = |c: Count| self.counts.get(c as usize);
        let rest = lock(&self.rest);
        FakeTtsStats {
            sessions: self.sessions.opened(),
            sessions_active: self.sessions.active(),
            refused_upgrades: get(Count::RefusedUpgrade),
            bos: get(Count::Bos),
            eos: get(Count::Eos),
            texts: get(Count::Text),
            flushes: get(Count::Flush),
            keep_alives: get(Count::KeepAlive),
            generations: get(Count::Generation),
            audio_messages: get(Count::AudioMessage),
            bytes_sent: self.bytes.load(std::sync::atomic::Ordering::Relaxed),
            audio_ms_sent: self.audio.ms(),
            finals: get(Count::Final),
            closed_by_client: get(Count::ClosedByClient),
            inactivity_closes: get(Count::InactivityClose),
            protocol_errors: rest.protocol_errors.clone(),
            per_session: rest.per_session.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_records_and_snapshots() {
        let s = StatsRecorder::default();
        s.sessions.during(async {}).await;
        let i = s.new_session(SessionStats {
            voice_id: "v".into(),
            ..Default::default()
        });
        s.add(Count::Bos);
        s.session(i, |r| r.texts.push("Olá ".into()));
        s.audio_sent(i, 3200, 1600, 16_000);
        s.audio_sent(i, 800, 800, 8_000);
        s.session(99, |r| r.bos = true); // no such record: ignored
        s.protocol_error("bad".into());
        let snap = s.snapshot();
        assert_eq!((snap.sessions, snap.sessions_active, snap.bos), (1, 0, 1));
        assert_eq!(
            (snap.audio_messages, snap.bytes_sent, snap.audio_ms_sent),
            (2, 4000, 200)
        );
        assert_eq!(snap.per_session.len(), 1);
        assert_eq!(snap.per_session[0].texts, vec!["Olá "]);
        assert_eq!(
            (
                snap.per_session[0].audio_messages,
                snap.per_session[0].bytes_sent
            ),
            (2, 4000)
        );
        assert_eq!(snap.protocol_errors, vec!["bad"]);
    }
}
