//! What a live session remembers, and how inputs and server events translate.
//!
//! Pure logic (no I/O), so the protocol rules are unit-tested without sockets.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use base64::Engine;
use tracing::{debug, warn};

use super::client_events::{ClientEvent, NewItem};
use super::server_events::ServerEvent;
use super::wire_audio::WireAudio;
use crate::agent::{AgentEvent, AgentInput, Role};

/// Response items whose audio is remembered (for truncation): the last few are enough.
const REMEMBERED_ITEMS: usize = 16;
/// Function calls waiting for their arguments; more would mean a misbehaving server.
const REMEMBERED_CALLS: usize = 64;

/// Audio received for one response item.
#[derive(Debug, Clone)]
struct ItemAudio {
    item_id: String,
    bytes: u64,
    first_delta_at: Instant,
    /// The caller barged in: later deltas for this item are stale and dropped.
    muted: bool,
}

pub struct ConversationState {
    wire: WireAudio,
    active_response: Option<String>,
    items: VecDeque<ItemAudio>,
    /// call_id → function name, learnt from the item events before the arguments arrive.
    calls: HashMap<String, String>,
}

impl ConversationState {
    pub fn new(wire: WireAudio) -> Self {
        Self {
            wire,
            active_response: None,
            items: VecDeque::new(),
            calls: HashMap::new(),
        }
    }

    /// Client events for one input from the call.
    pub fn on_input(&mut self, input: AgentInput) -> Vec<ClientEvent> {
        match input {
            AgentInput::Audio(samples) if samples.is_empty() => Vec::new(),
            AgentInput::Audio(samples) => {
                let bytes = self.wire.encode(&samples);
                vec![ClientEvent::Append {
                    audio: base64::engine::general_purpose::STANDARD.encode(bytes),
                }]
            }
            AgentInput::Interrupted { item_id, heard_ms } => self.interrupt(&item_id, heard_ms),
            AgentInput::EndOfTurn => vec![ClientEvent::Commit {}, response_create()],
            AgentInput::CallerPaused => Vec::new(),
            AgentInput::Text(text) => vec![ClientEvent::user_text(text), response_create()],
            // DTMF reaches the model as a user text line `[DTMF 5]`: the realtime API has
            // no key-press input, and the instructions can tell the model what digits mean.
            AgentInput::Dtmf(digit) => {
                vec![
                    ClientEvent::user_text(format!("[DTMF {digit}]")),
                    response_create(),
                ]
            }
            AgentInput::ToolResult { call_id, output } => vec![
                ClientEvent::ItemCreate {
                    item: NewItem::FunctionCallOutput { call_id, output },
                },
                response_create(),
            ],
        }
    }

    /// Cancel what is still generating, then trim the item to what the caller heard, never
    /// past what was generated (the server rejects that).
    fn interrupt(&mut self, item_id: &str, heard_ms: u32) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        if self.active_response.is_some() {
            out.push(ClientEvent::ResponseCancel {});
        }
        let bytes_per_ms = self.wire.bytes_per_ms();
        match self.items.iter_mut().find(|i| i.item_id == item_id) {
            Some(item) => {
                item.muted = true;
                let received_ms = item.bytes / bytes_per_ms;
                let elapsed_ms = item.first_delta_at.elapsed().as_millis() as u64;
                let audio_end_ms = u64::from(heard_ms).min(received_ms).min(elapsed_ms);
                out.push(ClientEvent::Truncate {
                    item_id: item_id.to_string(),
                    content_index: 0,
                    audio_end_ms,
                });
            }
            None => debug!(
                item_id,
                "no audio received for interrupted item; not truncating"
            ),
        }
        out
    }

    /// The call-facing event for one server text frame, if any.
    pub fn on_server_text(&mut self, text: &str) -> Option<AgentEvent> {
        match ServerEvent::parse(text) {
            Ok(event) => self.on_server_event(event),
            Err(e) => {
                warn!(error = %e, len = text.len(), "unparseable OpenAI Realtime event; skipped");
                None
            }
        }
    }

    pub fn on_server_event(&mut self, event: ServerEvent) -> Option<AgentEvent> {
        match event {
            ServerEvent::SessionCreated {} | ServerEvent::SessionUpdated {} => None,
            ServerEvent::Error { error } if error.is_harmless() => {
                debug!(%error, "harmless OpenAI Realtime error");
                None
            }
            ServerEvent::Error { error } => {
                warn!(%error, "OpenAI Realtime error");
                Some(AgentEvent::Error {
                    message: error.to_string(),
                    fatal: false,
                })
            }
            ServerEvent::SpeechStarted {} => Some(AgentEvent::SpeechStarted),
            ServerEvent::SpeechStopped {} => Some(AgentEvent::SpeechStopped),
            ServerEvent::CallerTranscript { transcript } => Some(AgentEvent::Transcript {
                role: Role::Caller,
                text: transcript,
            }),
            ServerEvent::AgentTranscript { transcript } => Some(AgentEvent::Transcript {
                role: Role::Agent,
                text: transcript,
            }),
            ServerEvent::ResponseCreated { response } => {
                self.active_response = Some(response.id);
                None
            }
            ServerEvent::ResponseDone { response } => {
                self.active_response = None;
                Some(AgentEvent::ResponseDone {
                    status: response.status,
                })
            }
            ServerEvent::AudioDelta { item_id, delta } => self.audio_delta(item_id, &delta),
            ServerEvent::AudioDone { item_id } => Some(AgentEvent::AudioDone { item_id }),
            ServerEvent::ItemSeen { item } => {
                if let (true, Some(call_id), Some(name)) =
                    (item.kind == "function_call", item.call_id, item.name)
                {
                    if self.calls.len() >= REMEMBERED_CALLS {
                        self.calls.clear();
                    }
                    self.calls.insert(call_id, name);
                }
                None
            }
            ServerEvent::FunctionCallArgumentsDone {
                call_id,
                name,
                arguments,
            } => {
                let remembered = self.calls.remove(&call_id);
                let name = name.filter(|n| !n.is_empty()).or(remembered);
                if name.is_none() {
                    warn!(call_id, "function call without a known name");
                }
                Some(AgentEvent::ToolCall {
                    call_id,
                    name: name.unwrap_or_default(),
                    arguments,
                })
            }
            ServerEvent::Other => None,
        }
    }

    fn audio_delta(&mut self, item_id: String, delta: &str) -> Option<AgentEvent> {
        let bytes = match base64::engine::general_purpose::STANDARD.decode(delta) {
            Ok(b) => b,
            Err(e) => {
                warn!(item_id, error = %e, "audio delta is not valid base64; skipped");
                return None;
            }
        };
        let Some(samples) = self.wire.decode(&bytes) else {
            warn!(
                item_id,
                len = bytes.len(),
                "odd-length PCM16 audio delta; skipped"
            );
            return None;
        };
        let item = self.item_audio(&item_id);
        if item.muted {
            return None;
        }
        item.bytes += bytes.len() as u64;
        Some(AgentEvent::Audio { item_id, samples })
    }

    fn item_audio(&mut self, item_id: &str) -> &mut ItemAudio {
        let pos = match self.items.iter().position(|i| i.item_id == item_id) {
            Some(p) => p,
            None => {
                if self.items.len() >= REMEMBERED_ITEMS {
                    self.items.pop_front();
                }
                self.items.push_back(ItemAudio {
                    item_id: item_id.to_string(),
                    bytes: 0,
                    first_delta_at: Instant::now(),
                    muted: false,
                });
                self.items.len() - 1
            }
        };
        &mut self.items[pos]
    }
}

fn response_create() -> ClientEvent {
    ClientEvent::ResponseCreate {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn delta(item: &str, bytes: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        format!(r#"{{"type":"response.output_audio.delta","item_id":"{item}","delta":"{b64}"}}"#)
    }

    #[test]
    fn audio_deltas_become_samples_and_bad_ones_are_skipped() {
        let mut s = ConversationState::new(WireAudio::Pcm24k);
        let ev = s.on_server_text(&delta("a", &[1, 0, 2, 0]));
        assert_eq!(
            ev,
            Some(AgentEvent::Audio {
                item_id: "a".into(),
                samples: vec![1, 2]
            })
        );
        assert_eq!(s.on_server_text(&delta("a", &[1, 0, 2])), None);
        assert_eq!(
            s.on_server_text(r#"{"type":"response.audio.delta","item_id":"a","delta":"!!"}"#),
            None
        );
        assert_eq!(s.on_server_text("{garbage"), None);
    }

    #[test]
    fn truncation_is_clamped_to_received_audio() {
        let mut s = ConversationState::new(WireAudio::Pcm24k);
        s.on_server_text(
            r#"{"type":"response.created","response":{"id":"r1","status":"in_progress"}}"#,
        );
        // 480 ms of audio received.
        s.on_server_text(&delta("a", &vec![0u8; 48 * 480]));
        std::thread::sleep(Duration::from_millis(600));
        let out = s.on_input(AgentInput::Interrupted {
            item_id: "a".into(),
            heard_ms: 5000,
        });
        assert_eq!(
            out,
            vec![
                ClientEvent::ResponseCancel {},
                ClientEvent::Truncate {
                    item_id: "a".into(),
                    content_index: 0,
                    audio_end_ms: 480
                }
            ]
        );
        // Audio still in flight for the interrupted item is dropped.
        assert_eq!(s.on_server_text(&delta("a", &[0, 0])), None);
    }

    #[test]
    fn interruption_after_response_done_only_truncates() {
        let mut s = ConversationState::new(WireAudio::Pcmu8k);
        s.on_server_text(&delta("a", &[0xff; 800]));
        s.on_server_text(r#"{"type":"response.done","response":{"id":"r1","status":"completed"}}"#);
        let out = s.on_input(AgentInput::Interrupted {
            item_id: "a".into(),
            heard_ms: 0,
        });
        assert_eq!(
            out,
            vec![ClientEvent::Truncate {
                item_id: "a".into(),
                content_index: 0,
                audio_end_ms: 0
            }]
        );
        assert!(s
            .on_input(AgentInput::Interrupted {
                item_id: "unknown".into(),
                heard_ms: 10
            })
            .is_empty());
    }

    #[test]
    fn tool_call_name_comes_from_the_item() {
        let mut s = ConversationState::new(WireAudio::Pcm24k);
        s.on_server_text(r#"{"type":"conversation.item.added","item":{"id":"f1","type":"function_call","call_id":"c1","name":"lookup"}}"#);
        let ev = s.on_server_text(
            r#"{"type":"response.function_call_arguments.done","item_id":"f1","call_id":"c1","arguments":"{}"}"#,
        );
        assert_eq!(
            ev,
            Some(AgentEvent::ToolCall {
                call_id: "c1".into(),
                name: "lookup".into(),
                arguments: "{}".into()
            })
        );
    }

    #[test]
    fn inputs_map_to_client_events() {
        let mut s = ConversationState::new(WireAudio::Pcm24k);
        assert!(s.on_input(AgentInput::Audio(vec![])).is_empty());
        assert_eq!(
            s.on_input(AgentInput::Audio(vec![1, -1])),
            vec![ClientEvent::Append {
                audio: "AQD//w==".into()
            }]
        );
        assert_eq!(
            s.on_input(AgentInput::EndOfTurn),
            vec![ClientEvent::Commit {}, ClientEvent::ResponseCreate {}]
        );
        let dtmf = s.on_input(AgentInput::Dtmf('5'));
        assert_eq!(
            dtmf,
            vec![
                ClientEvent::user_text("[DTMF 5]"),
                ClientEvent::ResponseCreate {}
            ]
        );
        let tool = s.on_input(AgentInput::ToolResult {
            call_id: "c1".into(),
            output: "ok".into(),
        });
        assert_eq!(tool.len(), 2);
        assert_eq!(tool[1], ClientEvent::ResponseCreate {});
    }

    #[test]
    fn errors_are_filtered_and_reported() {
        let mut s = ConversationState::new(WireAudio::Pcm24k);
        assert_eq!(
            s.on_server_text(r#"{"type":"error","error":{"type":"invalid_request_error","code":"conversation_already_has_active_response","message":"x"}}"#),
            None
        );
        let ev = s
            .on_server_text(r#"{"type":"error","error":{"type":"server_error","message":"boom"}}"#);
        assert!(matches!(ev, Some(AgentEvent::Error { fatal: false, .. })));
    }
}
