//! Client → server events (providers.md §1.4). The names are the same in GA and beta; only
//! the `session.update` payload differs, see [`session_update`].

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::config::{OpenAiRealtimeConfig, Protocol};
use super::wire_audio::WireAudio;
use crate::agent::{AgentPersona, Role};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ClientEvent {
    #[serde(rename = "session.update")]
    SessionUpdate { session: Value },
    /// `audio` is base64 of the session's input format.
    #[serde(rename = "input_audio_buffer.append")]
    Append { audio: String },
    #[serde(rename = "conversation.item.create")]
    ItemCreate { item: NewItem },
    #[serde(rename = "conversation.item.truncate")]
    Truncate {
        item_id: String,
        content_index: u32,
        audio_end_ms: u64,
    },
    #[serde(rename = "input_audio_buffer.commit")]
    Commit {},
    #[serde(rename = "response.create")]
    ResponseCreate {},
    /// A response with its own instructions (the greeting).
    #[serde(rename = "response.create")]
    ResponseCreateWith { response: Value },
    #[serde(rename = "response.cancel")]
    ResponseCancel {},
}

/// An item the client adds to the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NewItem {
    Message {
        role: String,
        content: Vec<TextPart>,
    },
    FunctionCallOutput {
        call_id: String,
        output: String,
    },
}

/// A text part: `input_text` from the user, `output_text` (GA) or `text` (beta) from the
/// assistant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextPart {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

impl ClientEvent {
    pub fn user_text(text: impl Into<String>) -> Self {
        Self::ItemCreate {
            item: NewItem::Message {
                role: "user".into(),
                content: vec![TextPart {
                    kind: "input_text",
                    text: text.into(),
                }],
            },
        }
    }

    /// A line of an earlier conversation (after a reconnect), as a conversation item.
    pub fn history_line(role: Role, text: impl Into<String>, protocol: Protocol) -> Self {
        let (role, kind) = match (role, protocol) {
            (Role::Caller, _) => ("user", "input_text"),
            (Role::Agent, Protocol::Ga) => ("assistant", "output_text"),
            (Role::Agent, Protocol::Beta) => ("assistant", "text"),
        };
        Self::ItemCreate {
            item: NewItem::Message {
                role: role.into(),
                content: vec![TextPart {
                    kind,
                    text: text.into(),
                }],
            },
        }
    }

    pub fn to_json(&self) -> String {
        // The audio append goes out 50 times a second per call: base64 needs no JSON
        // escaping, so write it directly instead of scanning it through the serializer.
        if let Self::Append { audio } = self {
            let mut out = String::with_capacity(audio.len() + 48);
            out.push_str(r#"{"type":"input_audio_buffer.append","audio":""#);
            out.push_str(audio);
            out.push_str(r#""}"#);
            return out;
        }
        // Serializing these plain types cannot fail; fall back to an inert event if it did.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"noop"}"#.to_string())
    }
}

/// The `session` object of the first `session.update`, in the protocol's shape (§1.3).
pub fn session_update(
    cfg: &OpenAiRealtimeConfig,
    persona: &AgentPersona,
    wire: WireAudio,
) -> Value {
    // Local turns: the bridge commits and asks for each answer itself (null turns the
    // server's detection off).
    let turn_detection = if persona.local_turns {
        Value::Null
    } else {
        json!({
            "type": "server_vad",
            "threshold": cfg.vad_threshold,
            "prefix_padding_ms": cfg.prefix_padding_ms,
            "silence_duration_ms": cfg.silence_duration_ms,
            "create_response": true,
            "interrupt_response": true,
        })
    };
    let transcription = (!cfg.transcription_model.is_empty()).then(|| {
        let mut t = Map::new();
        t.insert("model".into(), cfg.transcription_model.clone().into());
        if let Some(lang) = persona.iso639_1() {
            t.insert("language".into(), lang.into());
        }
        Value::Object(t)
    });
    let mut s = Map::new();
    match cfg.protocol {
        Protocol::Ga => {
            s.insert("type".into(), "realtime".into());
            s.insert("model".into(), cfg.model.clone().into());
            s.insert("output_modalities".into(), json!(["audio"]));
            let mut input = Map::new();
            input.insert("format".into(), wire.ga_format());
            if let Some(t) = transcription {
                input.insert("transcription".into(), t);
            }
            input.insert("turn_detection".into(), turn_detection);
            let mut output = Map::new();
            output.insert("format".into(), wire.ga_format());
            if !persona.voice.is_empty() {
                output.insert("voice".into(), persona.voice.clone().into());
            }
            s.insert("audio".into(), json!({"input": input, "output": output}));
        }
        Protocol::Beta => {
            s.insert("modalities".into(), json!(["audio", "text"]));
            s.insert("input_audio_format".into(), wire.beta_format().into());
            s.insert("output_audio_format".into(), wire.beta_format().into());
            if let Some(t) = transcription {
                s.insert("input_audio_transcription".into(), t);
            }
            s.insert("turn_detection".into(), turn_detection);
            if !persona.voice.is_empty() {
                s.insert("voice".into(), persona.voice.clone().into());
            }
        }
    }
    s.insert("instructions".into(), persona.instructions.clone().into());
    if !persona.tools.is_empty() {
        let tools: Vec<Value> = persona
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description,
                       "parameters": t.parameters})
            })
            .collect();
        s.insert("tools".into(), Value::Array(tools));
        s.insert("tool_choice".into(), "auto".into());
    }
    Value::Object(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support;

    fn persona() -> AgentPersona {
        test_support::persona("marin", "pt-BR")
    }

    #[test]
    fn local_turns_switch_server_turn_detection_off() {
        let cfg = OpenAiRealtimeConfig::default();
        let local = AgentPersona {
            local_turns: true,
            ..persona()
        };
        let ga = session_update(&cfg, &local, WireAudio::Pcm24k);
        assert_eq!(ga["audio"]["input"]["turn_detection"], Value::Null);
        let beta_cfg = OpenAiRealtimeConfig {
            protocol: Protocol::Beta,
            ..OpenAiRealtimeConfig::default()
        };
        let beta = session_update(&beta_cfg, &local, WireAudio::Pcm24k);
        assert_eq!(beta["turn_detection"], Value::Null);
        assert_eq!(
            ClientEvent::Commit {}.to_json(),
            r#"{"type":"input_audio_buffer.commit"}"#
        );
    }

    #[test]
    fn ga_session_has_the_ga_shape() {
        let cfg = OpenAiRealtimeConfig::default();
        let s = session_update(&cfg, &persona(), WireAudio::Pcm24k);
        assert_eq!(s["type"], "realtime");
        assert_eq!(s["output_modalities"], json!(["audio"]));
        assert_eq!(
            s["audio"]["input"]["format"],
            json!({"type":"audio/pcm","rate":24000})
        );
        assert_eq!(
            s["audio"]["input"]["transcription"],
            json!({"model":"gpt-4o-transcribe","language":"pt"})
        );
        let td = &s["audio"]["input"]["turn_detection"];
        assert_eq!(td["type"], "server_vad");
        assert_eq!(td["silence_duration_ms"], 500);
        assert_eq!(td["interrupt_response"], true);
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(s["tools"][0]["type"], "function");
        assert_eq!(s["tools"][0]["name"], "lookup_customer");
        assert!(s["tools"][0].get("function").is_none(), "tools are flat");
        assert_eq!(s["tool_choice"], "auto");
        assert!(s.get("modalities").is_none() && s.get("voice").is_none());
    }

    #[test]
    fn beta_session_has_the_beta_shape() {
        let cfg = OpenAiRealtimeConfig {
            protocol: Protocol::Beta,
            transcription_model: String::new(),
            ..Default::default()
        };
        let s = session_update(&cfg, &persona(), WireAudio::Pcmu8k);
        assert_eq!(s["input_audio_format"], "g711_ulaw");
        assert_eq!(s["output_audio_format"], "g711_ulaw");
        assert_eq!(s["voice"], "marin");
        assert_eq!(s["turn_detection"]["type"], "server_vad");
        assert!(s.get("input_audio_transcription").is_none());
        assert!(s.get("type").is_none() && s.get("audio").is_none());
    }

    #[test]
    fn client_events_serialize_to_the_wire_names() {
        let v: Value = serde_json::from_str(
            &ClientEvent::Truncate {
                item_id: "item_1".into(),
                content_index: 0,
                audio_end_ms: 1500,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":1500})
        );
        let v: Value = serde_json::from_str(&ClientEvent::user_text("Oi").to_json()).unwrap();
        assert_eq!(
            v,
            json!({"type":"conversation.item.create","item":{"type":"message","role":"user",
                   "content":[{"type":"input_text","text":"Oi"}]}})
        );
        let out = ClientEvent::ItemCreate {
            item: NewItem::FunctionCallOutput {
                call_id: "call_1".into(),
                output: "{}".into(),
            },
        };
        let v: Value = serde_json::from_str(&out.to_json()).unwrap();
        assert_eq!(
            v["item"],
            json!({"type":"function_call_output","call_id":"call_1","output":"{}"})
        );
        assert_eq!(
            ClientEvent::ResponseCancel {}.to_json(),
            r#"{"type":"response.cancel"}"#
        );
        assert_eq!(
            ClientEvent::Append {
                audio: "AA==".into()
            }
            .to_json(),
            r#"{"type":"input_audio_buffer.append","audio":"AA=="}"#
        );
    }
}
