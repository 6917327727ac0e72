//! Server → client events the agent acts on (providers.md §1.5), GA and beta names.
//!
//! Parsing is lenient: unknown event types land in [`ServerEvent::Other`], unknown fields
//! are ignored, and most fields default, because the provider adds fields over time.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    #[serde(rename = "session.created")]
    SessionCreated {},
    #[serde(rename = "session.updated")]
    SessionUpdated {},
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        error: ErrorDetail,
    },
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {},
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {},
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    CallerTranscript {
        #[serde(default)]
        transcript: String,
    },
    #[serde(rename = "response.created")]
    ResponseCreated {
        #[serde(default)]
        response: ResponseInfo,
    },
    #[serde(rename = "response.output_audio.delta", alias = "response.audio.delta")]
    AudioDelta { item_id: String, delta: String },
    #[serde(rename = "response.output_audio.done", alias = "response.audio.done")]
    AudioDone { item_id: String },
    #[serde(
        rename = "response.output_audio_transcript.done",
        alias = "response.audio_transcript.done"
    )]
    AgentTranscript {
        #[serde(default)]
        transcript: String,
    },
    /// Any event that carries a whole item: how a function call's name is learnt early.
    #[serde(
        rename = "conversation.item.added",
        alias = "conversation.item.created",
        alias = "conversation.item.done",
        alias = "response.output_item.added",
        alias = "response.output_item.done"
    )]
    ItemSeen { item: Item },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        call_id: String,
        /// Not in every SDK's schema: fall back to the name remembered from the item.
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        arguments: String,
    },
    #[serde(rename = "response.done")]
    ResponseDone {
        #[serde(default)]
        response: ResponseInfo,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: Option<String>,
    pub message: String,
}

impl ErrorDetail {
    /// Errors that only mean "nothing to cancel" or "already answering" (as pipecat does).
    pub fn is_harmless(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("response_cancel_not_active" | "conversation_already_has_active_response")
        )
    }
}

impl std::fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.code.as_deref().unwrap_or("-");
        write!(f, "{} ({}): {}", self.kind, code, self.message)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ResponseInfo {
    pub id: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Item {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub call_id: Option<String>,
    pub name: Option<String>,
}

impl ServerEvent {
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ServerEvent {
        ServerEvent::parse(s).unwrap()
    }

    #[test]
    fn audio_delta_has_ga_and_beta_names() {
        for ty in ["response.output_audio.delta", "response.audio.delta"] {
            let ev = parse(&format!(
                r#"{{"type":"{ty}","event_id":"e","response_id":"r","item_id":"item_a1","output_index":0,"content_index":0,"delta":"AAA="}}"#
            ));
            assert_eq!(
                ev,
                ServerEvent::AudioDelta {
                    item_id: "item_a1".into(),
                    delta: "AAA=".into()
                }
            );
        }
        for ty in ["response.output_audio.done", "response.audio.done"] {
            let ev = parse(&format!(r#"{{"type":"{ty}","item_id":"i"}}"#));
            assert_eq!(
                ev,
                ServerEvent::AudioDone {
                    item_id: "i".into()
                }
            );
        }
    }

    #[test]
    fn agent_transcript_has_ga_and_beta_names() {
        for ty in [
            "response.output_audio_transcript.done",
            "response.audio_transcript.done",
        ] {
            let ev = parse(&format!(
                r#"{{"type":"{ty}","item_id":"i","transcript":"Olá"}}"#
            ));
            assert_eq!(
                ev,
                ServerEvent::AgentTranscript {
                    transcript: "Olá".into()
                }
            );
        }
    }

    #[test]
    fn items_are_seen_under_every_name() {
        for ty in [
            "conversation.item.added",
            "conversation.item.created",
            "conversation.item.done",
            "response.output_item.added",
            "response.output_item.done",
        ] {
            let ev = parse(&format!(
                r#"{{"type":"{ty}","previous_item_id":null,"item":{{"id":"item_f1","object":"realtime.item","type":"function_call","call_id":"call_abc","name":"lookup","arguments":""}}}}"#
            ));
            let ServerEvent::ItemSeen { item } = ev else {
                panic!("{ty} not parsed as an item event");
            };
            assert_eq!(item.kind, "function_call");
            assert_eq!(item.call_id.as_deref(), Some("call_abc"));
            assert_eq!(item.name.as_deref(), Some("lookup"));
        }
    }

    #[test]
    fn parses_the_reference_examples() {
        assert_eq!(
            parse(
                r#"{"type":"input_audio_buffer.speech_started","event_id":"event_1","audio_start_ms":1200,"item_id":"item_u1"}"#
            ),
            ServerEvent::SpeechStarted {}
        );
        assert_eq!(
            parse(
                r#"{"type":"response.function_call_arguments.done","event_id":"event_20","response_id":"resp_2","item_id":"item_f1","output_index":0,"call_id":"call_abc","name":"lookup_customer","arguments":"{\"phone\":\"+5511999990000\"}"}"#
            ),
            ServerEvent::FunctionCallArgumentsDone {
                call_id: "call_abc".into(),
                name: Some("lookup_customer".into()),
                arguments: r#"{"phone":"+5511999990000"}"#.into()
            }
        );
        let done = parse(
            r#"{"type":"response.done","event_id":"event_30","response":{"id":"resp_1","object":"realtime.response","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"},"output":[],"usage":null}}"#,
        );
        assert_eq!(
            done,
            ServerEvent::ResponseDone {
                response: ResponseInfo {
                    id: "resp_1".into(),
                    status: "cancelled".into()
                }
            }
        );
        let ServerEvent::Error { error } = parse(
            r#"{"type":"error","event_id":"event_31","error":{"type":"invalid_request_error","code":"response_cancel_not_active","message":"…","param":null,"event_id":null}}"#,
        ) else {
            panic!("not an error");
        };
        assert!(error.is_harmless());
        let ServerEvent::Error { error } =
            parse(r#"{"type":"error","error":{"type":"server_error","message":"boom"}}"#)
        else {
            panic!("not an error");
        };
        assert!(!error.is_harmless());
        assert_eq!(error.to_string(), "server_error (-): boom");
    }

    #[test]
    fn unknown_types_are_other_and_garbage_is_an_error() {
        assert_eq!(
            parse(r#"{"type":"rate_limits.updated","rate_limits":[]}"#),
            ServerEvent::Other
        );
        assert_eq!(
            parse(r#"{"type":"session.created","session":{"type":"realtime"}}"#),
            ServerEvent::SessionCreated {}
        );
        assert!(ServerEvent::parse("not json").is_err());
        assert!(ServerEvent::parse(r#"{"no_type":1}"#).is_err());
        // A known type without its required field is rejected, not half-parsed.
        assert!(ServerEvent::parse(r#"{"type":"response.output_audio.delta"}"#).is_err());
    }
}
