//! What a live conversation remembers, and how inputs and server messages translate.
//!
//! Pure logic (no I/O, the clock is passed in), so the protocol rules are unit-tested
//! without sockets.
//!
//! Answers. ElevenLabs has no response ids and no end-of-audio event, so the state
//! groups audio into answers itself: an answer's item id is `el-<event_id of its first
//! audio>`, and a new answer starts after an interruption, a `user_transcript`, or the end
//! of the previous one. An answer ends when no audio came for `answer_gap_ms` after its
//! `agent_response` (the text arrives once the agent has decided what to say, so a gap
//! after it is the end of the speech, not the LLM thinking). Without an `agent_response`
//! the gap is [`NO_RESPONSE_GAP_FACTOR`] times longer. The heuristic only decides when the
//! call flushes its resampler and marks the answer complete; no audio is lost if it fires
//! early, since later audio opens a new item.

use std::time::{Duration, Instant};

use base64::Engine;
use tracing::{debug, warn};

use super::client_messages::ClientMessage;
use super::server_messages::{describe_error, ServerMessage};
use super::wire_audio::WireFormat;
use crate::agent::{AgentEvent, AgentInput, Role};

/// How much longer the quiet gap is when the answer's `agent_response` never came.
const NO_RESPONSE_GAP_FACTOR: u32 = 4;

/// What one server message asks of the session: replies go on the socket at once (pongs),
/// events go to the call.
#[derive(Debug, Default, PartialEq)]
pub struct Reaction {
    pub replies: Vec<ClientMessage>,
    pub events: Vec<AgentEvent>,
}

/// The answer whose audio is arriving.
#[derive(Debug)]
struct OpenItem {
    id: String,
    last_audio_at: Instant,
    /// When its `agent_response` arrived.
    response_at: Option<Instant>,
    /// The caller barged in (the call said so): the rest of its audio is dropped.
    muted: bool,
}

pub struct ConversationState {
    input: WireFormat,
    output: WireFormat,
    /// Caller samples per `user_audio_chunk`.
    chunk_samples: usize,
    pending_audio: Vec<i16>,
    answer_gap: Duration,
    /// SDK rule: audio whose `event_id` is at or below the last interruption's is stale.
    last_interrupt_id: Option<i64>,
    item: Option<OpenItem>,
    /// An `agent_response` came before any audio of its answer.
    response_pending: Option<Instant>,
    /// Base of the last item id and how often it was used, to keep ids unique when one
    /// answer's audio is split by the gap heuristic.
    last_base: String,
    base_uses: u32,
    /// Ids for audio without an `event_id`.
    local_ids: u64,
}

impl ConversationState {
    pub fn new(input: WireFormat, output: WireFormat, chunk_ms: u32, answer_gap_ms: u64) -> Self {
        let chunk_samples = (input.rate() as usize * chunk_ms.max(10) as usize / 1000).max(1);
        Self {
            input,
            output,
            chunk_samples,
            pending_audio: Vec::with_capacity(chunk_samples),
            answer_gap: Duration::from_millis(answer_gap_ms.max(1)),
            last_interrupt_id: None,
            item: None,
            response_pending: None,
            last_base: String::new(),
            base_uses: 0,
            local_ids: 0,
        }
    }

    /// Client messages for one input from the call.
    pub fn on_input(&mut self, input: AgentInput) -> Vec<ClientMessage> {
        match input {
            AgentInput::Audio(samples) => {
                self.pending_audio.extend_from_slice(&samples);
                let mut out = Vec::new();
                while self.pending_audio.len() >= self.chunk_samples {
                    let chunk: Vec<i16> = self.pending_audio.drain(..self.chunk_samples).collect();
                    let bytes = self.input.encode(&chunk);
                    out.push(ClientMessage::AudioChunk(
                        base64::engine::general_purpose::STANDARD.encode(bytes),
                    ));
                }
                out
            }
            // The server detects barge-in from the audio itself and cuts the agent's memory
            // to what was said (`agent_response_correction`); `heard_ms` has nowhere to go.
            // `user_activity` tells it the caller is active; the rest of the item is dropped.
            AgentInput::Interrupted { item_id, heard_ms } => {
                match self.item.as_mut().filter(|i| i.id == item_id) {
                    Some(item) => item.muted = true,
                    None => debug!(item_id, heard_ms, "interrupted item is no longer open"),
                }
                vec![ClientMessage::UserActivity]
            }
            // No key-press input exists. A user_message (not a contextual_update) because a
            // key press expects a reaction, like a spoken menu choice; the instructions say
            // what `[DTMF n]` means.
            AgentInput::Dtmf(digit) => {
                vec![ClientMessage::UserMessage(format!("[DTMF {digit}]"))]
            }
            AgentInput::Text(text) => vec![ClientMessage::UserMessage(text)],
            AgentInput::ToolResult { call_id, output } => {
                vec![ClientMessage::tool_result(call_id, output)]
            }
            AgentInput::CallerPaused => Vec::new(),
            // No manual commit exists; local turns are refused at connect time.
            AgentInput::EndOfTurn => {
                debug!("EndOfTurn ignored: ElevenLabs detects turns itself");
                Vec::new()
            }
        }
    }

    /// Replies and call events for one server text frame.
    pub fn on_server_text(&mut self, text: &str, now: Instant) -> Reaction {
        match ServerMessage::parse(text) {
            Ok(msg) => self.on_server_message(msg, now),
            Err(e) => {
                warn!(error = %e, len = text.len(), "unparseable ElevenLabs message; skipped");
                Reaction {
                    replies: Vec::new(),
                    events: vec![AgentEvent::Error {
                        message: format!("unparseable ElevenLabs message: {e}"),
                        fatal: false,
                    }],
                }
            }
        }
    }

    pub fn on_server_message(&mut self, msg: ServerMessage, now: Instant) -> Reaction {
        let mut r = Reaction::default();
        match msg {
            ServerMessage::Ping { ping_event } => {
                if ping_event.event_id.is_null() {
                    warn!("ping without event_id; no pong");
                } else {
                    r.replies.push(ClientMessage::Pong {
                        event_id: ping_event.event_id,
                    });
                }
            }
            ServerMessage::Audio { audio_event } => {
                if let Some(ev) = self.audio(audio_event.event_id, &audio_event.audio_base_64, now)
                {
                    r.events.push(ev);
                }
            }
            ServerMessage::AgentResponse {
                agent_response_event,
            } => {
                match self.item.as_mut() {
                    Some(item) => item.response_at = Some(now),
                    None => self.response_pending = Some(now),
                }
                r.events.push(AgentEvent::Transcript {
                    role: Role::Agent,
                    text: agent_response_event.agent_response,
                });
            }
            // The agent's last line cut back to what the caller heard before barging in.
            // The call gets it as another agent line (the corrected text); the transcript
            // keeps both.
            ServerMessage::AgentResponseCorrection {
                agent_response_correction_event,
            } => r.events.push(AgentEvent::Transcript {
                role: Role::Agent,
                text: agent_response_correction_event.corrected_agent_response,
            }),
            ServerMessage::UserTranscript {
                user_transcription_event,
            } => {
                // A new caller turn ends the previous answer.
                self.close_item(&mut r.events, None);
                self.response_pending = None;
                r.events.push(AgentEvent::SpeechStopped);
                r.events.push(AgentEvent::Transcript {
                    role: Role::Caller,
                    text: user_transcription_event.user_transcript,
                });
            }
            ServerMessage::Interruption { interruption_event } => {
                if let Some(id) = interruption_event.event_id {
                    self.last_interrupt_id = Some(self.last_interrupt_id.map_or(id, |l| l.max(id)));
                }
                r.events.push(AgentEvent::SpeechStarted);
                self.close_item(&mut r.events, Some("cancelled"));
                self.response_pending = None;
                if !matches!(r.events.last(), Some(AgentEvent::ResponseDone { .. })) {
                    r.events.push(AgentEvent::ResponseDone {
                        status: "cancelled".into(),
                    });
                }
            }
            ServerMessage::ClientToolCall { client_tool_call } => {
                let arguments = match client_tool_call.parameters {
                    serde_json::Value::Null => "{}".to_string(),
                    params => params.to_string(),
                };
                r.events.push(AgentEvent::ToolCall {
                    call_id: client_tool_call.tool_call_id,
                    name: client_tool_call.tool_name,
                    arguments,
                });
            }
            ServerMessage::Error(body) => {
                let message = describe_error(&body);
                warn!(%message, "ElevenLabs error");
                r.events.push(AgentEvent::Error {
                    message: format!("ElevenLabs error: {message}"),
                    fatal: false,
                });
            }
            ServerMessage::ConversationInitiationMetadata { .. } => {
                debug!("repeated conversation_initiation_metadata ignored")
            }
            ServerMessage::Other => {}
        }
        r
    }

    fn audio(&mut self, event_id: Option<i64>, b64: &str, now: Instant) -> Option<AgentEvent> {
        if let (Some(id), Some(last)) = (event_id, self.last_interrupt_id) {
            if id <= last {
                debug!(
                    event_id = id,
                    last, "stale audio after an interruption; dropped"
                );
                return None;
            }
        }
        let bytes = match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "audio is not valid base64; skipped");
                return None;
            }
        };
        let Some(samples) = self.output.decode(&bytes) else {
            warn!(len = bytes.len(), "odd-length PCM16 audio; skipped");
            return None;
        };
        if self.item.is_none() {
            let id = self.new_item_id(event_id);
            self.item = Some(OpenItem {
                id,
                last_audio_at: now,
                response_at: self.response_pending.take(),
                muted: false,
            });
        }
        let item = self.item.as_mut()?;
        item.last_audio_at = now;
        if item.muted || samples.is_empty() {
            return None;
        }
        Some(AgentEvent::Audio {
            item_id: item.id.clone(),
            samples,
        })
    }

    fn new_item_id(&mut self, event_id: Option<i64>) -> String {
        let base = match event_id {
            Some(id) => format!("el-{id}"),
            None => {
                self.local_ids += 1;
                format!("el-local-{}", self.local_ids)
            }
        };
        if base == self.last_base {
            self.base_uses += 1;
            format!("{base}.{}", self.base_uses)
        } else {
            self.last_base = base.clone();
            self.base_uses = 1;
            base
        }
    }

    /// Ends the open item: `AudioDone`, then `ResponseDone` with `status` (default:
    /// cancelled if the caller barged in, else completed).
    fn close_item(&mut self, events: &mut Vec<AgentEvent>, status: Option<&str>) {
        let Some(item) = self.item.take() else {
            return;
        };
        let status = status.unwrap_or(if item.muted { "cancelled" } else { "completed" });
        events.push(AgentEvent::AudioDone { item_id: item.id });
        events.push(AgentEvent::ResponseDone {
            status: status.into(),
        });
    }

    /// When the open answer's quiet gap runs out, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        let item = self.item.as_ref()?;
        Some(match item.response_at {
            Some(at) => item.last_audio_at.max(at) + self.answer_gap,
            None => item.last_audio_at + self.answer_gap * NO_RESPONSE_GAP_FACTOR,
        })
    }

    /// Events due at `now`: the end of an answer whose audio has stopped.
    pub fn on_timer(&mut self, now: Instant) -> Vec<AgentEvent> {
        let mut events = Vec::new();
        if self.deadline().is_some_and(|d| d <= now) {
            self.close_item(&mut events, None);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state() -> ConversationState {
        ConversationState::new(WireFormat::Pcm(16_000), WireFormat::Pcm(16_000), 100, 500)
    }

    fn audio(event_id: i64, bytes: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        json!({"type": "audio", "audio_event": {"audio_base_64": b64, "event_id": event_id}})
            .to_string()
    }

    fn agent_response(text: &str) -> String {
        json!({"type": "agent_response", "agent_response_event": {"agent_response": text}})
            .to_string()
    }

    fn user_transcript(text: &str) -> String {
        json!({"type": "user_transcript", "user_transcription_event": {"user_transcript": text}})
            .to_string()
    }

    fn interruption(event_id: i64) -> String {
        json!({"type": "interruption", "interruption_event": {"event_id": event_id}}).to_string()
    }

    fn events(s: &mut ConversationState, text: &str, now: Instant) -> Vec<AgentEvent> {
        let r = s.on_server_text(text, now);
        assert!(r.replies.is_empty());
        r.events
    }

    fn audio_ev(item: &str, samples: Vec<i16>) -> AgentEvent {
        AgentEvent::Audio {
            item_id: item.into(),
            samples,
        }
    }

    fn done(item: &str, status: &str) -> Vec<AgentEvent> {
        vec![
            AgentEvent::AudioDone {
                item_id: item.into(),
            },
            AgentEvent::ResponseDone {
                status: status.into(),
            },
        ]
    }

    #[test]
    fn an_answer_is_one_item_that_ends_after_a_quiet_gap() {
        let mut s = state();
        let t0 = Instant::now();
        let ev = events(&mut s, &agent_response("Olá"), t0);
        assert_eq!(
            ev,
            vec![AgentEvent::Transcript {
                role: Role::Agent,
                text: "Olá".into()
            }]
        );
        assert_eq!(
            events(&mut s, &audio(7, &[1, 0, 2, 0]), t0),
            vec![audio_ev("el-7", vec![1, 2])]
        );
        // Per-chunk numbering (unconfirmed) keeps the item too.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(
            events(&mut s, &audio(8, &[3, 0]), t1),
            vec![audio_ev("el-7", vec![3])]
        );
        assert_eq!(s.deadline(), Some(t1 + Duration::from_millis(500)));
        assert!(s.on_timer(t1 + Duration::from_millis(499)).is_empty());
        assert_eq!(
            s.on_timer(t1 + Duration::from_millis(500)),
            done("el-7", "completed")
        );
        assert_eq!(s.deadline(), None);
        // Audio of the same event id after the gap opens a new, distinct item.
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(
            events(&mut s, &audio(8, &[4, 0]), t2),
            vec![audio_ev("el-8", vec![4])]
        );
        assert_eq!(
            s.on_timer(t2 + Duration::from_secs(2)),
            done("el-8", "completed"),
            "without agent_response the gap is 4x"
        );
        assert_eq!(
            events(&mut s, &audio(8, &[4, 0]), t2),
            vec![audio_ev("el-8.2", vec![4])]
        );
    }

    #[test]
    fn a_caller_transcript_ends_the_answer_and_starts_a_new_one() {
        let mut s = state();
        let t = Instant::now();
        events(&mut s, &audio(3, &[1, 0]), t);
        let ev = events(&mut s, &user_transcript("quero marcar"), t);
        let mut want = done("el-3", "completed");
        want.push(AgentEvent::SpeechStopped);
        want.push(AgentEvent::Transcript {
            role: Role::Caller,
            text: "quero marcar".into(),
        });
        assert_eq!(ev, want);
        events(&mut s, &agent_response("Claro"), t);
        assert_eq!(
            events(&mut s, &audio(4, &[1, 0]), t),
            vec![audio_ev("el-4", vec![1])]
        );
        assert_eq!(s.deadline(), Some(t + Duration::from_millis(500)));
    }

    #[test]
    fn interruption_cancels_and_drops_stale_audio() {
        let mut s = state();
        let t = Instant::now();
        events(&mut s, &audio(5, &[1, 0]), t);
        let ev = events(&mut s, &interruption(5), t);
        let mut want = vec![AgentEvent::SpeechStarted];
        want.extend(done("el-5", "cancelled"));
        assert_eq!(ev, want);
        assert!(
            events(&mut s, &audio(5, &[1, 0]), t).is_empty(),
            "late chunk dropped"
        );
        assert!(events(&mut s, &audio(4, &[1, 0]), t).is_empty());
        assert_eq!(s.deadline(), None);
        assert_eq!(
            events(&mut s, &audio(6, &[1, 0]), t),
            vec![audio_ev("el-6", vec![1])]
        );
        // An interruption with nothing open still signals barge-in and a cancelled answer.
        let mut s = state();
        assert_eq!(
            events(&mut s, &interruption(2), t),
            vec![
                AgentEvent::SpeechStarted,
                AgentEvent::ResponseDone {
                    status: "cancelled".into()
                }
            ]
        );
    }

    #[test]
    fn the_calls_barge_in_mutes_the_rest_of_the_item() {
        let mut s = state();
        let t = Instant::now();
        events(&mut s, &audio(9, &[1, 0]), t);
        let out = s.on_input(AgentInput::Interrupted {
            item_id: "el-9".into(),
            heard_ms: 40,
        });
        assert_eq!(out, vec![ClientMessage::UserActivity]);
        assert!(events(&mut s, &audio(9, &[1, 0]), t).is_empty());
        assert_eq!(
            s.on_timer(t + Duration::from_secs(5)),
            done("el-9", "cancelled")
        );
        assert_eq!(
            s.on_input(AgentInput::Interrupted {
                item_id: "gone".into(),
                heard_ms: 0
            }),
            vec![ClientMessage::UserActivity]
        );
    }

    #[test]
    fn pings_are_answered_with_the_same_event_id() {
        let mut s = state();
        let r = s.on_server_text(
            r#"{"type":"ping","ping_event":{"event_id":12,"ping_ms":30}}"#,
            Instant::now(),
        );
        assert_eq!(
            r,
            Reaction {
                replies: vec![ClientMessage::Pong {
                    event_id: json!(12)
                }],
                events: vec![]
            }
        );
        let r = s.on_server_text(r#"{"type":"ping"}"#, Instant::now());
        assert_eq!(r, Reaction::default());
    }

    #[test]
    fn tool_calls_corrections_errors_and_garbage() {
        let mut s = state();
        let t = Instant::now();
        let ev = events(
            &mut s,
            r#"{"type":"client_tool_call","client_tool_call":{"tool_name":"lookup","tool_call_id":"tc_1","parameters":{"phone":"+55"}}}"#,
            t,
        );
        assert_eq!(
            ev,
            vec![AgentEvent::ToolCall {
                call_id: "tc_1".into(),
                name: "lookup".into(),
                arguments: r#"{"phone":"+55"}"#.into()
            }]
        );
        let ev = events(
            &mut s,
            r#"{"type":"client_tool_call","client_tool_call":{"tool_name":"now","tool_call_id":"tc_2"}}"#,
            t,
        );
        assert!(matches!(&ev[0], AgentEvent::ToolCall { arguments, .. } if arguments == "{}"));
        let ev = events(
            &mut s,
            r#"{"type":"agent_response_correction","agent_response_correction_event":{"original_agent_response":"Olá, tudo bem?","corrected_agent_response":"Olá,"}}"#,
            t,
        );
        assert_eq!(
            ev,
            vec![AgentEvent::Transcript {
                role: Role::Agent,
                text: "Olá,".into()
            }]
        );
        let ev = events(&mut s, r#"{"type":"error","message":"boom"}"#, t);
        assert!(
            matches!(&ev[0], AgentEvent::Error { fatal: false, message } if message.contains("boom"))
        );
        let ev = events(&mut s, "\u{1}garbage", t);
        assert!(matches!(ev[0], AgentEvent::Error { fatal: false, .. }));
        assert!(events(
            &mut s,
            r#"{"type":"vad_score","vad_score_event":{"vad_score":1}}"#,
            t
        )
        .is_empty());
        // Bad audio is skipped without opening an item.
        assert!(events(&mut s, &audio(1, &[1, 0, 2]), t).is_empty());
        assert!(events(
            &mut s,
            r#"{"type":"audio","audio_event":{"audio_base_64":"!!","event_id":1}}"#,
            t
        )
        .is_empty());
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn caller_audio_is_sent_in_chunks_of_the_input_format() {
        let mut s = state();
        // 100 ms at 16 kHz = 1600 samples; 20 ms frames.
        for _ in 0..4 {
            assert!(s.on_input(AgentInput::Audio(vec![1; 320])).is_empty());
        }
        let out = s.on_input(AgentInput::Audio(vec![1; 320 * 2]));
        assert_eq!(out.len(), 1);
        let ClientMessage::AudioChunk(b64) = &out[0] else {
            panic!("{out:?}");
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(bytes.len(), 3200);
        let mut ulaw = ConversationState::new(WireFormat::Ulaw8k, WireFormat::Ulaw8k, 100, 500);
        let out = ulaw.on_input(AgentInput::Audio(vec![0; 800]));
        let ClientMessage::AudioChunk(b64) = &out[0] else {
            panic!("{out:?}");
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(bytes, vec![0xff; 800], "μ-law silence, 8 bytes/ms");
        // μ-law output decodes to 8 kHz PCM16.
        let ev = ulaw.on_server_text(&audio(1, &[0xff, 0x7f, 0x00]), Instant::now());
        assert!(matches!(&ev.events[0], AgentEvent::Audio { samples, .. } if samples.len() == 3));
    }

    #[test]
    fn other_inputs_map_to_messages() {
        let mut s = state();
        assert_eq!(
            s.on_input(AgentInput::Dtmf('5')),
            vec![ClientMessage::UserMessage("[DTMF 5]".into())]
        );
        assert_eq!(
            s.on_input(AgentInput::Text("oi".into())),
            vec![ClientMessage::UserMessage("oi".into())]
        );
        assert!(s.on_input(AgentInput::EndOfTurn).is_empty());
        assert_eq!(
            s.on_input(AgentInput::ToolResult {
                call_id: "tc_1".into(),
                output: "{\"error\":\"x\"}".into()
            }),
            vec![ClientMessage::ToolResult {
                tool_call_id: "tc_1".into(),
                result: "{\"error\":\"x\"}".into(),
                is_error: true
            }]
        );
    }
}
