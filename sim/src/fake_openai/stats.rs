//! What the fake saw, shared by all its sessions: counters are atomics, lists sit behind a
//! mutex held only to push or copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Longest kept list of client event types (appends alone come 50 times a second).
const MAX_CLIENT_EVENTS: usize = 10_000;
/// Longest kept list of protocol errors or truncates.
const MAX_RECORDS: usize = 10_000;

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeStats {
    pub sessions_opened: u64,
    pub sessions_active: u64,
    /// Caller audio appended over all sessions, in milliseconds.
    pub appended_ms: u64,
    /// Responses started (audio or tool call).
    pub turns: u64,
    pub responses_cancelled: u64,
    pub truncates: Vec<Truncate>,
    /// Every client mistake the fake answered with an `error` event (harmless codes
    /// `response_cancel_not_active` and `conversation_already_has_active_response` excluded).
    pub protocol_errors: Vec<String>,
    /// Client event types in arrival order (capped).
    pub client_events: Vec<String>,
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
    opened: AtomicU64,
    active: AtomicU64,
    appended_us: AtomicU64,
    turns: AtomicU64,
    cancelled: AtomicU64,
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    truncates: Vec<Truncate>,
    protocol_errors: Vec<String>,
    client_events: Vec<String>,
}

impl StatsRecorder {
    pub fn session_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
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

    pub fn appended(&self, samples: usize, rate: u32) {
        let us = samples as u64 * 1_000_000 / u64::from(rate.max(1));
        self.appended_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn turn_started(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    pub fn response_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn truncate(&self, t: Truncate) {
        self.with_lists(|l| push_capped(&mut l.truncates, t, MAX_RECORDS));
    }

    pub fn protocol_error(&self, message: String) {
        self.with_lists(|l| push_capped(&mut l.protocol_errors, message, MAX_RECORDS));
    }

    pub fn client_event(&self, kind: &str) {
        self.with_lists(|l| push_capped(&mut l.client_events, kind.to_string(), MAX_CLIENT_EVENTS));
    }

    pub fn snapshot(&self) -> FakeStats {
        let mut s = FakeStats {
            sessions_opened: self.opened.load(Ordering::Relaxed),
            sessions_active: self.active.load(Ordering::Relaxed),
            appended_ms: self.appended_us.load(Ordering::Relaxed) / 1000,
            turns: self.turns.load(Ordering::Relaxed),
            responses_cancelled: self.cancelled.load(Ordering::Relaxed),
            ..Default::default()
        };
        self.with_lists(|l| {
            s.truncates = l.truncates.clone();
            s.protocol_errors = l.protocol_errors.clone();
            s.client_events = l.client_events.clone();
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

fn push_capped<T>(list: &mut Vec<T>, item: T, cap: usize) {
    if list.len() < cap {
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
        s.appended(480, 24_000);
        s.appended(480, 24_000);
        s.appended(160, 8_000);
        s.client_event("session.update");
        s.protocol_error("x".into());
        let snap = s.snapshot();
        assert_eq!(snap.sessions_opened, 2);
        assert_eq!(snap.sessions_active, 1);
        assert_eq!(snap.appended_ms, 60);
        assert_eq!(snap.client_events, vec!["session.update"]);
        assert_eq!(snap.protocol_errors.len(), 1);
    }
}
