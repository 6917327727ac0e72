//! The tools every agent kind may call, whatever its provider: hand the call to a human,
//! end it, look something up in the tenant's knowledge, take a message. Declared per agent
//! (`[agent] tools = [...]`); the call task runs them (call/tools.rs).

pub mod knowledge;

pub use knowledge::{KnowledgeEntry, KnowledgeHit};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use voice_core::agent::ToolSpec;

/// Longest text argument accepted from a model.
const MAX_ARGUMENT_CHARS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    TransferToHuman,
    EndCall,
    LookupKnowledge,
    TakeMessage,
}

impl ToolKind {
    pub fn name(self) -> &'static str {
        match self {
            ToolKind::TransferToHuman => "transfer_to_human",
            ToolKind::EndCall => "end_call",
            ToolKind::LookupKnowledge => "lookup_knowledge",
            ToolKind::TakeMessage => "take_message",
        }
    }

    /// The declaration the provider sees.
    pub fn spec(self) -> ToolSpec {
        let (description, parameters) = match self {
            ToolKind::TransferToHuman => (
                "Transfer the call to a human attendant. Use it when the caller asks for a \
                 person, or when you cannot help. Say one short sentence that you are \
                 transferring before calling it.",
                json!({"type": "object", "properties": {
                    "reason": {"type": "string", "description": "Why, in a few words."}
                }}),
            ),
            ToolKind::EndCall => (
                "Hang up. Use it only after the conversation is over and you have said \
                 goodbye.",
                json!({"type": "object", "properties": {
                    "reason": {"type": "string", "description": "Why, in a few words."}
                }}),
            ),
            ToolKind::LookupKnowledge => (
                "Search the company's knowledge base (opening hours, prices, address, \
                 services, policies). Use it before answering such questions.",
                json!({"type": "object", "properties": {
                    "query": {"type": "string", "description": "What to look up, in a few keywords."}
                }, "required": ["query"]}),
            ),
            ToolKind::TakeMessage => (
                "Take a message for the team: the caller's name, a number to call back and \
                 the message. Confirm the details with the caller first.",
                json!({"type": "object", "properties": {
                    "name": {"type": "string"},
                    "phone": {"type": "string"},
                    "message": {"type": "string"}
                }, "required": ["name", "message"]}),
            ),
        };
        ToolSpec {
            name: self.name().into(),
            description: description.into(),
            parameters,
        }
    }
}

/// A tool call from a model, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolRequest {
    TransferToHuman {
        reason: String,
    },
    EndCall {
        reason: String,
    },
    LookupKnowledge {
        query: String,
    },
    TakeMessage {
        name: String,
        phone: String,
        message: String,
    },
}

impl ToolRequest {
    /// Parses a call to `name` with JSON `arguments`, if the agent has that tool.
    pub fn parse(enabled: &[ToolKind], name: &str, arguments: &str) -> Result<Self, String> {
        let kind = enabled
            .iter()
            .copied()
            .find(|k| k.name() == name)
            .ok_or_else(|| format!("unknown tool {name:?}"))?;
        let args: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| format!("arguments are not JSON: {e}"))?
        };
        if !args.is_object() {
            return Err("arguments must be a JSON object".into());
        }
        let text = |key: &str, required: bool| -> Result<String, String> {
            match args.get(key) {
                Some(Value::String(s)) if s.chars().count() > MAX_ARGUMENT_CHARS => Err(format!(
                    "{key} is longer than {MAX_ARGUMENT_CHARS} characters"
                )),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                None | Some(Value::Null) | Some(Value::String(_)) if !required => Ok(String::new()),
                None | Some(Value::Null) => Err(format!("{key} is required")),
                Some(Value::String(_)) => Err(format!("{key} is empty")),
                Some(_) => Err(format!("{key} must be a string")),
            }
        };
        Ok(match kind {
            ToolKind::TransferToHuman => ToolRequest::TransferToHuman {
                reason: text("reason", false)?,
            },
            ToolKind::EndCall => ToolRequest::EndCall {
                reason: text("reason", false)?,
            },
            ToolKind::LookupKnowledge => ToolRequest::LookupKnowledge {
                query: text("query", true)?,
            },
            ToolKind::TakeMessage => ToolRequest::TakeMessage {
                name: text("name", true)?,
                phone: text("phone", false)?,
                message: text("message", true)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ToolKind; 4] = [
        ToolKind::TransferToHuman,
        ToolKind::EndCall,
        ToolKind::LookupKnowledge,
        ToolKind::TakeMessage,
    ];

    #[test]
    fn specs_are_object_schemas_named_like_the_config() {
        for kind in ALL {
            let spec = kind.spec();
            assert_eq!(spec.name, kind.name());
            assert_eq!(spec.parameters["type"], "object");
            let configured: ToolKind =
                serde_json::from_value(json!(kind.name())).expect("config name");
            assert_eq!(configured, kind);
        }
    }

    #[test]
    fn calls_are_checked() {
        let parse = |name: &str, args: &str| ToolRequest::parse(&ALL, name, args);
        assert_eq!(
            parse("lookup_knowledge", r#"{"query":" horário "}"#),
            Ok(ToolRequest::LookupKnowledge {
                query: "horário".into()
            })
        );
        assert_eq!(
            parse("transfer_to_human", ""),
            Ok(ToolRequest::TransferToHuman {
                reason: String::new()
            })
        );
        assert_eq!(
            parse(
                "take_message",
                r#"{"name":"Ana","phone":11999,"message":"ligar"}"#
            ),
            Ok(ToolRequest::TakeMessage {
                name: "Ana".into(),
                phone: "11999".into(),
                message: "ligar".into()
            })
        );
        assert!(parse("lookup_knowledge", "{}")
            .unwrap_err()
            .contains("query"));
        assert!(parse("lookup_knowledge", r#"{"query":""}"#).is_err());
        assert!(parse("lookup_knowledge", r#"{"query":[1]}"#).is_err());
        assert!(parse("take_message", r#"{"name":"Ana"}"#)
            .unwrap_err()
            .contains("message"));
        assert!(parse("end_call", "not json").unwrap_err().contains("JSON"));
        assert!(parse("end_call", "[1]").unwrap_err().contains("object"));
        let long = format!(r#"{{"query":"{}"}}"#, "a".repeat(MAX_ARGUMENT_CHARS + 1));
        assert!(parse("lookup_knowledge", &long).is_err());
        assert!(parse("rm_rf", "{}").unwrap_err().contains("unknown tool"));
    }

    #[test]
    fn only_the_agents_own_tools_run() {
        let err = ToolRequest::parse(&[ToolKind::EndCall], "transfer_to_human", "{}").unwrap_err();
        assert!(err.contains("unknown tool"), "{err}");
    }
}
