//! Client → server messages (providers.md §3.2) and the `conversation_initiation_client_data`
//! built from the persona and the call.

use serde_json::{json, Map, Value};

use super::config::ElevenLabsAgentConfig;
use crate::agent::{AgentPersona, CallInfo, Role};

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `conversation_initiation_client_data`, built by [`initiation`].
    Init(Value),
    /// Base64 of the negotiated input format; a bare-key frame without `type`.
    AudioChunk(String),
    /// Echoes the ping's `event_id` exactly as it came.
    Pong {
        event_id: Value,
    },
    ToolResult {
        tool_call_id: String,
        result: String,
        is_error: bool,
    },
    ContextualUpdate(String),
    UserMessage(String),
    UserActivity,
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        let v = match self {
            // Ten chunks a second per call: base64 needs no escaping, write it directly.
            Self::AudioChunk(b64) => {
                let mut out = String::with_capacity(b64.len() + 24);
                out.push_str(r#"{"user_audio_chunk":""#);
                out.push_str(b64);
                out.push_str(r#""}"#);
                return out;
            }
            Self::Init(v) => v.clone(),
            Self::Pong { event_id } => json!({"type": "pong", "event_id": event_id}),
            Self::ToolResult {
                tool_call_id,
                result,
                is_error,
            } => json!({"type": "client_tool_result", "tool_call_id": tool_call_id,
                        "result": result, "is_error": is_error}),
            Self::ContextualUpdate(text) => json!({"type": "contextual_update", "text": text}),
            Self::UserMessage(text) => json!({"type": "user_message", "text": text}),
            Self::UserActivity => json!({"type": "user_activity"}),
        };
        v.to_string()
    }

    /// Tool output as a result: an error when it is a JSON object with an `error` key (how
    /// the bridge reports a tool it cannot run).
    pub fn tool_result(call_id: String, output: String) -> Self {
        let is_error = serde_json::from_str::<Value>(&output)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.contains_key("error")))
            .unwrap_or(false);
        Self::ToolResult {
            tool_call_id: call_id,
            result: output,
            is_error,
        }
    }
}

/// The first message after the upgrade.
///
/// A reconnect's history goes into the prompt override (when overrides are on) rather than
/// a `contextual_update`: the prompt is in place before the agent's first turn, so it
/// continues the conversation instead of opening a new one, and `first_message: ""` stops
/// it from greeting again. Agents that forbid overrides get the history as one
/// `contextual_update` instead ([`history_update`]).
pub fn initiation(cfg: &ElevenLabsAgentConfig, persona: &AgentPersona, call: &CallInfo) -> Value {
    let mut msg = Map::new();
    msg.insert("type".into(), "conversation_initiation_client_data".into());
    if cfg.override_prompt {
        msg.insert(
            "conversation_config_override".into(),
            config_override(persona, &call.history),
        );
    }
    // Known numbers only. Whether the agent declares these variables is its own business;
    // undeclared dynamic variables are assumed to be ignored [UNCONFIRMED].
    let mut vars = Map::new();
    for (key, value) in [
        ("caller_number", &call.caller),
        ("callee_number", &call.callee),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            vars.insert(key.into(), v.into());
        }
    }
    if !vars.is_empty() {
        msg.insert("dynamic_variables".into(), Value::Object(vars));
    }
    Value::Object(msg)
}

fn config_override(persona: &AgentPersona, history: &[(Role, String)]) -> Value {
    let mut prompt = persona.instructions.clone();
    if !history.is_empty() {
        if !prompt.is_empty() {
            prompt.push_str("\n\n");
        }
        prompt.push_str(&history_block(history));
    }
    let mut agent = Map::new();
    agent.insert("prompt".into(), json!({ "prompt": prompt }));
    if let Some(lang) = persona.iso639_1() {
        agent.insert("language".into(), lang.into());
    }
    if !history.is_empty() {
        agent.insert("first_message".into(), "".into());
    } else if !persona.greeting.trim().is_empty() {
        agent.insert("first_message".into(), persona.greeting.trim().into());
    }
    let mut over = Map::new();
    over.insert("agent".into(), Value::Object(agent));
    if !persona.voice.is_empty() {
        over.insert("tts".into(), json!({ "voice_id": persona.voice }));
    }
    Value::Object(over)
}

/// The history as one `contextual_update`, for agents without overrides.
pub fn history_update(history: &[(Role, String)]) -> ClientMessage {
    ClientMessage::ContextualUpdate(history_block(history))
}

fn history_block(history: &[(Role, String)]) -> String {
    let mut block = String::from(
        "Conversation so far (the call was reconnected; continue it, do not greet again):",
    );
    for (role, text) in history {
        let who = match role {
            Role::Caller => "Caller",
            Role::Agent => "Agent",
        };
        block.push_str(&format!("\n{who}: {text}"));
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persona() -> AgentPersona {
        AgentPersona {
            instructions: "Você é um atendente.".into(),
            voice: "voice_abc".into(),
            language: "pt-BR".into(),
            ..Default::default()
        }
    }

    #[test]
    fn initiation_overrides_prompt_language_and_voice() {
        let call = CallInfo {
            caller: Some("+5511999990000".into()),
            callee: Some("".into()),
            ..Default::default()
        };
        let v = initiation(&ElevenLabsAgentConfig::default(), &persona(), &call);
        assert_eq!(
            v,
            json!({"type": "conversation_initiation_client_data",
                "conversation_config_override": {
                    "agent": {"prompt": {"prompt": "Você é um atendente."}, "language": "pt"},
                    "tts": {"voice_id": "voice_abc"}},
                "dynamic_variables": {"caller_number": "+5511999990000"}})
        );
        let bare = initiation(
            &ElevenLabsAgentConfig {
                override_prompt: false,
                ..Default::default()
            },
            &AgentPersona::default(),
            &CallInfo::default(),
        );
        assert_eq!(bare, json!({"type": "conversation_initiation_client_data"}));
    }

    #[test]
    fn a_text_greeting_is_the_first_message_of_a_new_conversation_only() {
        let greeter = AgentPersona {
            greeting: "Olá, aqui é a clínica.".into(),
            ..persona()
        };
        let v = initiation(
            &ElevenLabsAgentConfig::default(),
            &greeter,
            &CallInfo::default(),
        );
        let agent = &v["conversation_config_override"]["agent"];
        assert_eq!(agent["first_message"], "Olá, aqui é a clínica.");
        let reconnect = CallInfo {
            history: vec![(Role::Agent, "Olá.".into())],
            ..Default::default()
        };
        let v = initiation(&ElevenLabsAgentConfig::default(), &greeter, &reconnect);
        assert_eq!(
            v["conversation_config_override"]["agent"]["first_message"],
            ""
        );
    }

    #[test]
    fn history_goes_into_the_prompt_and_silences_the_greeting() {
        let call = CallInfo {
            history: vec![
                (Role::Agent, "Olá, em que posso ajudar?".into()),
                (Role::Caller, "Quero marcar uma consulta.".into()),
            ],
            ..Default::default()
        };
        let v = initiation(&ElevenLabsAgentConfig::default(), &persona(), &call);
        let agent = &v["conversation_config_override"]["agent"];
        assert_eq!(agent["first_message"], "");
        let prompt = agent["prompt"]["prompt"].as_str().unwrap();
        assert!(prompt.starts_with("Você é um atendente.\n\nConversation so far"));
        assert!(prompt
            .ends_with("Agent: Olá, em que posso ajudar?\nCaller: Quero marcar uma consulta."));
        let ClientMessage::ContextualUpdate(text) = history_update(&call.history) else {
            panic!("not a contextual update");
        };
        assert!(text.contains("Caller: Quero marcar"));
    }

    #[test]
    fn messages_have_the_wire_shape() {
        let j = |m: ClientMessage| serde_json::from_str::<Value>(&m.to_json()).unwrap();
        assert_eq!(
            ClientMessage::AudioChunk("AAA=".into()).to_json(),
            r#"{"user_audio_chunk":"AAA="}"#
        );
        assert_eq!(
            j(ClientMessage::Pong {
                event_id: json!(42)
            }),
            json!({"type": "pong", "event_id": 42})
        );
        assert_eq!(
            j(ClientMessage::tool_result("tc_1".into(), "ok".into())),
            json!({"type": "client_tool_result", "tool_call_id": "tc_1", "result": "ok",
                   "is_error": false})
        );
        assert_eq!(
            j(ClientMessage::tool_result(
                "tc_2".into(),
                r#"{"error":"tool x is not available"}"#.into()
            ))["is_error"],
            true
        );
        assert_eq!(
            j(ClientMessage::tool_result(
                "tc_3".into(),
                r#"["error"]"#.into()
            ))["is_error"],
            false
        );
        assert_eq!(
            j(ClientMessage::UserMessage("[DTMF 5]".into())),
            json!({"type": "user_message", "text": "[DTMF 5]"})
        );
        assert_eq!(
            j(ClientMessage::UserActivity),
            json!({"type": "user_activity"})
        );
    }
}
