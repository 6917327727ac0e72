//! What the fake saw, shared by every request: lists sit behind a mutex held only to push
//! or copy, and every change bumps a watch so tests can wait for a figure without
//! polling.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::fake_common::stats::{lock, push_capped};

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions` (OpenAI, Groq, Ollama).
    ChatCompletions,
    /// `/v1/messages` (Anthropic).
    Messages,
}

/// An accepted request.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub api: Api,
    pub model: String,
    /// The system prompt (OpenAI: the `system`/`developer` messages, joined).
    pub system: String,
    /// The conversation as sent, each message whole (system messages included for
    /// OpenAI, as they were sent).
    pub messages: Vec<Value>,
    /// Names of the declared tools.
    pub tools: Vec<String>,
    pub max_tokens: Option<u64>,
}

impl RecordedRequest {
    /// The text of each message of `role` (`user`, `assistant`, `tool`), in order: text
    /// parts joined; Anthropic tool results count as `tool`, not `user`.
    pub fn texts(&self, role: &str) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.messages {
            let sent_as = m["role"].as_str().unwrap_or("");
            match &m["content"] {
                Value::String(s) if sent_as == role => out.push(s.clone()),
                Value::Array(blocks) => {
                    let results: Vec<&Value> = blocks
                        .iter()
                        .filter(|b| b["type"] == "tool_result")
                        .collect();
                    if role == "tool" {
                        out.extend(results.iter().map(|b| block_text(&b["content"])));
                    }
                    if sent_as == role {
                        let text: String = blocks
                            .iter()
                            .filter(|b| b["type"] == "text")
                            .filter_map(|b| b["text"].as_str())
                            .collect::<Vec<_>>()
                            .join(" ");
                        if !text.is_empty() {
                            out.push(text);
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// A tool result's content: a string, or text blocks.
fn block_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakeLlmStats {
    /// Every POST that reached an endpoint.
    pub requests: u64,
    /// Requests refused by a check (4xx), with why.
    pub rejections: Vec<String>,
    /// Requests refused by a `Fault::Status`.
    pub refused_by_fault: u64,
    /// Requests held by `Fault::HangBeforeHeaders`.
    pub hung: u64,
    /// Accepted requests, in order of arrival.
    pub accepted: Vec<RecordedRequest>,
    pub streams_started: u64,
    /// Streams sent to their end.
    pub streams_completed: u64,
    /// Streams the client went away from before the end (the connection closed).
    pub streams_cancelled: u64,
    /// Streams a fault ended (error event, drop, early end, hang).
    pub streams_faulted: u64,
    pub streams_active: u64,
    /// Tool calls sent.
    pub tool_calls: u64,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Cancelled,
    Faulted,
}

pub(crate) struct StatsRecorder {
    stats: Mutex<FakeLlmStats>,
    changed: watch::Sender<u64>,
}

impl Default for StatsRecorder {
    fn default() -> Self {
        Self {
            stats: Mutex::new(FakeLlmStats::default()),
            changed: watch::channel(0).0,
        }
    }
}

impl StatsRecorder {
    /// Applies `f` and wakes the waiters.
    pub fn update(&self, f: impl FnOnce(&mut FakeLlmStats)) {
        f(&mut lock(&self.stats));
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn request(&self) {
        self.update(|s| s.requests += 1);
    }

    pub fn rejected(&self, why: String) {
        self.update(|s| push_capped(&mut s.rejections, why));
    }

    pub fn accepted(&self, request: RecordedRequest) {
        self.update(|s| push_capped(&mut s.accepted, request));
    }

    pub fn stream_started(&self, tool_calls: usize) {
        self.update(|s| {
            s.streams_started += 1;
            s.streams_active += 1;
            s.tool_calls += tool_calls as u64;
        });
    }

    pub fn stream_ended(&self, outcome: Outcome) {
        self.update(|s| {
            s.streams_active = s.streams_active.saturating_sub(1);
            match outcome {
                Outcome::Completed => s.streams_completed += 1,
                Outcome::Cancelled => s.streams_cancelled += 1,
                Outcome::Faulted => s.streams_faulted += 1,
            }
        });
    }

    pub fn snapshot(&self) -> FakeLlmStats {
        lock(&self.stats).clone()
    }

    pub async fn wait(
        &self,
        within: Duration,
        ok: impl Fn(&FakeLlmStats) -> bool,
    ) -> Result<FakeLlmStats, FakeLlmStats> {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let stats = self.snapshot();
            if ok(&stats) {
                return Ok(stats);
            }
            let woke = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(woke, Ok(Ok(()))) {
                return Err(self.snapshot());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn waiting_wakes_on_changes_and_gives_up_in_time() {
        let r = std::sync::Arc::new(StatsRecorder::default());
        let r2 = r.clone();
        let waiter = tokio::spawn(async move {
            r2.wait(Duration::from_secs(5), |s| s.streams_cancelled == 1)
                .await
        });
        r.stream_started(2);
        r.stream_ended(Outcome::Cancelled);
        let s = waiter.await.unwrap().unwrap();
        assert_eq!((s.streams_active, s.tool_calls), (0, 2));
        let late = r.wait(Duration::from_millis(10), |s| s.requests > 0).await;
        assert!(late.is_err());
    }

    #[test]
    fn texts_by_role_in_both_shapes() {
        let openai = RecordedRequest {
            api: Api::ChatCompletions,
            model: "m".into(),
            system: String::new(),
            messages: vec![
                json!({"role": "system", "content": "s"}),
                json!({"role": "user", "content": "Oi"}),
                json!({"role": "assistant", "content": null, "tool_calls": []}),
                json!({"role": "tool", "tool_call_id": "c", "content": "r"}),
            ],
            tools: vec![],
            max_tokens: None,
        };
        assert_eq!(openai.texts("user"), ["Oi"]);
        assert_eq!(openai.texts("tool"), ["r"]);
        let anthropic = RecordedRequest {
            api: Api::Messages,
            messages: vec![
                json!({"role": "user", "content": [{"type": "text", "text": "Oi"}]}),
                json!({"role": "assistant", "content": [{"type": "text", "text": "Olá"},
                    {"type": "tool_use", "id": "t", "name": "n", "input": {}}]}),
                json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                    "content": [{"type": "text", "text": "r"}]}]}),
            ],
            ..openai
        };
        assert_eq!(anthropic.texts("user"), ["Oi"]);
        assert_eq!(anthropic.texts("assistant"), ["Olá"]);
        assert_eq!(anthropic.texts("tool"), ["r"]);
    }
}
