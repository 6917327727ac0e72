//! What a live session remembers, and how inputs and server messages translate.
//!
//! Pure logic (no I/O), so the protocol rules are unit-tested without sockets.
//!
//! Gemini has no response or item ids: every model turn (up to `turnComplete`) becomes one
//! item `turn-N` for the call. After `interrupted` (or the call's own barge-in) the rest of
//! that turn's audio is dropped; the next turn gets a new id.

use std::collections::{HashMap, VecDeque};

use base64::Engine;
use tracing::{debug, info, warn};

use super::client_messages::{tool_response_body, ClientMessage, FunctionResponse};
use super::server_messages::{Blob, FunctionCall, ServerContent, ServerMessage, Transcription};
use crate::agent::{AgentEvent, AgentInput, Role};
use crate::audio::pcm;

/// The only output rate the session announces.
pub const OUTPUT_RATE: u32 = 24_000;
/// Pending function calls kept; more would mean a misbehaving server.
const REMEMBERED_CALLS: usize = 64;
/// Cancelled call ids kept (to suppress their late results).
const REMEMBERED_CANCELLED: usize = 64;
/// Longest transcript line kept, in bytes; the rest of a runaway line is dropped.
const MAX_TRANSCRIPT: usize = 16 * 1024;

/// The model turn being received.
#[derive(Debug, Default)]
struct Turn {
    audio_sent: bool,
    audio_done_sent: bool,
    generation_complete: bool,
    /// Cut by a barge-in (the server's `interrupted` or the call's): audio dropped,
    /// the response ends `cancelled`.
    cut: bool,
    /// `interrupted` came before any output: nothing to drop, but the turn (if nothing
    /// follows) ends `cancelled`.
    interrupted_early: bool,
    /// `SpeechStarted` already reported for this turn.
    barge_in_reported: bool,
}

/// A function call waiting for its result.
#[derive(Debug, Clone)]
struct PendingCall {
    /// The id the server gave (`None`: it gave none, the call got a local one).
    wire_id: Option<String>,
    name: String,
}

pub struct ConversationState {
    local_turns: bool,
    /// Local turns: `activityStart` sent and `activityEnd` not yet.
    activity_open: bool,
    turn_no: u64,
    turn: Turn,
    caller_text: String,
    agent_text: String,
    calls: HashMap<String, PendingCall>,
    cancelled: VecDeque<String>,
    local_call_no: u64,
}

impl ConversationState {
    pub fn new(local_turns: bool) -> Self {
        Self {
            local_turns,
            activity_open: false,
            turn_no: 1,
            turn: Turn::default(),
            caller_text: String::new(),
            agent_text: String::new(),
            calls: HashMap::new(),
            cancelled: VecDeque::new(),
            local_call_no: 0,
        }
    }

    /// Item id of the current model turn.
    pub fn item_id(&self) -> String {
        format!("turn-{}", self.turn_no)
    }

    /// Client messages for one input from the call.
    pub fn on_input(&mut self, input: AgentInput) -> Vec<ClientMessage> {
        match input {
            AgentInput::Audio(samples) if samples.is_empty() => Vec::new(),
            AgentInput::Audio(samples) => {
                let data =
                    base64::engine::general_purpose::STANDARD.encode(pcm::to_le_bytes(&samples));
                let mut out = Vec::with_capacity(2);
                if self.local_turns && !self.activity_open {
                    self.activity_open = true;
                    out.push(ClientMessage::ActivityStart);
                }
                out.push(ClientMessage::Audio { data });
                out
            }
            AgentInput::CallerPaused => Vec::new(),
            AgentInput::EndOfTurn if self.local_turns && self.activity_open => {
                self.activity_open = false;
                vec![ClientMessage::ActivityEnd]
            }
            AgentInput::EndOfTurn => {
                debug!(
                    local_turns = self.local_turns,
                    "end of turn without an open activity; nothing to send"
                );
                Vec::new()
            }
            AgentInput::Text(text) => vec![ClientMessage::Content {
                turns: vec![(Role::Caller, text)],
                turn_complete: true,
            }],
            // DTMF reaches the model as streamed text `[DTMF 5]`: there is no key-press
            // input, and the instructions can tell the model what digits mean.
            AgentInput::Dtmf(digit) => vec![ClientMessage::RealtimeText(format!("[DTMF {digit}]"))],
            AgentInput::ToolResult { call_id, output } => self.tool_result(call_id, &output),
            // No truncate in Gemini: only stop passing on the rest of that turn's audio.
            AgentInput::Interrupted { item_id, heard_ms } => {
                if item_id == self.item_id() {
                    debug!(
                        item_id,
                        heard_ms, "call barged in; dropping the turn's audio"
                    );
                    self.turn.cut = true;
                }
                Vec::new()
            }
        }
    }

    fn tool_result(&mut self, call_id: String, output: &str) -> Vec<ClientMessage> {
        if self.cancelled.contains(&call_id) {
            debug!(call_id, "result of a cancelled tool call; not sent");
            return Vec::new();
        }
        let Some(call) = self.calls.remove(&call_id) else {
            warn!(
                call_id,
                "result for a tool call this session never made; not sent"
            );
            return Vec::new();
        };
        vec![ClientMessage::ToolResponse(FunctionResponse {
            id: call.wire_id,
            name: call.name,
            response: tool_response_body(output),
        })]
    }

    /// The call-facing events for one server frame (JSON in a text or binary frame).
    pub fn on_server_frame(&mut self, bytes: &[u8]) -> Vec<AgentEvent> {
        match ServerMessage::parse(bytes) {
            Ok(msg) => self.on_server_message(msg),
            Err(e) => {
                warn!(error = %e, len = bytes.len(), "malformed Gemini Live message; skipped");
                vec![non_fatal(format!("malformed Gemini Live message: {e}"))]
            }
        }
    }

    pub fn on_server_message(&mut self, msg: ServerMessage) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        if msg.setup_complete.is_some() {
            debug!("setupComplete after set-up; ignored");
        }
        if let Some(content) = msg.server_content {
            self.server_content(content, &mut out);
        }
        if let Some(call) = msg.tool_call {
            for f in call.function_calls.unwrap_or_default() {
                out.push(self.function_call(f));
            }
        }
        if let Some(c) = msg.tool_call_cancellation {
            for id in c.ids.unwrap_or_default() {
                info!(call_id = id, "Gemini cancelled a tool call");
                self.calls.remove(&id);
                if self.cancelled.len() >= REMEMBERED_CANCELLED {
                    self.cancelled.pop_front();
                }
                self.cancelled.push_back(id);
            }
        }
        if let Some(go) = msg.go_away {
            let left = go.time_left();
            warn!(time_left = left, "Gemini Live goAway");
            out.push(non_fatal(format!(
                "Gemini Live goAway: the session ends in {left}"
            )));
        }
        out
    }

    fn server_content(&mut self, c: ServerContent, out: &mut Vec<AgentEvent>) {
        if let Some(t) = c.input_transcription {
            if let Some(line) = accumulate(&mut self.caller_text, t) {
                out.push(transcript(Role::Caller, line));
            }
        }
        if c.interrupted == Some(true) {
            // Interrupted before it produced anything (livekit sees this): audio that
            // follows is a new generation, not a stale one.
            if self.turn.audio_sent || self.turn.generation_complete {
                self.turn.cut = true;
            } else {
                self.turn.interrupted_early = true;
            }
            if !std::mem::replace(&mut self.turn.barge_in_reported, true) {
                out.push(AgentEvent::SpeechStarted);
            }
        }
        for part in c.model_turn.and_then(|t| t.parts).unwrap_or_default() {
            // Text parts (thoughts, text answers) are not spoken; ignored.
            if let Some(blob) = part.inline_data {
                if let Some(ev) = self.audio(blob) {
                    out.push(ev);
                }
            }
        }
        if let Some(t) = c.output_transcription {
            if let Some(line) = accumulate(&mut self.agent_text, t) {
                out.push(transcript(Role::Agent, line));
            }
        }
        if c.generation_complete == Some(true) {
            self.turn.generation_complete = true;
            self.audio_done(out);
        }
        if c.turn_complete == Some(true) {
            for (role, text) in [
                (Role::Caller, &mut self.caller_text),
                (Role::Agent, &mut self.agent_text),
            ] {
                let line = std::mem::take(text);
                if !line.trim().is_empty() {
                    out.push(transcript(role, line));
                }
            }
            self.audio_done(out);
            let status = if self.turn.cut || self.turn.interrupted_early {
                "cancelled"
            } else {
                "completed"
            };
            out.push(AgentEvent::ResponseDone {
                status: status.into(),
            });
            self.turn_no += 1;
            self.turn = Turn::default();
        }
    }

    fn audio(&mut self, blob: Blob) -> Option<AgentEvent> {
        match blob.pcm_rate() {
            None => {
                debug!(mime = ?blob.mime_type, "non-audio inline data; ignored");
                return None;
            }
            Some(Some(rate)) if rate != OUTPUT_RATE => {
                return Some(non_fatal(format!(
                    "Gemini Live sent audio at {rate} Hz, expected {OUTPUT_RATE}; skipped"
                )));
            }
            Some(_) => {}
        }
        if self.turn.cut {
            return None;
        }
        let data = blob.data.unwrap_or_default();
        let bytes = match base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) {
            Ok(b) => b,
            Err(e) => return Some(non_fatal(format!("Gemini Live audio is not base64: {e}"))),
        };
        if !bytes.len().is_multiple_of(2) {
            return Some(non_fatal(format!(
                "Gemini Live audio has an odd byte count ({}); skipped",
                bytes.len()
            )));
        }
        if bytes.is_empty() {
            return None;
        }
        self.turn.audio_sent = true;
        self.turn.interrupted_early = false;
        Some(AgentEvent::Audio {
            item_id: self.item_id(),
            samples: pcm::from_le_bytes(&bytes),
        })
    }

    fn audio_done(&mut self, out: &mut Vec<AgentEvent>) {
        if self.turn.audio_sent && !self.turn.audio_done_sent {
            self.turn.audio_done_sent = true;
            out.push(AgentEvent::AudioDone {
                item_id: self.item_id(),
            });
        }
    }

    fn function_call(&mut self, f: FunctionCall) -> AgentEvent {
        let name = f.name.unwrap_or_default();
        if name.is_empty() {
            warn!(id = ?f.id, "function call without a name");
        }
        let arguments = match f.args {
            None | Some(serde_json::Value::Null) => "{}".to_string(),
            Some(args) => args.to_string(),
        };
        let call_id = match f.id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => {
                self.local_call_no += 1;
                format!("local-call-{}", self.local_call_no)
            }
        };
        if self.calls.len() >= REMEMBERED_CALLS {
            warn!("too many unanswered tool calls; forgetting them");
            self.calls.clear();
        }
        self.calls.insert(
            call_id.clone(),
            PendingCall {
                wire_id: f.id.filter(|id| !id.is_empty()),
                name: name.clone(),
            },
        );
        AgentEvent::ToolCall {
            call_id,
            name,
            arguments,
        }
    }
}

/// Adds a fragment to `line`; the whole line when the fragment finishes it.
fn accumulate(line: &mut String, t: Transcription) -> Option<String> {
    if let Some(text) = t.text {
        let room = MAX_TRANSCRIPT.saturating_sub(line.len());
        if text.len() <= room {
            line.push_str(&text);
        } else {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            line.push_str(&text[..cut]);
        }
    }
    if t.finished == Some(true) {
        let whole = std::mem::take(line);
        return (!whole.trim().is_empty()).then_some(whole);
    }
    None
}

fn transcript(role: Role, text: String) -> AgentEvent {
    AgentEvent::Transcript {
        role,
        text: text.trim().to_string(),
    }
}

fn non_fatal(message: String) -> AgentEvent {
    AgentEvent::Error {
        message,
        fatal: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn frame(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn audio(bytes: &[u8]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        frame(json!({"serverContent": {"modelTurn": {"parts": [
            {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": b64}}]}}}))
    }

    fn content(v: Value) -> Vec<u8> {
        frame(json!({ "serverContent": v }))
    }

    fn samples(item: &str, s: &[i16]) -> AgentEvent {
        AgentEvent::Audio {
            item_id: item.into(),
            samples: s.to_vec(),
        }
    }

    fn done(status: &str) -> AgentEvent {
        AgentEvent::ResponseDone {
            status: status.into(),
        }
    }

    #[test]
    fn a_turn_maps_to_audio_audio_done_and_response_done() {
        let mut s = ConversationState::new(false);
        assert_eq!(
            s.on_server_frame(&audio(&[1, 0, 2, 0])),
            vec![samples("turn-1", &[1, 2])]
        );
        // Text parts are ignored.
        let text =
            frame(json!({"serverContent": {"modelTurn": {"parts": [{"text": "thinking"}]}}}));
        assert!(s.on_server_frame(&text).is_empty());
        assert_eq!(
            s.on_server_frame(&content(json!({"generationComplete": true}))),
            vec![AgentEvent::AudioDone {
                item_id: "turn-1".into()
            }]
        );
        // AudioDone is not repeated at turnComplete.
        assert_eq!(
            s.on_server_frame(&content(json!({"turnComplete": true}))),
            vec![done("completed")]
        );
        assert_eq!(
            s.on_server_frame(&audio(&[3, 0])),
            vec![samples("turn-2", &[3])]
        );
        assert_eq!(
            s.on_server_frame(&content(json!({"turnComplete": true}))),
            vec![
                AgentEvent::AudioDone {
                    item_id: "turn-2".into()
                },
                done("completed")
            ]
        );
    }

    #[test]
    fn interrupted_signals_barge_in_and_drops_the_rest_of_the_turn() {
        let mut s = ConversationState::new(false);
        s.on_server_frame(&audio(&[1, 0]));
        assert_eq!(
            s.on_server_frame(&content(json!({"interrupted": true}))),
            vec![AgentEvent::SpeechStarted]
        );
        assert!(s.on_server_frame(&audio(&[2, 0])).is_empty(), "dropped");
        assert!(s
            .on_server_frame(&content(json!({"interrupted": true})))
            .is_empty());
        assert_eq!(
            s.on_server_frame(&content(json!({"turnComplete": true}))),
            vec![
                AgentEvent::AudioDone {
                    item_id: "turn-1".into()
                },
                done("cancelled")
            ]
        );
        assert_eq!(
            s.on_server_frame(&audio(&[4, 0])),
            vec![samples("turn-2", &[4])]
        );
    }

    #[test]
    fn interrupted_before_any_output_drops_nothing() {
        let mut s = ConversationState::new(false);
        assert_eq!(
            s.on_server_frame(&content(json!({"interrupted": true}))),
            vec![AgentEvent::SpeechStarted]
        );
        assert_eq!(
            s.on_server_frame(&content(json!({"turnComplete": true}))),
            vec![done("cancelled")],
            "no audio, no AudioDone"
        );
        s.on_server_frame(&content(json!({"interrupted": true})));
        assert_eq!(
            s.on_server_frame(&audio(&[7, 0])),
            vec![samples("turn-2", &[7])],
            "a new generation after an early interruption is played"
        );
        let end = s.on_server_frame(&content(json!({"turnComplete": true})));
        assert_eq!(end.last(), Some(&done("completed")));
    }

    #[test]
    fn the_calls_barge_in_drops_only_the_current_turn() {
        let mut s = ConversationState::new(false);
        s.on_server_frame(&audio(&[1, 0]));
        let stale = AgentInput::Interrupted {
            item_id: "turn-0".into(),
            heard_ms: 10,
        };
        assert!(s.on_input(stale).is_empty(), "nothing goes on the wire");
        assert_eq!(s.on_server_frame(&audio(&[2, 0])).len(), 1);
        s.on_input(AgentInput::Interrupted {
            item_id: "turn-1".into(),
            heard_ms: 10,
        });
        assert!(s.on_server_frame(&audio(&[3, 0])).is_empty());
        let end = s.on_server_frame(&content(
            json!({"generationComplete": true, "turnComplete": true}),
        ));
        assert_eq!(end.last(), Some(&done("cancelled")));
        assert_eq!(s.on_server_frame(&audio(&[5, 0])).len(), 1);
    }

    #[test]
    fn transcripts_join_fragments() {
        let mut s = ConversationState::new(false);
        assert!(s
            .on_server_frame(&content(
                json!({"inputTranscription": {"text": "Olá, eu "}})
            ))
            .is_empty());
        assert_eq!(
            s.on_server_frame(&content(
                json!({"inputTranscription": {"text": "queria ajuda.", "finished": true}})
            )),
            vec![AgentEvent::Transcript {
                role: Role::Caller,
                text: "Olá, eu queria ajuda.".into()
            }]
        );
        s.on_server_frame(&content(
            json!({"outputTranscription": {"text": " Claro! "}}),
        ));
        s.on_server_frame(&content(
            json!({"outputTranscription": {"text": "Posso ajudar."}}),
        ));
        s.on_server_frame(&content(json!({"inputTranscription": {"text": "hm"}})));
        assert_eq!(
            s.on_server_frame(&content(json!({"turnComplete": true}))),
            vec![
                AgentEvent::Transcript {
                    role: Role::Caller,
                    text: "hm".into()
                },
                AgentEvent::Transcript {
                    role: Role::Agent,
                    text: "Claro! Posso ajudar.".into()
                },
                done("completed")
            ]
        );
    }

    #[test]
    fn tool_calls_round_trip_and_cancelled_results_are_not_sent() {
        let mut s = ConversationState::new(false);
        let calls = s.on_server_frame(&frame(json!({"toolCall": {"functionCalls": [
            {"id": "fc_1", "name": "lookup", "args": {"phone": "1"}},
            {"id": "fc_2", "name": "hangup"}]}})));
        assert_eq!(
            calls,
            vec![
                AgentEvent::ToolCall {
                    call_id: "fc_1".into(),
                    name: "lookup".into(),
                    arguments: r#"{"phone":"1"}"#.into()
                },
                AgentEvent::ToolCall {
                    call_id: "fc_2".into(),
                    name: "hangup".into(),
                    arguments: "{}".into()
                }
            ]
        );
        let out = s.on_input(AgentInput::ToolResult {
            call_id: "fc_1".into(),
            output: r#"{"name":"Ana"}"#.into(),
        });
        assert_eq!(
            out,
            vec![ClientMessage::ToolResponse(FunctionResponse {
                id: Some("fc_1".into()),
                name: "lookup".into(),
                response: json!({"result": {"name": "Ana"}})
            })]
        );
        assert!(s
            .on_server_frame(&frame(json!({"toolCallCancellation": {"ids": ["fc_2"]}})))
            .is_empty());
        let late = AgentInput::ToolResult {
            call_id: "fc_2".into(),
            output: "ok".into(),
        };
        assert!(s.on_input(late).is_empty());
        let unknown = AgentInput::ToolResult {
            call_id: "fc_9".into(),
            output: "ok".into(),
        };
        assert!(s.on_input(unknown).is_empty());
    }

    #[test]
    fn a_call_without_an_id_gets_a_local_one_and_none_on_the_wire() {
        let mut s = ConversationState::new(false);
        let ev = s.on_server_frame(&frame(
            json!({"toolCall": {"functionCalls": [{"name": "f"}]}}),
        ));
        let [AgentEvent::ToolCall { call_id, .. }] = ev.as_slice() else {
            panic!("{ev:?}");
        };
        let out = s.on_input(AgentInput::ToolResult {
            call_id: call_id.clone(),
            output: "plain".into(),
        });
        let [ClientMessage::ToolResponse(r)] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(r.id, None);
        assert_eq!(r.response, json!({"result": "plain"}));
    }

    #[test]
    fn malformed_frames_go_away_and_bad_audio_are_non_fatal_errors() {
        let mut s = ConversationState::new(false);
        let is_non_fatal =
            |ev: &[AgentEvent]| matches!(ev, [AgentEvent::Error { fatal: false, .. }]);
        assert!(is_non_fatal(&s.on_server_frame(b"garbage")));
        assert!(is_non_fatal(&s.on_server_frame(&audio(&[1, 0, 2]))));
        let bad_b64 = frame(json!({"serverContent": {"modelTurn": {"parts": [
            {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "!!"}}]}}}));
        assert!(is_non_fatal(&s.on_server_frame(&bad_b64)));
        let wrong_rate = frame(json!({"serverContent": {"modelTurn": {"parts": [
            {"inlineData": {"mimeType": "audio/pcm;rate=16000", "data": "AAA="}}]}}}));
        assert!(is_non_fatal(&s.on_server_frame(&wrong_rate)));
        let go = s.on_server_frame(&frame(json!({"goAway": {"timeLeft": "10s"}})));
        let [AgentEvent::Error {
            message,
            fatal: false,
        }] = go.as_slice()
        else {
            panic!("{go:?}");
        };
        assert!(
            message.contains("goAway") && message.contains("10s"),
            "{message}"
        );
        assert!(s
            .on_server_frame(br#"{"usageMetadata":{"totalTokenCount":3}}"#)
            .is_empty());
    }

    #[test]
    fn inputs_map_to_client_messages() {
        let mut s = ConversationState::new(false);
        assert!(s.on_input(AgentInput::Audio(vec![])).is_empty());
        assert_eq!(
            s.on_input(AgentInput::Audio(vec![1, -1])),
            vec![ClientMessage::Audio {
                data: "AQD//w==".into()
            }]
        );
        assert!(s.on_input(AgentInput::EndOfTurn).is_empty());
        assert_eq!(
            s.on_input(AgentInput::Dtmf('5')),
            vec![ClientMessage::RealtimeText("[DTMF 5]".into())]
        );
        assert_eq!(
            s.on_input(AgentInput::Text("Oi".into())),
            vec![ClientMessage::Content {
                turns: vec![(Role::Caller, "Oi".into())],
                turn_complete: true
            }]
        );
    }

    #[test]
    fn local_turns_wrap_audio_in_activities() {
        let mut s = ConversationState::new(true);
        let out = s.on_input(AgentInput::Audio(vec![0]));
        assert_eq!(out.first(), Some(&ClientMessage::ActivityStart));
        assert_eq!(out.len(), 2);
        assert_eq!(s.on_input(AgentInput::Audio(vec![0])).len(), 1);
        assert_eq!(
            s.on_input(AgentInput::EndOfTurn),
            vec![ClientMessage::ActivityEnd]
        );
        assert!(
            s.on_input(AgentInput::EndOfTurn).is_empty(),
            "no activity open"
        );
        assert_eq!(
            s.on_input(AgentInput::Audio(vec![0])).first(),
            Some(&ClientMessage::ActivityStart)
        );
    }
}
