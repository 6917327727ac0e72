//! Who the agent is, whatever provider speaks for it: instructions, voice, language,
//! tools, and whether the call detects turns itself.

use serde::Deserialize;

/// Who the agent is: what it is told, how it sounds, which tools it may call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AgentPersona {
    pub instructions: String,
    /// Provider voice name (`marin`, `alloy`, …); empty keeps the provider default.
    pub voice: String,
    /// Caller language, `pt` or `pt-BR`; only the ISO-639-1 part goes to transcription.
    pub language: String,
    pub tools: Vec<ToolSpec>,
    /// The call detects turns itself (local VAD + Smart Turn) and sends
    /// [`crate::agent::AgentInput::EndOfTurn`]; the provider's turn detection is off.
    pub local_turns: bool,
    /// A greeting the agent says first, as soon as it is connected (empty: none). Only for
    /// a new conversation: a reconnect's history already has one.
    pub greeting: String,
}

impl AgentPersona {
    /// The words of the greeting, as the instruction that makes a model say them.
    pub fn greeting_instruction(&self) -> Option<String> {
        let text = self.greeting.trim();
        (!text.is_empty()).then(|| {
            format!("The call has just started. Greet the caller by saying exactly this, and nothing else: \"{text}\"")
        })
    }
}

/// A function the agent may call. `parameters` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "empty_object_schema")]
    pub parameters: serde_json::Value,
}

fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

impl AgentPersona {
    /// ISO-639-1 code of `language` (`pt-BR` → `pt`), or `None` when unset.
    pub fn iso639_1(&self) -> Option<String> {
        let primary = self.language.split(['-', '_']).next().unwrap_or("").trim();
        (!primary.is_empty()).then(|| primary.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_is_reduced_to_iso639_1() {
        let mut p = AgentPersona {
            language: "pt-BR".into(),
            ..Default::default()
        };
        assert_eq!(p.iso639_1().as_deref(), Some("pt"));
        p.language = "EN_us".into();
        assert_eq!(p.iso639_1().as_deref(), Some("en"));
        p.language = String::new();
        assert_eq!(p.iso639_1(), None);
    }
}
