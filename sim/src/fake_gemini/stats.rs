//! What the fake saw, shared by all its sessions: counters are atomics, lists sit behind a
//! mutex held only to push or copy.

use std::sync::Mutex;

use serde_json::Value;

use crate::fake_common::stats::{lock, push_capped, AudioTime, Counters, Sessions};

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeGeminiStats {
    /// Sessions upgraded (whether or not they sent a setup).
    pub sessions: u64,
    /// Sessions still connected.
    pub sessions_active: u64,
    /// Caller turns: ended by the energy VAD, by `activityEnd`, by a `clientContent` with
    /// `turnComplete: true`, or by `realtimeInput.text`.
    pub caller_turns: u64,
    /// Audio replies started.
    pub responses: u64,
    /// Replies cut by a barge-in (`interrupted` sent).
    pub interrupted: u64,
    pub tool_calls: u64,
    /// `toolResponse`s that answered the pending call.
    pub tool_responses: u64,
    /// Turns received in `clientContent` with `turnComplete: false` (history).
    pub history_turns: u64,
    /// Those turns as `"user: text"` / `"model: text"` (capped).
    pub history: Vec<String>,
    pub activity_starts: u64,
    pub activity_ends: u64,
    /// Every client mistake the fake noticed (capped).
    pub protocol_errors: Vec<String>,
    /// Valid caller audio received over all sessions, in ms.
    pub audio_ms_received: u64,
    /// With activity detection disabled: audio sent outside `activityStart`/`activityEnd`.
    pub audio_ms_outside_activity: u64,
    /// Client message kinds in arrival order (`setup`, `realtimeInput.audio`, …; capped).
    pub client_messages: Vec<String>,
    /// The most recent valid setup (the `setup` object, as received).
    pub last_setup: Option<Value>,
    /// The `response` objects of accepted tool responses, in order (capped).
    pub tool_response_payloads: Vec<Value>,
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    pub sessions: Sessions,
    counts: Counters<{ Count::ALL }>,
    audio: AudioTime,
    outside: AudioTime,
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    history: Vec<String>,
    history_turns: u64,
    protocol_errors: Vec<String>,
    client_messages: Vec<String>,
    last_setup: Option<Value>,
    tool_response_payloads: Vec<Value>,
}

/// Counters that only go up by one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    CallerTurn,
    Response,
    Interrupted,
    ToolCall,
    ToolResponse,
    ActivityStart,
    ActivityEnd,
}

impl Count {
    const ALL: usize = Count::ActivityEnd as usize + 1;
}

impl StatsRecorder {
    pub fn count(&self, what: Count) {
        self.counts.add(what as usize);
    }

    /// Caller audio: `samples` at 16 kHz, inside an activity (or automatic mode) or not.
    pub fn audio(&self, samples: usize, outside_activity: bool) {
        self.audio.add(samples, 16_000);
        if outside_activity {
            self.outside.add(samples, 16_000);
        }
    }

    pub fn history_turn(&self, role: &str, text: &str) {
        let mut l = lock(&self.lists);
        l.history_turns += 1;
        push_capped(&mut l.history, format!("{role}: {text}"));
    }

    pub fn protocol_error(&self, message: String) {
        tracing::debug!(%message, "fake Gemini: client protocol error");
        push_capped(&mut lock(&self.lists).protocol_errors, message);
    }

    pub fn client_message(&self, kind: &str) {
        push_capped(&mut lock(&self.lists).client_messages, kind.to_string());
    }

    pub fn tool_response_payload(&self, response: &Value) {
        push_capped(
            &mut lock(&self.lists).tool_response_payloads,
            response.clone(),
        );
    }

    pub fn setup(&self, setup: &Value) {
        lock(&self.lists).last_setup = Some(setup.clone());
    }

    pub fn snapshot(&self) -> FakeGeminiStats {
        let get = |c: Count| self.counts.get(c as usize);
        let l = lock(&self.lists);
        FakeGeminiStats {
            sessions: self.sessions.opened(),
            sessions_active: self.sessions.active(),
            caller_turns: get(Count::CallerTurn),
            responses: get(Count::Response),
            interrupted: get(Count::Interrupted),
            tool_calls: get(Count::ToolCall),
            tool_responses: get(Count::ToolResponse),
            history_turns: l.history_turns,
            history: l.history.clone(),
            activity_starts: get(Count::ActivityStart),
            activity_ends: get(Count::ActivityEnd),
            protocol_errors: l.protocol_errors.clone(),
            audio_ms_received: self.audio.ms(),
            audio_ms_outside_activity: self.outside.ms(),
            client_messages: l.client_messages.clone(),
            last_setup: l.last_setup.clone(),
            tool_response_payloads: l.tool_response_payloads.clone(),
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
        s.count(Count::CallerTurn);
        s.count(Count::ActivityStart);
        s.count(Count::ActivityEnd);
        s.count(Count::ActivityEnd);
        s.audio(16_000, false);
        s.audio(1_600, true);
        s.history_turn("user", "Oi");
        s.protocol_error("x".into());
        s.client_message("setup");
        let snap = s.snapshot();
        assert_eq!((snap.sessions, snap.sessions_active), (2, 0));
        assert_eq!(
            (snap.caller_turns, snap.activity_starts, snap.activity_ends),
            (1, 1, 2)
        );
        assert_eq!(
            (snap.audio_ms_received, snap.audio_ms_outside_activity),
            (1100, 100)
        );
        assert_eq!(
            (snap.history_turns, snap.history.as_slice()),
            (1, &["user: Oi".to_string()][..])
        );
        assert_eq!(snap.protocol_errors, vec!["x"]);
        assert_eq!(snap.client_messages, vec!["setup"]);
    }
}
