//! What the fake saw, shared by all its sessions: counters are atomics, lists sit behind a
//! mutex held only to push or copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::fake_common::stats::{lock, push_capped, AudioTime, Sessions};

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeStats {
    pub sessions_opened: u64,
    pub sessions_active: u64,
    /// Caller audio appended over all sessions, in milliseconds.
    pub appended_ms: u64,
    /// Responses created (audio or tool call), including those cancelled before any output.
    pub turns: u64,
    pub responses_cancelled: u64,
    /// Sessions configured with turn detection on (`server_vad` or `semantic_vad`): the
    /// fake decides when the caller's turn ends. A session that switches is counted in both.
    pub server_turn_sessions: u64,
    /// Sessions configured with `turn_detection: null`: the client commits the audio and
    /// asks for each response itself.
    pub client_turn_sessions: u64,
    /// `input_audio_buffer.commit`s accepted while turn detection was off.
    pub client_commits: u64,
    /// Of those, commits whose audio held no speech by the fake's energy detector (nothing
    /// goes into `commit_trailing_silence_ms` for them).
    pub client_commits_without_speech: u64,
    /// For each client commit with speech: stream time (ms) of non-speech audio appended
    /// after the caller's last audible sample, by the same energy notion as server_vad at
    /// the default threshold. Audio arrives in real time, so this is the client's
    /// end-of-speech → turn-decision time, less a few ms of transit (capped list).
    pub commit_trailing_silence_ms: Vec<u64>,
    pub truncates: Vec<Truncate>,
    /// Every client mistake the fake answered with an `error` event (harmless codes
    /// `response_cancel_not_active` and `conversation_already_has_active_response` excluded).
    pub protocol_errors: Vec<String>,
    /// Client event types in arrival order (capped).
    pub client_events: Vec<String>,
    /// Items the client added with `conversation.item.create` (messages, tool outputs), as
    /// JSON, in order (capped).
    pub client_items: Vec<String>,
}

impl FakeStats {
    /// What happened between `earlier` (a snapshot of the same fake) and this snapshot:
    /// counters are differences, lists hold only the newer entries (caps permitting), and
    /// `sessions_active` stays the current count.
    pub fn since(&self, earlier: &FakeStats) -> FakeStats {
        fn newer<T: Clone>(now: &[T], before: &[T]) -> Vec<T> {
            now.get(before.len()..).unwrap_or_default().to_vec()
        }
        FakeStats {
            sessions_opened: self.sessions_opened.saturating_sub(earlier.sessions_opened),
            sessions_active: self.sessions_active,
            appended_ms: self.appended_ms.saturating_sub(earlier.appended_ms),
            turns: self.turns.saturating_sub(earlier.turns),
            responses_cancelled: self
                .responses_cancelled
                .saturating_sub(earlier.responses_cancelled),
            server_turn_sessions: self
                .server_turn_sessions
                .saturating_sub(earlier.server_turn_sessions),
            client_turn_sessions: self
                .client_turn_sessions
                .saturating_sub(earlier.client_turn_sessions),
            client_commits: self.client_commits.saturating_sub(earlier.client_commits),
            client_commits_without_speech: self
                .client_commits_without_speech
                .saturating_sub(earlier.client_commits_without_speech),
            commit_trailing_silence_ms: newer(
                &self.commit_trailing_silence_ms,
                &earlier.commit_trailing_silence_ms,
            ),
            truncates: newer(&self.truncates, &earlier.truncates),
            protocol_errors: newer(&self.protocol_errors, &earlier.protocol_errors),
            client_events: newer(&self.client_events, &earlier.client_events),
            client_items: newer(&self.client_items, &earlier.client_items),
        }
    }
}

/// One `conversation.item.truncate` the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    pub item_id: String,
    pub audio_end_ms: u64,
    /// Audio the fake had generated for that item when the truncate came (0 if unknown).
    pub generated_ms: u64,
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    pub sessions: Sessions,
    appended: AudioTime,
    turns: AtomicU64,
    cancelled: AtomicU64,
    server_turn_sessions: AtomicU64,
    client_turn_sessions: AtomicU64,
    client_commits: AtomicU64,
    client_commits_without_speech: AtomicU64,
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    truncates: Vec<Truncate>,
    protocol_errors: Vec<String>,
    client_events: Vec<String>,
    client_items: Vec<String>,
    commit_trailing_silence_ms: Vec<u64>,
}

impl StatsRecorder {
    pub fn appended(&self, samples: usize, rate: u32) {
        self.appended.add(samples, rate);
    }

    pub fn turn_started(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    pub fn response_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    /// A session ran with turn detection on (`client_commits` = false) or off (true).
    pub fn turn_mode(&self, client_commits: bool) {
        let counter = if client_commits {
            &self.client_turn_sessions
        } else {
            &self.server_turn_sessions
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An accepted commit with turn detection off, and the silence after the last speech
    /// in it (`None`: it held no speech).
    pub fn client_commit(&self, trailing_silence_ms: Option<u64>) {
        self.client_commits.fetch_add(1, Ordering::Relaxed);
        match trailing_silence_ms {
            Some(ms) => push_capped(&mut lock(&self.lists).commit_trailing_silence_ms, ms),
            None => {
                self.client_commits_without_speech
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn truncate(&self, t: Truncate) {
        push_capped(&mut lock(&self.lists).truncates, t);
    }

    pub fn protocol_error(&self, message: String) {
        push_capped(&mut lock(&self.lists).protocol_errors, message);
    }

    pub fn client_event(&self, kind: &str) {
        push_capped(&mut lock(&self.lists).client_events, kind.to_string());
    }

    pub fn client_item(&self, json: String) {
        push_capped(&mut lock(&self.lists).client_items, json);
    }

    pub fn snapshot(&self) -> FakeStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let l = lock(&self.lists);
        FakeStats {
            sessions_opened: self.sessions.opened(),
            sessions_active: self.sessions.active(),
            appended_ms: self.appended.ms(),
            turns: load(&self.turns),
            responses_cancelled: load(&self.cancelled),
            server_turn_sessions: load(&self.server_turn_sessions),
            client_turn_sessions: load(&self.client_turn_sessions),
            client_commits: load(&self.client_commits),
            client_commits_without_speech: load(&self.client_commits_without_speech),
            commit_trailing_silence_ms: l.commit_trailing_silence_ms.clone(),
            truncates: l.truncates.clone(),
            protocol_errors: l.protocol_errors.clone(),
            client_events: l.client_events.clone(),
            client_items: l.client_items.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_and_snapshots() {
        let s = StatsRecorder::default();
        s.sessions.during(async {}).await;
        s.sessions.during(async {}).await;
        s.appended(480, 24_000);
        s.appended(480, 24_000);
        s.appended(160, 8_000);
        s.client_event("session.update");
        s.protocol_error("x".into());
        let snap = s.snapshot();
        assert_eq!(snap.sessions_opened, 2);
        assert_eq!(snap.sessions_active, 0);
        assert_eq!(snap.appended_ms, 60);
        assert_eq!(snap.client_events, vec!["session.update"]);
        assert_eq!(snap.protocol_errors.len(), 1);
    }

    #[test]
    fn counts_turn_modes_and_client_commits() {
        let s = StatsRecorder::default();
        s.turn_mode(true);
        s.turn_mode(true);
        s.turn_mode(false);
        s.client_commit(Some(420));
        s.client_commit(None);
        s.client_commit(Some(380));
        let snap = s.snapshot();
        assert_eq!(
            (snap.client_turn_sessions, snap.server_turn_sessions),
            (2, 1)
        );
        assert_eq!(
            (snap.client_commits, snap.client_commits_without_speech),
            (3, 1)
        );
        assert_eq!(snap.commit_trailing_silence_ms, vec![420, 380]);
        s.client_commit(Some(510));
        s.turn_mode(false);
        let later = s.snapshot().since(&snap);
        assert_eq!(later.commit_trailing_silence_ms, vec![510]);
        assert_eq!(
            (
                later.client_commits,
                later.server_turn_sessions,
                later.client_turn_sessions
            ),
            (1, 1, 0)
        );
    }
}
