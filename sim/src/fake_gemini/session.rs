//! One fake session's state machine: client messages in, server messages into the outbox.
//! No I/O here; [`super::connection`] feeds it frames and timer ticks.
//!
//! Parse failures (bad JSON, a first message that is not `setup`, an invalid setup) end
//! the session with close code 1007, as the real server does. Other client mistakes are
//! recorded in the stats and the session goes on.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::messages::{self, audio_blob, get, known_keys, object, opt_bool, opt_str, Envelope};
use super::response::{Response, ToolState};
use super::setup::{self, SessionSetup};
use super::stats::Count;
use super::{Fault, Shared};
use crate::fake_common::energy_vad::{EnergyVad, VadEvent};
use crate::fake_common::reply::split_words;

/// Close code for unparseable or invalid client messages ("invalid frame payload data").
pub(crate) const CLOSE_INVALID: u16 = 1007;

pub(crate) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) fault: Fault,
    out: Vec<String>,
    close: Option<(u16, String)>,
    pub(super) setup: Option<SessionSetup>,
    /// Automatic activity detection: the fake's stand-in for Gemini's.
    vad: Option<EnergyVad>,
    /// Manual activity detection: between `activityStart` and `activityEnd`.
    activity_open: bool,
    pub(super) response: Option<Response>,
    pub(super) tool: ToolState,
    /// A caller turn that ended while a reply could not be interrupted.
    pub(super) queued_turn: bool,
    next_id: u64,
}

impl Session {
    pub fn new(shared: Arc<Shared>, fault: Fault) -> Self {
        Self {
            shared,
            fault,
            out: Vec::new(),
            close: None,
            setup: None,
            vad: None,
            activity_open: false,
            response: None,
            tool: ToolState::Unused,
            queued_turn: false,
            next_id: 0,
        }
    }

    pub fn has_setup(&self) -> bool {
        self.setup.is_some()
    }

    pub fn take_out(&mut self) -> Vec<String> {
        std::mem::take(&mut self.out)
    }

    /// `(code, reason)` once the session must end.
    pub fn take_close(&mut self) -> Option<(u16, String)> {
        self.close.take()
    }

    pub(super) fn emit(&mut self, v: Value) {
        self.out.push(v.to_string());
    }

    pub(super) fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{}", self.next_id)
    }

    pub(super) fn error(&mut self, message: String) {
        self.shared.stats.protocol_error(message);
    }

    /// A mistake the real server answers by closing the socket.
    fn fatal(&mut self, message: String) {
        self.shared.stats.protocol_error(message.clone());
        self.close = Some((CLOSE_INVALID, message));
    }

    pub fn setup_timed_out(&mut self, timeout_ms: u64) {
        self.fatal(format!("no setup message within {timeout_ms} ms"));
    }

    pub fn go_away(&mut self) {
        self.emit(json!({"goAway": {"timeLeft": "10s"}}));
    }

    pub fn on_client_frame(&mut self, bytes: &[u8], now: Instant) {
        if self.close.is_some() {
            return;
        }
        let (kind, body) = match messages::envelope(bytes) {
            Ok(m) => m,
            Err(e) => return self.fatal(format!("unparseable message: {}", e.0)),
        };
        self.shared.stats.client_message(&label(kind, &body));
        if self.setup.is_none() {
            if kind != Envelope::Setup {
                return self.fatal(format!(
                    "the first message must be setup, got {}",
                    kind.name()
                ));
            }
            return match setup::parse(&body) {
                Ok(setup) => self.start(setup, &body),
                Err(e) => self.fatal(format!("invalid setup: {e}")),
            };
        }
        if self.fault == Fault::NoSetupComplete {
            return;
        }
        let result = match kind {
            Envelope::Setup => {
                Err("setup sent twice; the configuration cannot change mid-session".into())
            }
            Envelope::RealtimeInput => self.realtime_input(&body, now),
            Envelope::ClientContent => self.client_content(&body, now),
            Envelope::ToolResponse => self.tool_response(&body, now),
        };
        if let Err(e) = result {
            self.error(format!("{}: {e}", kind.name()));
        }
    }

    fn start(&mut self, setup: SessionSetup, body: &Value) {
        self.shared.stats.setup(body);
        if !setup.manual_activity {
            let factor = if setup.low_start_sensitivity {
                2.0
            } else {
                1.0
            };
            let threshold = self.shared.cfg.vad_threshold_rms * factor;
            self.vad = Some(EnergyVad::new(threshold, setup.silence_ms, 16_000));
        }
        self.setup = Some(setup);
        if self.fault == Fault::NoSetupComplete {
            return;
        }
        self.emit(json!({"setupComplete": {}}));
        if self.fault == Fault::GarbageFrame {
            self.out
                .push("<<fault injection: this frame is not JSON>>".into());
        }
    }

    fn manual(&self) -> bool {
        self.setup.as_ref().is_some_and(|s| s.manual_activity)
    }

    fn realtime_input(&mut self, body: &Value, now: Instant) -> Result<(), String> {
        let obj = object(body, "realtimeInput")?;
        known_keys(
            obj,
            &[
                "audio",
                "audioStreamEnd",
                "activityStart",
                "activityEnd",
                "text",
                "mediaChunks",
                "video",
            ],
            "realtimeInput",
        )?;
        if obj.is_empty() {
            return Err("empty realtimeInput".into());
        }
        for (key, value) in obj {
            match key.as_str() {
                "audio" => {
                    let samples = audio_blob(value, "realtimeInput.audio")?;
                    self.on_audio(&samples, now);
                }
                "mediaChunks" | "media_chunks" => {
                    let chunks = value.as_array().ok_or("mediaChunks must be an array")?;
                    for chunk in chunks {
                        let samples = audio_blob(chunk, "realtimeInput.mediaChunks[]")?;
                        self.on_audio(&samples, now);
                    }
                }
                "audioStreamEnd" | "audio_stream_end" => self.audio_stream_end(value, now)?,
                "activityStart" | "activity_start" => self.activity_start(value)?,
                "activityEnd" | "activity_end" => self.activity_end(value, now)?,
                "text" => {
                    let text = value
                        .as_str()
                        .ok_or("realtimeInput.text must be a string")?;
                    if text.trim().is_empty() {
                        return Err("realtimeInput.text is empty".into());
                    }
                    self.caller_turn(now, false);
                }
                _ => return Err(format!("the fake takes no {key}")),
            }
        }
        Ok(())
    }

    fn on_audio(&mut self, samples: &[i16], now: Instant) {
        let outside = self.manual() && !self.activity_open;
        self.shared.stats.audio(samples.len(), outside);
        let mut events = Vec::new();
        if let Some(vad) = &mut self.vad {
            vad.push(samples, &mut events);
        }
        for event in events {
            match event {
                VadEvent::Started => self.caller_speech_started(),
                VadEvent::Stopped => self.caller_turn(now, true),
            }
        }
    }

    fn audio_stream_end(&mut self, value: &Value, now: Instant) -> Result<(), String> {
        if value != &Value::Bool(true) {
            return Err("audioStreamEnd must be true".into());
        }
        if self.manual() {
            return Err("audioStreamEnd needs automatic activity detection".into());
        }
        // The microphone went quiet: flush the detector, ending a turn in progress.
        let speaking = self.vad.as_ref().is_some_and(EnergyVad::is_speaking);
        if let Some(vad) = &mut self.vad {
            vad.reset();
        }
        if speaking {
            self.caller_turn(now, true);
        }
        Ok(())
    }

    fn activity_start(&mut self, value: &Value) -> Result<(), String> {
        empty_object(value, "activityStart")?;
        self.shared.stats.count(Count::ActivityStart);
        if !self.manual() {
            return Err("activityStart needs automaticActivityDetection.disabled = true".into());
        }
        if std::mem::replace(&mut self.activity_open, true) {
            return Err("activityStart while an activity is already open".into());
        }
        self.caller_speech_started();
        Ok(())
    }

    fn activity_end(&mut self, value: &Value, now: Instant) -> Result<(), String> {
        empty_object(value, "activityEnd")?;
        self.shared.stats.count(Count::ActivityEnd);
        if !self.manual() {
            return Err("activityEnd needs automaticActivityDetection.disabled = true".into());
        }
        if !std::mem::replace(&mut self.activity_open, false) {
            return Err("activityEnd without activityStart".into());
        }
        self.caller_turn(now, true);
        Ok(())
    }

    fn caller_speech_started(&mut self) {
        if self.setup.as_ref().is_some_and(|s| s.barge_in) {
            self.barge_in();
        }
    }

    /// The caller's turn is over: transcript, then a reply after the think time.
    pub(super) fn caller_turn(&mut self, now: Instant, spoken: bool) {
        self.shared.stats.count(Count::CallerTurn);
        if spoken && self.setup.as_ref().is_some_and(|s| s.input_transcription) {
            // In two fragments, the last one finished, as the real transcription streams.
            let pieces = split_words(&self.shared.cfg.caller_transcript, 2);
            let last = pieces.len().saturating_sub(1);
            for (i, piece) in pieces.into_iter().enumerate() {
                let mut t = Map::new();
                t.insert("text".into(), piece.into());
                if i == last {
                    t.insert("finished".into(), true.into());
                }
                self.emit(json!({"serverContent": {"inputTranscription": t}}));
            }
        }
        if self.response.is_some() {
            // Barge-in is off (or this turn is text): answer once the reply is done.
            if self.setup.as_ref().is_some_and(|s| s.barge_in) {
                self.barge_in();
            } else {
                self.queued_turn = true;
                return;
            }
        }
        self.think(now);
    }

    fn client_content(&mut self, body: &Value, now: Instant) -> Result<(), String> {
        let what = "clientContent";
        let obj = object(body, what)?;
        known_keys(obj, &["turns", "turnComplete"], what)?;
        let turn_complete = opt_bool(obj, "turnComplete", what)?.unwrap_or(false);
        let turns = match get(obj, "turns") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err("turns must be an array".into()),
        };
        let mut parsed = Vec::with_capacity(turns.len());
        for turn in &turns {
            parsed.push(text_turn(turn)?);
        }
        if !turn_complete {
            for (role, text) in &parsed {
                self.shared.stats.history_turn(role, text);
            }
            return Ok(());
        }
        if !parsed.iter().any(|(role, _)| role == "user") {
            return Err("turnComplete without a user turn to answer".into());
        }
        self.caller_turn(now, false);
        Ok(())
    }

    fn tool_response(&mut self, body: &Value, now: Instant) -> Result<(), String> {
        let what = "toolResponse";
        let obj = object(body, what)?;
        known_keys(obj, &["functionResponses"], what)?;
        let responses = get(obj, "functionResponses")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or("functionResponses must be a non-empty array")?;
        for r in responses {
            let what = "functionResponses[]";
            let r = object(r, what)?;
            known_keys(
                r,
                &["id", "name", "response", "willContinue", "scheduling"],
                what,
            )?;
            let id = opt_str(r, "id", what)?.unwrap_or("");
            let name = opt_str(r, "name", what)?.unwrap_or("");
            let response = match get(r, "response") {
                Some(response @ Value::Object(_)) => response.clone(),
                _ => return Err("response must be an object (a proto Struct)".into()),
            };
            self.answer_tool(id, name, now)?;
            self.shared.stats.tool_response_payload(&response);
        }
        Ok(())
    }
}

/// `{role, parts:[{text}…]}` → (role, joined text).
fn text_turn(turn: &Value) -> Result<(String, String), String> {
    let what = "clientContent.turns[]";
    let t = object(turn, what)?;
    known_keys(t, &["role", "parts"], what)?;
    let role = opt_str(t, "role", what)?.ok_or("every turn needs a role")?;
    if role != "user" && role != "model" {
        return Err(format!("role must be user or model, got {role:?}"));
    }
    let parts = get(t, "parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("every turn needs a non-empty parts array")?;
    let mut text = String::new();
    for p in parts {
        let p = object(p, "part")?;
        let piece = opt_str(p, "text", "part")?.ok_or("the fake only takes text parts")?;
        text.push_str(piece);
    }
    Ok((role.to_string(), text))
}

fn empty_object(v: &Value, what: &str) -> Result<(), String> {
    match v.as_object() {
        Some(o) if o.is_empty() => Ok(()),
        _ => Err(format!("{what} must be {{}}")),
    }
}

/// The message's kind for the stats: `realtimeInput.audio`, `setup`, ….
fn label(kind: Envelope, body: &Value) -> String {
    match (kind, body.as_object().and_then(|o| o.keys().next())) {
        (Envelope::RealtimeInput, Some(field)) => format!("realtimeInput.{field}"),
        _ => kind.name().to_string(),
    }
}
