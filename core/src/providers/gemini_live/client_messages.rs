//! Client → server messages (providers.md §2.2–2.4). Each message has exactly one of
//! `setup | clientContent | realtimeInput | toolResponse`; the camelCase spelling is used.

use serde_json::{json, Map, Value};

use super::config::GeminiLiveConfig;
use crate::agent::{AgentPersona, Role};

/// The audio MIME type of caller audio: PCM16 little-endian mono at 16 kHz.
pub const INPUT_MIME: &str = "audio/pcm;rate=16000";

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Setup(Value),
    /// `data` is base64 of PCM16 LE at 16 kHz.
    Audio {
        data: String,
    },
    ActivityStart,
    ActivityEnd,
    /// `realtimeInput.text`: text streamed like the caller's audio (DTMF digits).
    RealtimeText(String),
    /// Ordered text turns; `turn_complete` asks the model to answer.
    Content {
        turns: Vec<(Role, String)>,
        turn_complete: bool,
    },
    ToolResponse(FunctionResponse),
}

/// One `functionResponses` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionResponse {
    /// The call's id; `None` when the server's call had none.
    pub id: Option<String>,
    pub name: String,
    pub response: Value,
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        match self {
            // 50 a second per call: base64 needs no escaping, so skip the serializer.
            Self::Audio { data } => {
                let mut out = String::with_capacity(data.len() + 80);
                out.push_str(r#"{"realtimeInput":{"audio":{"data":""#);
                out.push_str(data);
                out.push_str(r#"","mimeType":""#);
                out.push_str(INPUT_MIME);
                out.push_str(r#""}}}"#);
                out
            }
            other => other.to_value().to_string(),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Self::Setup(setup) => json!({ "setup": setup }),
            Self::Audio { data } => {
                json!({"realtimeInput": {"audio": {"data": data, "mimeType": INPUT_MIME}}})
            }
            Self::ActivityStart => json!({"realtimeInput": {"activityStart": {}}}),
            Self::ActivityEnd => json!({"realtimeInput": {"activityEnd": {}}}),
            Self::RealtimeText(text) => json!({"realtimeInput": {"text": text}}),
            Self::Content {
                turns,
                turn_complete,
            } => {
                let turns: Vec<Value> = turns
                    .iter()
                    .map(|(role, text)| {
                        let role = match role {
                            Role::Caller => "user",
                            Role::Agent => "model",
                        };
                        json!({"role": role, "parts": [{"text": text}]})
                    })
                    .collect();
                json!({"clientContent": {"turns": turns, "turnComplete": turn_complete}})
            }
            Self::ToolResponse(r) => {
                let mut entry = Map::new();
                if let Some(id) = &r.id {
                    entry.insert("id".into(), id.clone().into());
                }
                entry.insert("name".into(), r.name.clone().into());
                entry.insert("response".into(), r.response.clone());
                json!({"toolResponse": {"functionResponses": [entry]}})
            }
        }
    }
}

/// The tool output as the `response` object: `{"result": <output>}`, the output parsed
/// as JSON when it is JSON, else kept as a string.
pub fn tool_response_body(output: &str) -> Value {
    let result =
        serde_json::from_str::<Value>(output).unwrap_or_else(|_| Value::String(output.to_string()));
    json!({ "result": result })
}

/// The body of the first message (§2.2).
pub fn setup(cfg: &GeminiLiveConfig, persona: &AgentPersona) -> Value {
    let mut speech = Map::new();
    if !persona.voice.is_empty() {
        speech.insert(
            "voiceConfig".into(),
            json!({"prebuiltVoiceConfig": {"voiceName": persona.voice}}),
        );
    }
    let language = persona.language.trim().replace('_', "-");
    if !language.is_empty() {
        speech.insert("languageCode".into(), language.into());
    }
    let mut generation = Map::new();
    generation.insert("responseModalities".into(), json!(["AUDIO"]));
    if !speech.is_empty() {
        generation.insert("speechConfig".into(), Value::Object(speech));
    }

    // Local turns: the call says when the caller speaks (activityStart / activityEnd).
    let detection = if persona.local_turns {
        json!({"disabled": true})
    } else {
        json!({
            "disabled": false,
            "startOfSpeechSensitivity": cfg.start_sensitivity,
            "endOfSpeechSensitivity": cfg.end_sensitivity,
            "prefixPaddingMs": cfg.prefix_padding_ms,
            "silenceDurationMs": cfg.silence_duration_ms,
        })
    };

    let mut s = Map::new();
    s.insert("model".into(), cfg.model_path().into());
    s.insert("generationConfig".into(), Value::Object(generation));
    if !persona.instructions.is_empty() {
        s.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": persona.instructions}]}),
        );
    }
    if !persona.tools.is_empty() {
        let declarations: Vec<Value> = persona
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        s.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
    }
    s.insert(
        "realtimeInputConfig".into(),
        json!({"automaticActivityDetection": detection,
               "activityHandling": "START_OF_ACTIVITY_INTERRUPTS"}),
    );
    if cfg.transcription {
        s.insert("inputAudioTranscription".into(), json!({}));
        s.insert("outputAudioTranscription".into(), json!({}));
    }
    Value::Object(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support;

    fn persona() -> AgentPersona {
        test_support::persona("Charon", "pt_BR")
    }

    #[test]
    fn setup_has_the_reference_shape() {
        let s = setup(&GeminiLiveConfig::default(), &persona());
        assert_eq!(
            s["model"],
            "models/gemini-2.5-flash-native-audio-preview-12-2025"
        );
        let g = &s["generationConfig"];
        assert_eq!(g["responseModalities"], json!(["AUDIO"]));
        assert_eq!(
            g["speechConfig"],
            json!({"voiceConfig":{"prebuiltVoiceConfig":{"voiceName":"Charon"}},"languageCode":"pt-BR"})
        );
        assert_eq!(
            s["systemInstruction"],
            json!({"parts":[{"text":"Você é um atendente."}]})
        );
        let f = &s["tools"][0]["functionDeclarations"][0];
        assert_eq!(f["name"], "lookup_customer");
        assert_eq!(f["parameters"]["properties"]["phone"]["type"], "string");
        let aad = &s["realtimeInputConfig"]["automaticActivityDetection"];
        assert_eq!(
            *aad,
            json!({"disabled": false, "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH",
                   "endOfSpeechSensitivity": "END_SENSITIVITY_LOW", "prefixPaddingMs": 20,
                   "silenceDurationMs": 500})
        );
        assert_eq!(s["inputAudioTranscription"], json!({}));
        assert_eq!(s["outputAudioTranscription"], json!({}));
    }

    #[test]
    fn local_turns_disable_detection_and_empty_fields_are_left_out() {
        let cfg = GeminiLiveConfig {
            transcription: false,
            ..Default::default()
        };
        let p = AgentPersona {
            local_turns: true,
            ..Default::default()
        };
        let s = setup(&cfg, &p);
        assert_eq!(
            s["realtimeInputConfig"]["automaticActivityDetection"],
            json!({"disabled": true})
        );
        for absent in [
            "systemInstruction",
            "tools",
            "inputAudioTranscription",
            "outputAudioTranscription",
        ] {
            assert!(s.get(absent).is_none(), "{absent}");
        }
        assert!(s["generationConfig"].get("speechConfig").is_none());
    }

    #[test]
    fn messages_serialize_to_the_wire_shape() {
        let parse = |m: ClientMessage| serde_json::from_str::<Value>(&m.to_json()).unwrap();
        assert_eq!(
            parse(ClientMessage::Audio {
                data: "AAA=".into()
            }),
            json!({"realtimeInput":{"audio":{"data":"AAA=","mimeType":"audio/pcm;rate=16000"}}})
        );
        assert_eq!(
            parse(ClientMessage::ActivityStart),
            json!({"realtimeInput":{"activityStart":{}}})
        );
        assert_eq!(
            parse(ClientMessage::RealtimeText("[DTMF 5]".into())),
            json!({"realtimeInput":{"text":"[DTMF 5]"}})
        );
        assert_eq!(
            parse(ClientMessage::Content {
                turns: vec![(Role::Caller, "Oi".into()), (Role::Agent, "Olá!".into())],
                turn_complete: false
            }),
            json!({"clientContent":{"turns":[{"role":"user","parts":[{"text":"Oi"}]},
                   {"role":"model","parts":[{"text":"Olá!"}]}],"turnComplete":false}})
        );
        assert_eq!(
            parse(ClientMessage::ToolResponse(FunctionResponse {
                id: Some("fc_1".into()),
                name: "lookup".into(),
                response: tool_response_body(r#"{"name":"Ana"}"#),
            })),
            json!({"toolResponse":{"functionResponses":[{"id":"fc_1","name":"lookup",
                   "response":{"result":{"name":"Ana"}}}]}})
        );
    }

    #[test]
    fn tool_output_is_json_when_it_parses() {
        assert_eq!(tool_response_body("42"), json!({"result": 42}));
        assert_eq!(
            tool_response_body("not json"),
            json!({"result": "not json"})
        );
        assert_eq!(tool_response_body(""), json!({"result": ""}));
    }
}
