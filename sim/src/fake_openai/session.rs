//! One fake session's state machine: client events in, server events into the outbox.
//! No I/O here; [`super::connection`] feeds it frames and timer ticks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::handshake::Upgrade;
use super::response::{ActiveResponse, ToolState};
use super::script::{Names, Outbox};
use super::session_config::SessionConfig;
use super::stats::Truncate;
use super::vad::{EnergyVad, VadEvent};
use super::{Fault, Shared};

/// The real API refuses to commit less than this.
const MIN_COMMIT_MS: u64 = 100;

/// A client mistake, answered with an `error` event.
pub(super) struct Reject {
    code: &'static str,
    message: String,
}

impl Reject {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn missing(field: &str) -> Self {
        Self::new(
            "missing_required_parameter",
            format!("Missing required parameter: '{field}'."),
        )
    }

    /// Codes that only report a harmless race; not counted as client mistakes.
    fn is_harmless(&self) -> bool {
        matches!(
            self.code,
            "response_cancel_not_active" | "conversation_already_has_active_response"
        )
    }
}

/// A conversation item the fake remembers.
pub(super) struct ItemRecord {
    pub json: Value,
    /// Assistant audio generated so far (bytes) and its byte rate; 0 for other items.
    pub generated_bytes: u64,
    pub bytes_per_ms: u64,
}

impl ItemRecord {
    pub fn generated_ms(&self) -> u64 {
        self.generated_bytes / self.bytes_per_ms.max(1)
    }
}

pub(crate) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) names: Names,
    pub(super) out: Outbox,
    pub(super) fault: Fault,
    pub(super) config: SessionConfig,
    configured: bool,
    /// Ends turns with server_vad; with turn detection off it only follows the speech, to
    /// measure the silence before each client commit. `None` until the first update.
    vad: Option<EnergyVad>,
    /// Turn modes this session has run in (each counted once in the stats).
    ran_server_turns: bool,
    ran_client_turns: bool,
    /// Uncommitted caller audio, µs.
    buffer_us: u64,
    /// Id promised in `speech_started` for the item the turn will become.
    speech_item: Option<String>,
    pub(super) items: HashMap<String, ItemRecord>,
    pub(super) last_item: Option<String>,
    next_id: u64,
    /// The response between `response.created` and `response.done`.
    pub(super) active: Option<ActiveResponse>,
    pub(super) tool: ToolState,
    pub(super) responses_done: u64,
    flush_delay: Option<Duration>,
}

impl Session {
    pub fn new(shared: Arc<Shared>, upgrade: &Upgrade, fault: Fault, session_no: u64) -> Self {
        let id = format!("sess_{session_no}");
        let config = SessionConfig::initial(upgrade.beta, &id, &upgrade.model);
        let mut out = Outbox::default();
        if fault != Fault::NoSessionCreated {
            out.emit(json!({"type": "session.created", "session": config.json()}));
        }
        Self {
            shared,
            names: Names { beta: upgrade.beta },
            out,
            fault,
            config,
            configured: false,
            vad: None,
            ran_server_turns: false,
            ran_client_turns: false,
            buffer_us: 0,
            speech_item: None,
            items: HashMap::new(),
            last_item: None,
            next_id: 0,
            active: None,
            tool: ToolState::Unused,
            responses_done: 0,
            flush_delay: None,
        }
    }

    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{}", self.next_id)
    }

    /// Extra wait before the next write (the slow `session.updated` fault).
    pub fn take_flush_delay(&mut self) -> Option<Duration> {
        self.flush_delay.take()
    }

    pub fn binary_frame(&mut self) {
        self.reject(
            "(binary frame)",
            None,
            Reject::new("invalid_value", "client events are JSON text frames"),
        );
    }

    pub fn on_client_text(&mut self, text: &str, now: Instant) {
        let event: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let r = Reject::new("invalid_json", format!("invalid JSON: {e}"));
                return self.reject("(unparseable)", None, r);
            }
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.shared.stats.client_event(&kind);
        if self.fault == Fault::NoSessionCreated {
            return;
        }
        let event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let result = if !self.configured && kind != "session.update" {
            Err(Reject::new(
                "session_not_configured",
                "send a valid session.update before any other event",
            ))
        } else {
            self.dispatch(&kind, &event, now)
        };
        if let Err(r) = result {
            self.reject(&kind, event_id.as_deref(), r);
        }
    }

    fn dispatch(&mut self, kind: &str, ev: &Value, now: Instant) -> Result<(), Reject> {
        match kind {
            "session.update" => self.session_update(ev),
            "input_audio_buffer.append" => self.append(ev, now),
            "input_audio_buffer.commit" => self.manual_commit(),
            "input_audio_buffer.clear" => {
                self.buffer_us = 0;
                self.speech_item = None;
                if let Some(vad) = &mut self.vad {
                    vad.reset();
                }
                self.out.emit(json!({"type": "input_audio_buffer.cleared"}));
                Ok(())
            }
            "conversation.item.create" => self.item_create(ev),
            "conversation.item.truncate" => self.truncate(ev),
            "conversation.item.delete" => {
                let id = str_field(ev, "item_id")?;
                self.items.remove(id).ok_or_else(|| item_not_found(id))?;
                self.out
                    .emit(json!({"type": "conversation.item.deleted", "item_id": id}));
                Ok(())
            }
            "conversation.item.retrieve" => {
                let id = str_field(ev, "item_id")?;
                let item = self.items.get(id).ok_or_else(|| item_not_found(id))?;
                let item = item.json.clone();
                self.out
                    .emit(json!({"type": "conversation.item.retrieved", "item": item}));
                Ok(())
            }
            "response.create" => self.response_create(ev, now),
            "response.cancel" => self.response_cancel(),
            "" => Err(Reject::missing("type")),
            other => Err(Reject::new(
                "invalid_value",
                format!("Invalid value: '{other}' is not a supported client event type."),
            )),
        }
    }

    pub(super) fn reject(&mut self, kind: &str, event_id: Option<&str>, r: Reject) {
        self.out
            .error("invalid_request_error", r.code, &r.message, event_id);
        if !r.is_harmless() {
            self.shared
                .stats
                .protocol_error(format!("{kind}: {}", r.message));
        }
    }

    fn session_update(&mut self, ev: &Value) -> Result<(), Reject> {
        let update = ev
            .get("session")
            .ok_or_else(|| Reject::missing("session"))?;
        self.config
            .apply_update(update)
            .map_err(|m| Reject::new("invalid_value", m))?;
        self.configured = true;
        let effective = self.config.effective().clone();
        let base_rms = self.shared.cfg.vad_threshold_rms;
        let rate = effective.input.rate();
        let td = effective.turn_detection.as_ref();
        match &mut self.vad {
            Some(vad) => vad.reconfigure(td, base_rms, rate),
            None => self.vad = Some(EnergyVad::new(td, base_rms, rate)),
        }
        let client_turns = td.is_none();
        let ran = if client_turns {
            &mut self.ran_client_turns
        } else {
            &mut self.ran_server_turns
        };
        if !std::mem::replace(ran, true) {
            self.shared.stats.turn_mode(client_turns);
        }
        self.out
            .emit(json!({"type": "session.updated", "session": self.config.json()}));
        if let Fault::SlowSessionUpdatedMs(ms) = self.fault {
            self.flush_delay = Some(Duration::from_millis(ms));
        }
        Ok(())
    }

    fn append(&mut self, ev: &Value, now: Instant) -> Result<(), Reject> {
        let audio = str_field(ev, "audio")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(audio)
            .map_err(|e| Reject::new("invalid_value", format!("audio is not valid base64: {e}")))?;
        let format = self.config.effective().input;
        let samples = format.decode(&bytes).ok_or_else(|| {
            Reject::new(
                "invalid_value",
                "PCM16 audio must have an even number of bytes",
            )
        })?;
        self.shared.stats.appended(samples.len(), format.rate());
        self.buffer_us += samples.len() as u64 * 1_000_000 / u64::from(format.rate());
        let mut events = Vec::new();
        if let Some(vad) = &mut self.vad {
            vad.push(&samples, &mut events);
        }
        for event in events {
            self.on_vad(event, now);
        }
        Ok(())
    }

    fn on_vad(&mut self, event: VadEvent, now: Instant) {
        let Some(td) = self.config.effective().turn_detection.clone() else {
            return;
        };
        match event {
            VadEvent::Started { audio_start_ms } => {
                let item_id = self.new_id("item");
                self.speech_item = Some(item_id.clone());
                self.out
                    .emit(json!({"type": "input_audio_buffer.speech_started",
                    "audio_start_ms": audio_start_ms, "item_id": item_id}));
                if td.interrupt_response {
                    self.cancel_active("turn_detected");
                }
            }
            VadEvent::Stopped { audio_end_ms } => {
                let item_id = self.speech_item.clone();
                self.out
                    .emit(json!({"type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": audio_end_ms, "item_id": item_id}));
                self.commit();
                if td.create_response && self.active.is_none() {
                    self.start_response(now);
                }
            }
        }
    }

    fn manual_commit(&mut self) -> Result<(), Reject> {
        let buffered_ms = self.buffer_us / 1000;
        if buffered_ms < MIN_COMMIT_MS {
            return Err(Reject::new(
                "input_audio_buffer_commit_empty",
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least \
                     {MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_ms}ms of audio."
                ),
            ));
        }
        if self.config.effective().turn_detection.is_none() {
            let trailing = self.vad.as_ref().and_then(EnergyVad::trailing_silence_ms);
            self.shared.stats.client_commit(trailing);
        }
        if let Some(vad) = &mut self.vad {
            vad.reset();
        }
        self.commit();
        Ok(())
    }

    /// The buffered caller audio becomes a user item (and its transcript).
    fn commit(&mut self) {
        let item_id = match self.speech_item.take() {
            Some(id) => id,
            None => self.new_id("item"),
        };
        self.buffer_us = 0;
        self.out.emit(json!({"type": "input_audio_buffer.committed",
            "previous_item_id": self.last_item, "item_id": item_id}));
        let item = json!({"id": item_id, "object": "realtime.item", "type": "message",
            "role": "user", "status": "completed",
            "content": [{"type": "input_audio", "transcript": null}]});
        self.add_item(item, 0);
        if self.config.effective().transcription {
            let transcript = self.shared.cfg.caller_transcript.clone();
            self.out.emit(
                json!({"type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id, "content_index": 0, "transcript": transcript,
                "usage": {"type": "duration", "seconds": 1}}),
            );
        }
    }

    /// Remembers `item` and announces it (`added` + `done`, or beta `created`).
    pub(super) fn add_item(&mut self, item: Value, bytes_per_ms: u64) {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.out.emit(json!({"type": self.names.item_added(),
            "previous_item_id": self.last_item, "item": item}));
        if let Some(done) = self.names.item_done() {
            self.out.emit(json!({"type": done,
                "previous_item_id": self.last_item, "item": item}));
        }
        self.items.insert(
            id.clone(),
            ItemRecord {
                json: item,
                generated_bytes: 0,
                bytes_per_ms,
            },
        );
        self.last_item = Some(id);
    }

    fn item_create(&mut self, ev: &Value) -> Result<(), Reject> {
        let item = ev
            .get("item")
            .and_then(Value::as_object)
            .ok_or_else(|| Reject::missing("item"))?;
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "message" => check_message(item)?,
            "function_call_output" => {
                let call_id = map_str(item, "call_id")?;
                map_str(item, "output")?;
                if !self.has_function_call(call_id) {
                    return Err(Reject::new(
                        "invalid_value",
                        format!(
                            "No tool call found for function call output with call_id {call_id}."
                        ),
                    ));
                }
            }
            "function_call" => {
                for f in ["call_id", "name", "arguments"] {
                    map_str(item, f)?;
                }
            }
            other => {
                return Err(Reject::new(
                    "invalid_value",
                    format!("Invalid value for item.type: '{other}'."),
                ))
            }
        }
        if let Some(prev) = ev.get("previous_item_id").and_then(Value::as_str) {
            if !self.items.contains_key(prev) {
                return Err(item_not_found(prev));
            }
        }
        let id = match item.get("id") {
            None | Some(Value::Null) => self.new_id("item"),
            Some(Value::String(id)) if !self.items.contains_key(id) => id.clone(),
            Some(other) => {
                return Err(Reject::new(
                    "invalid_value",
                    format!("item.id {other} is invalid or already used"),
                ))
            }
        };
        self.shared
            .stats
            .client_item(Value::Object(item.clone()).to_string());
        let mut stored = item.clone();
        stored.insert("id".into(), id.into());
        stored.insert("object".into(), "realtime.item".into());
        stored.insert("status".into(), "completed".into());
        if let (ToolState::Awaiting(awaited), Some(call_id)) =
            (&self.tool, item.get("call_id").and_then(Value::as_str))
        {
            if kind == "function_call_output" && awaited == call_id {
                self.tool = ToolState::Answered;
            }
        }
        self.add_item(Value::Object(stored), 0);
        Ok(())
    }

    fn has_function_call(&self, call_id: &str) -> bool {
        self.items.values().any(|i| {
            i.json.get("type").and_then(Value::as_str) == Some("function_call")
                && i.json.get("call_id").and_then(Value::as_str) == Some(call_id)
        })
    }

    fn truncate(&mut self, ev: &Value) -> Result<(), Reject> {
        let item_id = str_field(ev, "item_id")?;
        let content_index = ev
            .get("content_index")
            .and_then(Value::as_u64)
            .ok_or_else(|| Reject::missing("content_index"))?;
        let audio_end_ms = ev
            .get("audio_end_ms")
            .and_then(Value::as_u64)
            .ok_or_else(|| Reject::missing("audio_end_ms"))?;
        let item = self.items.get(item_id);
        self.shared.stats.truncate(Truncate {
            item_id: item_id.to_string(),
            audio_end_ms,
            generated_ms: item.map_or(0, ItemRecord::generated_ms),
        });
        let item = item.ok_or_else(|| item_not_found(item_id))?;
        if item.bytes_per_ms == 0 {
            return Err(Reject::new(
                "invalid_value",
                format!("item {item_id} has no assistant audio to truncate"),
            ));
        }
        if content_index != 0 {
            return Err(Reject::new(
                "invalid_value",
                format!("content_index {content_index} does not exist (only 0)"),
            ));
        }
        let generated_ms = item.generated_ms();
        if audio_end_ms > generated_ms {
            return Err(Reject::new(
                "invalid_value",
                format!(
                    "audio_end_ms {audio_end_ms} is longer than the {generated_ms} ms of audio \
                     generated for item {item_id}"
                ),
            ));
        }
        self.out.emit(
            json!({"type": "conversation.item.truncated", "item_id": item_id,
            "content_index": 0, "audio_end_ms": audio_end_ms}),
        );
        Ok(())
    }

    fn response_create(&mut self, ev: &Value, now: Instant) -> Result<(), Reject> {
        if ev.get("response").is_some_and(|r| !r.is_object()) {
            return Err(Reject::new("invalid_value", "response must be an object"));
        }
        if self.active.is_some() {
            return Err(Reject::new(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress.",
            ));
        }
        self.start_response(now);
        Ok(())
    }

    fn response_cancel(&mut self) -> Result<(), Reject> {
        if self.active.is_none() {
            return Err(Reject::new(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
            ));
        }
        self.cancel_active("client_cancelled");
        Ok(())
    }
}

fn str_field<'a>(ev: &'a Value, field: &str) -> Result<&'a str, Reject> {
    ev.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Reject::missing(field))
}

fn map_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, Reject> {
    obj.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Reject::missing(&format!("item.{field}")))
}

fn item_not_found(id: &str) -> Reject {
    Reject::new(
        "item_not_found",
        format!("Item with item_id '{id}' not found."),
    )
}

/// Roles and content part types a client may create.
fn check_message(item: &Map<String, Value>) -> Result<(), Reject> {
    let role = item.get("role").and_then(Value::as_str).unwrap_or("");
    let allowed: &[&str] = match role {
        "user" => &["input_text", "input_audio"],
        "system" => &["input_text"],
        "assistant" => &["output_text", "text"],
        other => {
            return Err(Reject::new(
                "invalid_value",
                format!("Invalid value for item.role: '{other}'."),
            ))
        }
    };
    let parts = item
        .get("content")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Reject::missing("item.content"))?;
    for part in parts {
        let ty = part.get("type").and_then(Value::as_str).unwrap_or("");
        if !allowed.contains(&ty) {
            return Err(Reject::new(
                "invalid_value",
                format!("content type '{ty}' is not allowed for role '{role}'"),
            ));
        }
        let field = if ty == "input_audio" { "audio" } else { "text" };
        if part.get(field).and_then(Value::as_str).is_none() {
            return Err(Reject::missing(&format!("item.content.{field}")));
        }
    }
    Ok(())
}
