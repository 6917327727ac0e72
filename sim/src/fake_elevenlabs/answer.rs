//! Answers: the agent's line streamed chunk by chunk, barge-in and interruption, and the
//! scripted client tool call.
//!
//! Every audio message of one answer carries the same `event_id`, taken from the
//! session's counter when the answer starts. Whether the real service numbers per answer
//! or per chunk is unconfirmed; clients must work either way.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::session::Session;
use super::stats::Count;
use crate::fake_common::reply::SpokenLine;

pub(crate) enum Answer {
    Idle,
    /// The caller's turn ended; the answer (or the tool call) starts at `at`.
    Thinking {
        at: Instant,
        may_call_tool: bool,
    },
    /// A `client_tool_call` is out; the answer waits for its result.
    AwaitingTool,
    Speaking(Stream),
    /// All audio sent; the client plays it until `until` (real time from the first chunk).
    Playing {
        event_id: u64,
        line: Arc<SpokenLine>,
        until: Instant,
    },
}

pub(crate) struct Stream {
    event_id: u64,
    line: Arc<SpokenLine>,
    next: usize,
    next_at: Instant,
    interval: Duration,
    until: Instant,
}

/// Progress of the configured tool call (`FakeElevenLabsConfig::tool_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolState {
    Unused,
    Awaiting(String),
    Answered,
}

impl Session {
    /// The caller finished a turn: transcript, then the answer after the think time.
    pub(super) fn caller_turn_end(&mut self, now: Instant) {
        self.shared.stats.add(Count::CallerTurn);
        let text = self.shared.cfg.caller_transcript.clone();
        self.emit(json!({"type": "user_transcript",
            "user_transcription_event": {"user_transcript": text}}));
        if self.answer_is_audible(now) {
            self.interrupt(now);
        }
        self.think(now, true);
    }

    /// A `user_message` is a turn of its own (no tool call).
    pub(super) fn user_message(&mut self, now: Instant) {
        if self.answer_is_audible(now) {
            self.interrupt(now);
        }
        self.think(now, false);
    }

    /// Caller speech started: interrupt an answer the caller can hear; forget one not
    /// started yet.
    pub(super) fn barge_in(&mut self, now: Instant) {
        if self.answer_is_audible(now) {
            self.interrupt(now);
        } else if matches!(self.answer, Answer::Thinking { .. }) {
            self.answer = Answer::Idle;
        }
    }

    fn think(&mut self, now: Instant, may_call_tool: bool) {
        if self.answer_is_pending_tool() {
            return; // the answer comes after the tool result
        }
        let at = now + Duration::from_millis(self.shared.cfg.think_ms);
        self.answer = Answer::Thinking { at, may_call_tool };
    }

    fn answer_is_pending_tool(&self) -> bool {
        matches!(self.answer, Answer::AwaitingTool)
    }

    fn answer_is_audible(&self, now: Instant) -> bool {
        match &self.answer {
            Answer::Speaking(_) => true,
            Answer::Playing { until, .. } => now < *until,
            _ => false,
        }
    }

    /// `interruption` with the answer's id, and optionally one stale chunk after it.
    fn interrupt(&mut self, now: Instant) {
        let (event_id, late) = match std::mem::replace(&mut self.answer, Answer::Idle) {
            Answer::Speaking(s) => {
                let chunk = s.line.chunks.get(s.next).or(s.line.chunks.last()).cloned();
                (s.event_id, chunk)
            }
            Answer::Playing {
                event_id,
                line,
                until,
            } if now < until => (event_id, line.chunks.last().cloned()),
            other => {
                self.answer = other;
                return;
            }
        };
        self.shared.stats.add(Count::Interruption);
        self.emit(json!({"type": "interruption", "interruption_event": {"event_id": event_id}}));
        if let (true, Some(chunk)) = (self.shared.cfg.late_audio_after_interrupt, late) {
            self.shared.stats.add(Count::LateChunk);
            self.emit(json!({"type": "audio",
                "audio_event": {"audio_base_64": chunk, "event_id": event_id}}));
        }
    }

    pub(super) fn tool_result(&mut self, tool_call_id: &str, message: Value, now: Instant) {
        match &self.tool {
            ToolState::Awaiting(id) if id == tool_call_id => {
                self.tool = ToolState::Answered;
                self.shared.stats.tool_result(message);
                self.answer = Answer::Idle;
                self.think(now, false);
            }
            _ => self.protocol_error(format!(
                "client_tool_result for tool_call_id {tool_call_id:?}: no such tool call"
            )),
        }
    }

    pub(super) fn answer_wake(&self) -> Option<Instant> {
        match &self.answer {
            Answer::Thinking { at, .. } => Some(*at),
            Answer::Speaking(s) => Some(s.next_at),
            Answer::Playing { until, .. } => Some(*until),
            Answer::Idle | Answer::AwaitingTool => None,
        }
    }

    pub(super) fn answer_timer(&mut self, now: Instant) {
        while self.answer_wake().is_some_and(|at| at <= now) {
            match &self.answer {
                Answer::Thinking { may_call_tool, .. } => {
                    let may_call_tool = *may_call_tool;
                    self.think_done(now, may_call_tool);
                }
                Answer::Speaking(_) => self.send_chunk(),
                Answer::Playing { .. } => self.answer = Answer::Idle,
                Answer::Idle | Answer::AwaitingTool => return,
            }
        }
    }

    fn think_done(&mut self, now: Instant, may_call_tool: bool) {
        if may_call_tool && self.tool == ToolState::Unused {
            if let Some((name, params)) = self.shared.cfg.tool_call.clone() {
                let id = format!("tc_{}", self.next_id());
                let parameters: Value = serde_json::from_str(&params).unwrap_or(Value::Null);
                self.emit(json!({"type": "client_tool_call", "client_tool_call": {
                    "tool_name": name, "tool_call_id": id, "parameters": parameters}}));
                self.shared.stats.add(Count::ToolCall);
                self.tool = ToolState::Awaiting(id);
                self.answer = Answer::AwaitingTool;
                return;
            }
        }
        let line = self.shared.replies.reply.clone();
        let text = line.text.clone();
        self.begin_answer(line, text, now);
    }

    /// `agent_response`, then the audio from `now` on.
    pub(super) fn begin_answer(&mut self, line: Arc<SpokenLine>, text: String, now: Instant) {
        self.shared.stats.add(Count::Answer);
        let event_id = self.next_id();
        self.emit(json!({"type": "agent_response",
            "agent_response_event": {"agent_response": text}}));
        let cfg = &self.shared.cfg;
        let interval = Duration::from_secs_f64(
            f64::from(cfg.chunk_ms) / 1000.0 / f64::from(cfg.realtime_factor),
        );
        let until = now + line.duration;
        self.answer = Answer::Speaking(Stream {
            event_id,
            line,
            next: 0,
            next_at: now,
            interval,
            until,
        });
    }

    fn send_chunk(&mut self) {
        let Answer::Speaking(s) = &mut self.answer else {
            return;
        };
        let Some(chunk) = s.line.chunks.get(s.next).cloned() else {
            return self.finish_stream();
        };
        let event_id = s.event_id;
        s.next += 1;
        s.next_at += s.interval;
        let done = s.next >= s.line.chunks.len();
        self.emit(json!({"type": "audio",
            "audio_event": {"audio_base_64": chunk, "event_id": event_id}}));
        if done {
            self.finish_stream();
        }
    }

    fn finish_stream(&mut self) {
        if let Answer::Speaking(s) = std::mem::replace(&mut self.answer, Answer::Idle) {
            self.answer = Answer::Playing {
                event_id: s.event_id,
                line: s.line,
                until: s.until,
            };
        }
    }
}
