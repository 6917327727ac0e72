//! What the fake saw, shared by all its sessions: counters are atomics, the rest sits
//! behind a mutex held only to push or copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

/// Longest kept list of texts or protocol errors.
const MAX_RECORDS: usize = 10_000;

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeStats {
    /// Signed URLs handed out.
    pub signed_urls: u64,
    /// Conversations (accepted WebSocket upgrades).
    pub sessions: u64,
    pub sessions_active: u64,
    /// Conversations whose first client message was not `conversation_initiation_client_data`.
    pub init_not_first: u64,
    pub caller_turns: u64,
    /// Answers started (first messages included).
    pub answers: u64,
    pub interruptions: u64,
    /// Stale chunks sent after an interruption (`late_audio_after_interrupt`).
    pub late_chunks: u64,
    pub pings_sent: u64,
    pub pongs_ok: u64,
    /// Pings not answered within `pong_timeout_ms` (each also a protocol error).
    pub missing_pongs: u64,
    pub tool_calls: u64,
    pub tool_results: u64,
    pub contextual_updates: u64,
    pub user_messages: u64,
    pub user_activities: u64,
    /// The last `conversation_config_override` received (`None`: never one).
    pub init_overrides: Option<Value>,
    /// The last `dynamic_variables` received.
    pub dynamic_variables: Option<Value>,
    pub contextual_update_texts: Vec<String>,
    pub user_message_texts: Vec<String>,
    /// Every accepted `client_tool_result`, whole.
    pub tool_result_messages: Vec<Value>,
    pub protocol_errors: Vec<String>,
    /// Caller audio received over all sessions, in milliseconds.
    pub audio_ms_received: u64,
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    signed_urls: AtomicU64,
    sessions: AtomicU64,
    active: AtomicU64,
    init_not_first: AtomicU64,
    caller_turns: AtomicU64,
    answers: AtomicU64,
    interruptions: AtomicU64,
    late_chunks: AtomicU64,
    pings_sent: AtomicU64,
    pongs_ok: AtomicU64,
    missing_pongs: AtomicU64,
    tool_calls: AtomicU64,
    user_activities: AtomicU64,
    audio_us: AtomicU64,
    rest: Mutex<Rest>,
}

#[derive(Default)]
struct Rest {
    init_overrides: Option<Value>,
    dynamic_variables: Option<Value>,
    contextual_update_texts: Vec<String>,
    user_message_texts: Vec<String>,
    tool_result_messages: Vec<Value>,
    protocol_errors: Vec<String>,
}

/// The counters that only count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    SignedUrl,
    InitNotFirst,
    CallerTurn,
    Answer,
    Interruption,
    LateChunk,
    PingSent,
    PongOk,
    ToolCall,
    UserActivity,
}

impl StatsRecorder {
    pub fn add(&self, what: Count) {
        let counter = match what {
            Count::SignedUrl => &self.signed_urls,
            Count::InitNotFirst => &self.init_not_first,
            Count::CallerTurn => &self.caller_turns,
            Count::Answer => &self.answers,
            Count::Interruption => &self.interruptions,
            Count::LateChunk => &self.late_chunks,
            Count::PingSent => &self.pings_sent,
            Count::PongOk => &self.pongs_ok,
            Count::ToolCall => &self.tool_calls,
            Count::UserActivity => &self.user_activities,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_closed(&self) {
        // Saturating: never wraps even if called once too often.
        let _ = self
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    pub fn audio_received(&self, samples: usize, rate: u32) {
        let us = samples as u64 * 1_000_000 / u64::from(rate.max(1));
        self.audio_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn missing_pong(&self, message: String) {
        self.missing_pongs.fetch_add(1, Ordering::Relaxed);
        self.protocol_error(message);
    }

    pub fn init(&self, overrides: Option<Value>, dynamic_variables: Option<Value>) {
        self.with_rest(|r| {
            if overrides.is_some() {
                r.init_overrides = overrides;
            }
            if dynamic_variables.is_some() {
                r.dynamic_variables = dynamic_variables;
            }
        });
    }

    pub fn contextual_update(&self, text: &str) {
        self.with_rest(|r| push_capped(&mut r.contextual_update_texts, text.to_string()));
    }

    pub fn user_message(&self, text: &str) {
        self.with_rest(|r| push_capped(&mut r.user_message_texts, text.to_string()));
    }

    pub fn tool_result(&self, message: Value) {
        self.with_rest(|r| push_capped(&mut r.tool_result_messages, message));
    }

    pub fn protocol_error(&self, message: String) {
        self.with_rest(|r| push_capped(&mut r.protocol_errors, message));
    }

    pub fn snapshot(&self) -> FakeStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = FakeStats {
            signed_urls: load(&self.signed_urls),
            sessions: load(&self.sessions),
            sessions_active: load(&self.active),
            init_not_first: load(&self.init_not_first),
            caller_turns: load(&self.caller_turns),
            answers: load(&self.answers),
            interruptions: load(&self.interruptions),
            late_chunks: load(&self.late_chunks),
            pings_sent: load(&self.pings_sent),
            pongs_ok: load(&self.pongs_ok),
            missing_pongs: load(&self.missing_pongs),
            tool_calls: load(&self.tool_calls),
            user_activities: load(&self.user_activities),
            audio_ms_received: load(&self.audio_us) / 1000,
            ..Default::default()
        };
        self.with_rest(|r| {
            s.init_overrides = r.init_overrides.clone();
            s.dynamic_variables = r.dynamic_variables.clone();
            s.contextual_updates = r.contextual_update_texts.len() as u64;
            s.contextual_update_texts = r.contextual_update_texts.clone();
            s.user_messages = r.user_message_texts.len() as u64;
            s.user_message_texts = r.user_message_texts.clone();
            s.tool_results = r.tool_result_messages.len() as u64;
            s.tool_result_messages = r.tool_result_messages.clone();
            s.protocol_errors = r.protocol_errors.clone();
        });
        s
    }

    fn with_rest(&self, f: impl FnOnce(&mut Rest)) {
        // A panic elsewhere while holding the lock must not hide the stats.
        let mut guard = match self.rest.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }
}

fn push_capped<T>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_RECORDS {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_and_snapshots() {
        let s = StatsRecorder::default();
        s.session_opened();
        s.session_opened();
        s.session_closed();
        s.add(Count::PingSent);
        s.add(Count::PongOk);
        s.audio_received(1600, 16_000);
        s.audio_received(800, 8_000);
        s.init(Some(json!({"agent": {}})), None);
        s.init(None, Some(json!({"caller_number": "1"})));
        s.user_message("[DTMF 5]");
        s.missing_pong("no pong".into());
        let snap = s.snapshot();
        assert_eq!((snap.sessions, snap.sessions_active), (2, 1));
        assert_eq!(
            (snap.pings_sent, snap.pongs_ok, snap.missing_pongs),
            (1, 1, 1)
        );
        assert_eq!(snap.audio_ms_received, 200);
        assert_eq!(snap.init_overrides, Some(json!({"agent": {}})));
        assert!(snap.dynamic_variables.is_some());
        assert_eq!(snap.user_messages, 1);
        assert_eq!(snap.protocol_errors, vec!["no pong"]);
    }
}
