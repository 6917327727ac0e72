//! Strict parsing of client frames (providers.md §3.2): known shapes only, required
//! fields with the right types, no stray keys. Anything else is a protocol error.

use base64::Engine;
use serde_json::{Map, Value};

/// A well-formed client frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientFrame {
    /// Decoded bytes of a bare `{"user_audio_chunk": …}`.
    Audio(Vec<u8>),
    Init {
        overrides: Option<Value>,
        dynamic_variables: Option<Value>,
        /// `agent.first_message` from the override, when present.
        first_message: Option<String>,
    },
    Pong {
        event_id: u64,
    },
    ToolResult {
        tool_call_id: String,
        message: Value,
    },
    ContextualUpdate(String),
    UserMessage(String),
    UserActivity,
    Feedback,
}

pub(crate) fn parse(text: &str) -> Result<ClientFrame, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("a client frame must be a JSON object".into());
    };
    if obj.contains_key("user_audio_chunk") {
        return audio(&obj);
    }
    let kind = match obj.get("type") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err("type must be a string".into()),
        None => return Err("frame has neither type nor user_audio_chunk".into()),
    };
    let only = |keys: &[&str]| allowed_keys(&obj, &kind, keys);
    match kind.as_str() {
        "conversation_initiation_client_data" => {
            only(&[
                "type",
                "conversation_config_override",
                "custom_llm_extra_body",
                "dynamic_variables",
                "user_id",
                "source_info",
            ])?;
            init(&obj)
        }
        "pong" => {
            only(&["type", "event_id"])?;
            let event_id = obj
                .get("event_id")
                .and_then(Value::as_u64)
                .ok_or("pong.event_id must be a non-negative integer")?;
            Ok(ClientFrame::Pong { event_id })
        }
        "client_tool_result" => {
            only(&["type", "tool_call_id", "result", "is_error"])?;
            let tool_call_id = string(&obj, &kind, "tool_call_id")?;
            if !obj.contains_key("result") {
                return Err("client_tool_result.result is required".into());
            }
            if obj.get("is_error").is_some_and(|e| !e.is_boolean()) {
                return Err("client_tool_result.is_error must be a boolean".into());
            }
            Ok(ClientFrame::ToolResult {
                tool_call_id,
                message: Value::Object(obj),
            })
        }
        "contextual_update" => {
            only(&["type", "text"])?;
            Ok(ClientFrame::ContextualUpdate(string(&obj, &kind, "text")?))
        }
        "user_message" => {
            only(&["type", "text"])?;
            Ok(ClientFrame::UserMessage(string(&obj, &kind, "text")?))
        }
        "user_activity" => {
            only(&["type"])?;
            Ok(ClientFrame::UserActivity)
        }
        "feedback" => {
            only(&["type", "score", "event_id"])?;
            match obj.get("score").and_then(Value::as_str) {
                Some("like" | "dislike") => Ok(ClientFrame::Feedback),
                _ => Err("feedback.score must be \"like\" or \"dislike\"".into()),
            }
        }
        other => Err(format!("unknown client message type {other:?}")),
    }
}

fn audio(obj: &Map<String, Value>) -> Result<ClientFrame, String> {
    if obj.len() != 1 {
        return Err("user_audio_chunk is a bare-key frame: no type or other keys".into());
    }
    let b64 = obj
        .get("user_audio_chunk")
        .and_then(Value::as_str)
        .ok_or("user_audio_chunk must be a base64 string")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(ClientFrame::Audio)
        .map_err(|e| format!("user_audio_chunk is not valid base64: {e}"))
}

fn init(obj: &Map<String, Value>) -> Result<ClientFrame, String> {
    let overrides = obj.get("conversation_config_override").cloned();
    let first_message = match &overrides {
        Some(o) => check_override(o)?,
        None => None,
    };
    let dynamic_variables = obj.get("dynamic_variables").cloned();
    if let Some(vars) = &dynamic_variables {
        let vars = vars
            .as_object()
            .ok_or("dynamic_variables must be an object")?;
        for (k, v) in vars {
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                return Err(format!(
                    "dynamic variable {k:?} must be a string, number or boolean"
                ));
            }
        }
    }
    if obj
        .get("custom_llm_extra_body")
        .is_some_and(|b| !b.is_object())
    {
        return Err("custom_llm_extra_body must be an object".into());
    }
    Ok(ClientFrame::Init {
        overrides,
        dynamic_variables,
        first_message,
    })
}

/// The override's shape (SDK `conversation_config_client_override_input`); returns
/// `agent.first_message` when set.
fn check_override(o: &Value) -> Result<Option<String>, String> {
    let o = object(o, "conversation_config_override")?;
    let mut first_message = None;
    for (key, value) in o {
        match key.as_str() {
            "agent" => {
                let agent = object(value, "agent")?;
                allowed_keys(agent, "agent", &["first_message", "language", "prompt"])?;
                if let Some(fm) = agent.get("first_message") {
                    let fm = fm.as_str().ok_or("agent.first_message must be a string")?;
                    first_message = Some(fm.to_string());
                }
                if let Some(lang) = agent.get("language") {
                    let ok = lang.as_str().is_some_and(|l| {
                        (2..=5).contains(&l.len())
                            && l.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    });
                    if !ok {
                        return Err(format!("agent.language {lang} is not a language code"));
                    }
                }
                if let Some(prompt) = agent.get("prompt") {
                    let prompt = object(prompt, "agent.prompt")?;
                    allowed_keys(
                        prompt,
                        "agent.prompt",
                        &["prompt", "llm", "tool_ids", "native_mcp_server_ids"],
                    )?;
                    if prompt.get("prompt").is_some_and(|p| !p.is_string()) {
                        return Err("agent.prompt.prompt must be a string".into());
                    }
                }
            }
            "tts" => {
                let tts = object(value, "tts")?;
                allowed_keys(
                    tts,
                    "tts",
                    &[
                        "voice_id",
                        "model_id",
                        "stability",
                        "speed",
                        "similarity_boost",
                    ],
                )?;
                if tts.get("voice_id").is_some_and(|v| !v.is_string()) {
                    return Err("tts.voice_id must be a string".into());
                }
            }
            "asr" | "turn" | "conversation" => {
                object(value, key)?;
            }
            other => return Err(format!("unknown override key {other:?}")),
        }
    }
    Ok(first_message)
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be an object"))
}

fn allowed_keys(obj: &Map<String, Value>, what: &str, keys: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: unexpected key {k:?}")),
        None => Ok(()),
    }
}

fn string(obj: &Map<String, Value>, what: &str, key: &str) -> Result<String, String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{what}.{key} must be a string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ClientFrame {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse(s).expect_err(s)
    }

    #[test]
    fn accepts_the_sdk_shapes() {
        assert_eq!(
            ok(r#"{"user_audio_chunk":"AAE="}"#),
            ClientFrame::Audio(vec![0, 1])
        );
        let init = ok(
            r#"{"type":"conversation_initiation_client_data","custom_llm_extra_body":{},
            "conversation_config_override":{"agent":{"prompt":{"prompt":"…"},"first_message":"","language":"pt"},"tts":{"voice_id":"v"}},
            "dynamic_variables":{"customer_name":"Ana","n":1}}"#,
        );
        assert!(
            matches!(init, ClientFrame::Init { first_message: Some(ref f), .. } if f.is_empty())
        );
        assert_eq!(
            ok(r#"{"type":"pong","event_id":42}"#),
            ClientFrame::Pong { event_id: 42 }
        );
        assert!(matches!(
            ok(
                r#"{"type":"client_tool_result","tool_call_id":"tc_1","result":"…","is_error":false}"#
            ),
            ClientFrame::ToolResult { .. }
        ));
        assert_eq!(
            ok(r#"{"type":"contextual_update","text":"Pro"}"#),
            ClientFrame::ContextualUpdate("Pro".into())
        );
        assert_eq!(ok(r#"{"type":"user_activity"}"#), ClientFrame::UserActivity);
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "not json",
            "[1]",
            r#"{"type":"user_audio_chunk","user_audio_chunk":"AA=="}"#,
            r#"{"user_audio_chunk":"%%%"}"#,
            r#"{"user_audio_chunk":5}"#,
            r#"{"type":"pong","event_id":"7"}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"client_tool_result","tool_call_id":"tc_1"}"#,
            r#"{"type":"client_tool_result","tool_call_id":"tc_1","result":"x","is_error":"no"}"#,
            r#"{"type":"user_message"}"#,
            r#"{"type":"user_message","text":"x","extra":1}"#,
            r#"{"type":"input_audio_buffer.append","audio":""}"#,
            r#"{"text":"x"}"#,
            r#"{"type":"conversation_initiation_client_data","conversation_config_override":{"agent":{"promt":{}}}}"#,
            r#"{"type":"conversation_initiation_client_data","conversation_config_override":{"agent":{"language":"pt-BR"}}}"#,
            r#"{"type":"conversation_initiation_client_data","conversation_config_override":{"llm":{}}}"#,
            r#"{"type":"conversation_initiation_client_data","dynamic_variables":{"a":{"b":1}}}"#,
            r#"{"type":"conversation_initiation_client_data","extra":true}"#,
        ] {
            assert!(parse(bad).is_err(), "accepted {bad}");
        }
        assert!(err(r#"{"type":"nope"}"#).contains("unknown client message type"));
    }
}
