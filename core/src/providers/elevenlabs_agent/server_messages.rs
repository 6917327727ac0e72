//! Server → client messages (providers.md §3.2): `{"type":"<t>","<t>_event":{…}}`.
//!
//! Parsing is lenient: unknown types land in [`ServerMessage::Other`], unknown fields are
//! ignored, and optional payload fields default.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    ConversationInitiationMetadata {
        #[serde(default)]
        conversation_initiation_metadata_event: Metadata,
    },
    Audio {
        audio_event: AudioEvent,
    },
    AgentResponse {
        agent_response_event: AgentResponseEvent,
    },
    AgentResponseCorrection {
        agent_response_correction_event: CorrectionEvent,
    },
    UserTranscript {
        user_transcription_event: UserTranscriptEvent,
    },
    Interruption {
        #[serde(default)]
        interruption_event: InterruptionEvent,
    },
    Ping {
        #[serde(default)]
        ping_event: PingEvent,
    },
    ClientToolCall {
        client_tool_call: ToolCall,
    },
    /// The error shape is unconfirmed (§3.2): keep the whole message to describe it.
    Error(Map<String, Value>),
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Metadata {
    pub conversation_id: String,
    pub agent_output_audio_format: Option<String>,
    pub user_input_audio_format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AudioEvent {
    pub audio_base_64: String,
    #[serde(default, deserialize_with = "event_id")]
    pub event_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentResponseEvent {
    pub agent_response: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CorrectionEvent {
    #[serde(default)]
    pub original_agent_response: String,
    pub corrected_agent_response: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserTranscriptEvent {
    pub user_transcript: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct InterruptionEvent {
    #[serde(default, deserialize_with = "event_id")]
    pub event_id: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PingEvent {
    /// Kept as sent: the pong echoes it unchanged.
    #[serde(default)]
    pub event_id: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ToolCall {
    pub tool_name: String,
    pub tool_call_id: String,
    #[serde(default)]
    pub parameters: Value,
}

impl ServerMessage {
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The most telling text of an `error` message, whatever its shape.
pub fn describe_error(body: &Map<String, Value>) -> String {
    let nested = body
        .get("error_event")
        .or_else(|| body.get("error"))
        .and_then(Value::as_object);
    for source in nested.into_iter().chain(std::iter::once(body)) {
        for key in ["message", "reason", "detail", "error"] {
            if let Some(text) = source.get(key).and_then(Value::as_str) {
                return text.to_string();
            }
        }
    }
    Value::Object(body.clone()).to_string()
}

/// An event id as an integer or a numeric string (the SDK does `int(event_id)`).
fn event_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ServerMessage {
        ServerMessage::parse(s).unwrap()
    }

    #[test]
    fn parses_the_reference_examples() {
        let m = parse(
            r#"{"type":"conversation_initiation_metadata","conversation_initiation_metadata_event":{"conversation_id":"conv_1","agent_output_audio_format":"pcm_16000","user_input_audio_format":"pcm_16000"}}"#,
        );
        let ServerMessage::ConversationInitiationMetadata {
            conversation_initiation_metadata_event: meta,
        } = m
        else {
            panic!("{m:?}");
        };
        assert_eq!(meta.conversation_id, "conv_1");
        assert_eq!(meta.agent_output_audio_format.as_deref(), Some("pcm_16000"));
        assert_eq!(
            parse(r#"{"type":"audio","audio_event":{"audio_base_64":"AAA=","event_id":7}}"#),
            ServerMessage::Audio {
                audio_event: AudioEvent {
                    audio_base_64: "AAA=".into(),
                    event_id: Some(7)
                }
            }
        );
        assert_eq!(
            parse(r#"{"type":"interruption","interruption_event":{"event_id":"7"}}"#),
            ServerMessage::Interruption {
                interruption_event: InterruptionEvent { event_id: Some(7) }
            }
        );
        assert_eq!(
            parse(r#"{"type":"ping","ping_event":{"event_id":8,"ping_ms":null}}"#),
            ServerMessage::Ping {
                ping_event: PingEvent {
                    event_id: Value::from(8)
                }
            }
        );
        let ServerMessage::ClientToolCall { client_tool_call } = parse(
            r#"{"type":"client_tool_call","client_tool_call":{"tool_name":"lookup_customer","tool_call_id":"tc_1","parameters":{"phone":"+55"}}}"#,
        ) else {
            panic!("not a tool call");
        };
        assert_eq!(client_tool_call.tool_call_id, "tc_1");
        assert_eq!(client_tool_call.parameters["phone"], "+55");
    }

    #[test]
    fn transcripts_and_corrections() {
        assert_eq!(
            parse(r#"{"type":"agent_response","agent_response_event":{"agent_response":"Olá"}}"#),
            ServerMessage::AgentResponse {
                agent_response_event: AgentResponseEvent {
                    agent_response: "Olá".into()
                }
            }
        );
        let ServerMessage::AgentResponseCorrection {
            agent_response_correction_event: c,
        } = parse(
            r#"{"type":"agent_response_correction","agent_response_correction_event":{"original_agent_response":"Olá, tudo","corrected_agent_response":"Olá"}}"#,
        )
        else {
            panic!("not a correction");
        };
        assert_eq!(c.corrected_agent_response, "Olá");
        assert!(matches!(
            parse(
                r#"{"type":"user_transcript","user_transcription_event":{"user_transcript":"oi"}}"#
            ),
            ServerMessage::UserTranscript { .. }
        ));
    }

    #[test]
    fn unknown_types_are_other_and_garbage_is_an_error() {
        assert_eq!(
            parse(r#"{"type":"vad_score","vad_score_event":{"vad_score":0.9}}"#),
            ServerMessage::Other
        );
        assert_eq!(
            parse(r#"{"type":"internal_tentative_agent_response"}"#),
            ServerMessage::Other
        );
        assert!(ServerMessage::parse("{not json").is_err());
        assert!(ServerMessage::parse(r#"{"no_type":1}"#).is_err());
        // A known type without its payload is rejected, not half-parsed.
        assert!(ServerMessage::parse(r#"{"type":"audio"}"#).is_err());
    }

    #[test]
    fn errors_are_described_whatever_their_shape() {
        let ServerMessage::Error(body) =
            parse(r#"{"type":"error","error_event":{"message":"quota exceeded"}}"#)
        else {
            panic!("not an error");
        };
        assert_eq!(describe_error(&body), "quota exceeded");
        let ServerMessage::Error(body) = parse(r#"{"type":"error","message":"boom"}"#) else {
            panic!("not an error");
        };
        assert_eq!(describe_error(&body), "boom");
        let ServerMessage::Error(body) = parse(r#"{"type":"error","code":3}"#) else {
            panic!("not an error");
        };
        assert!(describe_error(&body).contains("\"code\":3"));
    }
}
