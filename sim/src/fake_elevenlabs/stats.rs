//! What the fake saw, shared by all its sessions: counters are atomics, the rest sits
//! behind a mutex held only to push or copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::fake_common::stats::{lock, push_capped, AudioTime, Counters, Sessions};

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
    pub sessions: Sessions,
    counts: Counters<{ Count::ALL }>,
    missing_pongs: AtomicU64,
    audio: AudioTime,
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

impl Count {
    const ALL: usize = Count::UserActivity as usize + 1;
}

impl StatsRecorder {
    pub fn add(&self, what: Count) {
        self.counts.add(what as usize);
    }

    pub fn audio_received(&self, samples: usize, rate: u32) {
        self.audio.add(samples, rate);
    }

    pub fn missing_pong(&self, message: String) {
        self.missing_pongs.fetch_add(1, Ordering::Relaxed);
        self.protocol_error(message);
    }

    pub fn init(&self, overrides: Option<Value>, dynamic_variables: Option<Value>) {
        let mut r = lock(&self.rest);
        if overrides.is_some() {
            r.init_overrides = overrides;
        }
        if dynamic_variables.is_some() {
            r.dynamic_variables = dynamic_variables;
        }
    }

    pub fn contextual_update(&self, text: &str) {
        push_capped(
            &mut lock(&self.rest).contextual_update_texts,
            text.to_string(),
        );
    }

    pub fn user_message(&self, text: &str) {
        push_capped(&mut lock(&self.rest).user_message_texts, text.to_string());
    }

    pub fn tool_result(&self, message: Value) {
        push_capped(&mut lock(&self.rest).tool_result_messages, message);
    }

    pub fn protocol_error(&self, message: String) {
        push_capped(&mut lock(&self.rest).protocol_errors, message);
    }

    pub fn snapshot(&self) -> FakeStats {
        let get = |c: Count| self.counts.get(c as usize);
        let r = lock(&self.rest);
        FakeStats {
            signed_urls: get(Count::SignedUrl),
            sessions: self.sessions.opened(),
            sessions_active: self.sessions.active(),
            init_not_first: get(Count::InitNotFirst),
            caller_turns: get(Count::CallerTurn),
            answers: get(Count::Answer),
            interruptions: get(Count::Interruption),
            late_chunks: get(Count::LateChunk),
            pings_sent: get(Count::PingSent),
            pongs_ok: get(Count::PongOk),
            missing_pongs: self.missing_pongs.load(Ordering::Relaxed),
            tool_calls: get(Count::ToolCall),
            tool_results: r.tool_result_messages.len() as u64,
            contextual_updates: r.contextual_update_texts.len() as u64,
            user_messages: r.user_message_texts.len() as u64,
            user_activities: get(Count::UserActivity),
            init_overrides: r.init_overrides.clone(),
            dynamic_variables: r.dynamic_variables.clone(),
            contextual_update_texts: r.contextual_update_texts.clone(),
            user_message_texts: r.user_message_texts.clone(),
            tool_result_messages: r.tool_result_messages.clone(),
            protocol_errors: r.protocol_errors.clone(),
            audio_ms_received: self.audio.ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn counts_and_snapshots() {
        let s = StatsRecorder::default();
        s.sessions.during(async {}).await;
        s.sessions.during(async {}).await;
        s.add(Count::PingSent);
        s.add(Count::PongOk);
        s.add(Count::UserActivity);
        s.audio_received(1600, 16_000);
        s.audio_received(800, 8_000);
        s.init(Some(json!({"agent": {}})), None);
        s.init(None, Some(json!({"caller_number": "1"})));
        s.user_message("[DTMF 5]");
        s.missing_pong("no pong".into());
        let snap = s.snapshot();
        assert_eq!((snap.sessions, snap.sessions_active), (2, 0));
        assert_eq!(
            (snap.pings_sent, snap.pongs_ok, snap.missing_pongs),
            (1, 1, 1)
        );
        assert_eq!((snap.user_activities, snap.signed_urls), (1, 0));
        assert_eq!(snap.audio_ms_received, 200);
        assert_eq!(snap.init_overrides, Some(json!({"agent": {}})));
        assert!(snap.dynamic_variables.is_some());
        assert_eq!(snap.user_messages, 1);
        assert_eq!(snap.protocol_errors, vec!["no pong"]);
    }
}
