//! Responses: the audio reply streamed delta by delta, the scripted function call, and
//! cancellation (providers.md §1.6–1.7).
//!
//! Like the real API, a response is announced (`response.created`) as soon as it is asked
//! for or the turn ends; the think time passes before its first output. So a client can
//! cancel a response that has produced nothing yet and gets `response.done` (cancelled).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::session::Session;
use super::Fault;
use crate::fake_common::reply::SpokenLine;

/// A response between `response.created` and `response.done`.
pub(crate) struct ActiveResponse {
    id: String,
    stage: Stage,
}

enum Stage {
    /// Announced; the output starts at this instant.
    Thinking(Instant),
    Speaking(AudioStream),
}

/// The audio reply being streamed.
struct AudioStream {
    item_id: String,
    reply: Arc<SpokenLine>,
    next_delta: usize,
    next_at: Instant,
    interval: Duration,
}

/// Progress of the configured function call (`FakeOpenAiConfig::tool_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolState {
    Unused,
    Awaiting(String),
    Answered,
}

impl ActiveResponse {
    /// When it next has something to send.
    fn wake_at(&self) -> Instant {
        match &self.stage {
            Stage::Thinking(at) => *at,
            Stage::Speaking(audio) => audio.next_at,
        }
    }
}

impl Session {
    /// Announces a response; its output follows after the think time.
    pub(super) fn start_response(&mut self, now: Instant) {
        self.shared.stats.turn_started();
        let id = self.new_id("resp");
        self.out
            .emit(json!({"type": "response.created", "response": {"id": id,
            "object": "realtime.response", "status": "in_progress", "output": []}}));
        let think = Duration::from_millis(self.shared.cfg.think_ms);
        self.active = Some(ActiveResponse {
            id,
            stage: Stage::Thinking(now + think),
        });
    }

    /// When the session next has something to send on its own.
    pub fn next_wake(&self) -> Option<Instant> {
        self.active.as_ref().map(ActiveResponse::wake_at)
    }

    pub fn on_timer(&mut self, now: Instant) {
        while let Some(active) = self.active.as_ref().filter(|a| a.wake_at() <= now) {
            match active.stage {
                Stage::Thinking(_) => {
                    let id = active.id.clone();
                    self.begin_output(id, now);
                }
                Stage::Speaking(_) => self.send_delta(),
            }
        }
    }

    /// The think time is over: the function call, or the first audio.
    fn begin_output(&mut self, response_id: String, now: Instant) {
        if self.tool == ToolState::Unused {
            if let Some((name, arguments)) = self.shared.cfg.tool_call.clone() {
                return self.function_call_response(&response_id, &name, &arguments);
            }
        }
        let item_id = self.new_id("item");
        let output = self.config.effective().output;
        let reply = self.shared.replies.get(output);
        let item = json!({"id": item_id, "object": "realtime.item", "type": "message",
            "role": "assistant", "status": "in_progress", "content": []});
        self.out.emit(json!({"type": "response.output_item.added",
            "response_id": response_id, "output_index": 0, "item": item}));
        self.add_item(item, output.bytes_per_ms());
        self.out.emit(json!({"type": "response.content_part.added",
            "response_id": response_id, "item_id": item_id, "output_index": 0,
            "content_index": 0, "part": {"type": "audio", "transcript": ""}}));
        let cfg = &self.shared.cfg;
        let interval = Duration::from_secs_f64(
            f64::from(cfg.delta_ms) / 1000.0 / f64::from(cfg.realtime_factor),
        );
        self.active = Some(ActiveResponse {
            id: response_id,
            stage: Stage::Speaking(AudioStream {
                item_id,
                reply,
                next_delta: 0,
                next_at: now,
                interval,
            }),
        });
    }

    fn send_delta(&mut self) {
        let Some(ActiveResponse {
            id,
            stage: Stage::Speaking(active),
        }) = self.active.as_mut()
        else {
            return;
        };
        let i = active.next_delta;
        let (Some(delta), Some(bytes)) =
            (active.reply.chunks.get(i), active.reply.chunk_bytes.get(i))
        else {
            return self.finish_response();
        };
        let ids = json!({"response_id": id, "item_id": active.item_id,
            "output_index": 0, "content_index": 0});
        let mut audio = ids.clone();
        audio["type"] = self.names.audio_delta().into();
        audio["delta"] = delta.as_str().into();
        self.out.emit(audio);
        if let Some(piece) = active.reply.text_pieces.get(i).filter(|p| !p.is_empty()) {
            let mut text = ids;
            text["type"] = self.names.transcript_delta().into();
            text["delta"] = piece.as_str().into();
            self.out.emit(text);
        }
        if let Some(item) = self.items.get_mut(&active.item_id) {
            item.generated_bytes += bytes;
        }
        active.next_delta += 1;
        active.next_at += active.interval;
        if active.next_delta >= active.reply.chunks.len() {
            self.finish_response();
        }
    }

    fn finish_response(&mut self) {
        let Some(ActiveResponse {
            id,
            stage: Stage::Speaking(active),
        }) = self.active.take()
        else {
            return;
        };
        let transcript = active.reply.text.as_str();
        let ids = json!({"response_id": id, "item_id": active.item_id,
            "output_index": 0, "content_index": 0});
        for (ty, extra) in [
            (self.names.audio_done(), None),
            (
                self.names.transcript_done(),
                Some(("transcript", json!(transcript))),
            ),
            (
                "response.content_part.done",
                Some(("part", json!({"type": "audio", "transcript": transcript}))),
            ),
        ] {
            let mut ev = ids.clone();
            ev["type"] = ty.into();
            if let Some((k, v)) = extra {
                ev[k] = v;
            }
            self.out.emit(ev);
        }
        let item = json!({"id": active.item_id, "object": "realtime.item", "type": "message",
            "role": "assistant", "status": "completed",
            "content": [{"type": self.names.audio_part(), "transcript": transcript}]});
        self.out.emit(json!({"type": "response.output_item.done",
            "response_id": id, "output_index": 0, "item": item}));
        if let Some(done) = self.names.item_done() {
            self.out.emit(json!({"type": done, "item": item}));
        }
        if let Some(record) = self.items.get_mut(&active.item_id) {
            record.json = item.clone();
        }
        self.response_done(&id, "completed", Value::Null, item);
    }

    /// The scripted call: `conversation.item.added` for the call comes before
    /// `function_call_arguments.done`, as clients rely on (§1.6). It ends the response.
    fn function_call_response(&mut self, response_id: &str, name: &str, arguments: &str) {
        self.active = None;
        let call_id = self.new_id("call");
        let item_id = self.new_id("item");
        let item = json!({"id": item_id, "object": "realtime.item", "type": "function_call",
            "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""});
        self.out.emit(json!({"type": "response.output_item.added",
            "response_id": response_id, "output_index": 0, "item": item}));
        self.add_item(item, 0);
        let ids = json!({"response_id": response_id, "item_id": item_id, "output_index": 0,
            "call_id": call_id});
        let mut delta = ids.clone();
        delta["type"] = "response.function_call_arguments.delta".into();
        delta["delta"] = arguments.into();
        self.out.emit(delta);
        let mut done = ids;
        done["type"] = "response.function_call_arguments.done".into();
        done["name"] = name.into();
        done["arguments"] = arguments.into();
        self.out.emit(done);
        let item = json!({"id": item_id, "object": "realtime.item", "type": "function_call",
            "status": "completed", "call_id": call_id, "name": name, "arguments": arguments});
        self.out.emit(json!({"type": "response.output_item.done",
            "response_id": response_id, "output_index": 0, "item": item}));
        if let Some(done) = self.names.item_done() {
            self.out.emit(json!({"type": done, "item": item}));
        }
        if let Some(record) = self.items.get_mut(&item_id) {
            record.json = item.clone();
        }
        self.tool = ToolState::Awaiting(call_id);
        self.response_done(response_id, "completed", Value::Null, item);
    }

    /// Stops the response, if any, thinking or streaming: `response.done` with status
    /// cancelled (and the partial item, when output had started).
    pub(super) fn cancel_active(&mut self, reason: &str) {
        let Some(active) = self.active.take() else {
            return;
        };
        self.shared.stats.response_cancelled();
        let mut item = Value::Null;
        if let Stage::Speaking(audio) = &active.stage {
            if let Some(record) = self.items.get_mut(&audio.item_id) {
                item = json!({"id": audio.item_id, "object": "realtime.item",
                    "type": "message", "role": "assistant", "status": "incomplete",
                    "content": []});
                record.json = item.clone();
            }
        }
        let details = json!({"type": "cancelled", "reason": reason});
        self.response_done(&active.id, "cancelled", details, item);
    }

    fn response_done(&mut self, id: &str, status: &str, details: Value, item: Value) {
        let output: Vec<Value> = if item.is_null() { vec![] } else { vec![item] };
        self.out.emit(json!({"type": "response.done", "response": {"id": id,
            "object": "realtime.response", "status": status, "status_details": details,
            "output": output, "usage": {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0}}}));
        self.responses_done += 1;
        if self.responses_done == 1 && self.fault == Fault::ErrorAfterFirstTurn {
            self.out.error(
                "server_error",
                "server_error",
                "The server had an error while processing your request (fault injection).",
                None,
            );
        }
    }
}
