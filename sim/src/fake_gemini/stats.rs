//! What the fake saw, shared by all its sessions: counters are atomics, lists sit behind a
//! mutex held only to push or copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

/// Longest kept list (protocol errors, history lines, client message kinds).
const MAX_RECORDS: usize = 10_000;

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
    sessions: AtomicU64,
    active: AtomicU64,
    caller_turns: AtomicU64,
    responses: AtomicU64,
    interrupted: AtomicU64,
    tool_calls: AtomicU64,
    tool_responses: AtomicU64,
    activity_starts: AtomicU64,
    activity_ends: AtomicU64,
    audio_us: AtomicU64,
    outside_us: AtomicU64,
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

impl StatsRecorder {
    pub fn session_opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_closed(&self) {
        let _ = self
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    pub fn count(&self, what: Count) {
        let counter = match what {
            Count::CallerTurn => &self.caller_turns,
            Count::Response => &self.responses,
            Count::Interrupted => &self.interrupted,
            Count::ToolCall => &self.tool_calls,
            Count::ToolResponse => &self.tool_responses,
            Count::ActivityStart => &self.activity_starts,
            Count::ActivityEnd => &self.activity_ends,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Caller audio: `samples` at 16 kHz, inside an activity (or automatic mode) or not.
    pub fn audio(&self, samples: usize, outside_activity: bool) {
        let us = samples as u64 * 1_000_000 / 16_000;
        self.audio_us.fetch_add(us, Ordering::Relaxed);
        if outside_activity {
            self.outside_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    pub fn history_turn(&self, role: &str, text: &str) {
        self.with_lists(|l| {
            l.history_turns += 1;
            push_capped(&mut l.history, format!("{role}: {text}"));
        });
    }

    pub fn protocol_error(&self, message: String) {
        tracing::debug!(%message, "fake Gemini: client protocol error");
        self.with_lists(|l| push_capped(&mut l.protocol_errors, message));
    }

    pub fn client_message(&self, kind: &str) {
        self.with_lists(|l| push_capped(&mut l.client_messages, kind.to_string()));
    }

    pub fn tool_response_payload(&self, response: &Value) {
        self.with_lists(|l| push_capped(&mut l.tool_response_payloads, response.clone()));
    }

    pub fn setup(&self, setup: &Value) {
        self.with_lists(|l| l.last_setup = Some(setup.clone()));
    }

    pub fn snapshot(&self) -> FakeGeminiStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = FakeGeminiStats {
            sessions: get(&self.sessions),
            sessions_active: get(&self.active),
            caller_turns: get(&self.caller_turns),
            responses: get(&self.responses),
            interrupted: get(&self.interrupted),
            tool_calls: get(&self.tool_calls),
            tool_responses: get(&self.tool_responses),
            activity_starts: get(&self.activity_starts),
            activity_ends: get(&self.activity_ends),
            audio_ms_received: get(&self.audio_us) / 1000,
            audio_ms_outside_activity: get(&self.outside_us) / 1000,
            ..Default::default()
        };
        self.with_lists(|l| {
            s.history_turns = l.history_turns;
            s.history = l.history.clone();
            s.protocol_errors = l.protocol_errors.clone();
            s.client_messages = l.client_messages.clone();
            s.last_setup = l.last_setup.clone();
            s.tool_response_payloads = l.tool_response_payloads.clone();
        });
        s
    }

    fn with_lists(&self, f: impl FnOnce(&mut Lists)) {
        // A panic elsewhere while holding the lock must not hide the stats.
        let mut guard = match self.lists.lock() {
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

    #[test]
    fn counts_and_snapshots() {
        let s = StatsRecorder::default();
        s.session_opened();
        s.session_opened();
        s.session_closed();
        s.count(Count::CallerTurn);
        s.count(Count::ActivityStart);
        s.audio(16_000, false);
        s.audio(1_600, true);
        s.history_turn("user", "Oi");
        s.protocol_error("x".into());
        s.client_message("setup");
        let snap = s.snapshot();
        assert_eq!((snap.sessions, snap.sessions_active), (2, 1));
        assert_eq!((snap.caller_turns, snap.activity_starts), (1, 1));
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
