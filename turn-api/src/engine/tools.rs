//! The tools the engine offers, with the same names and arguments as the realtime agents'
//! (bridge/src/tools): the model's arguments are checked here, never trusted.

use serde_json::{json, Value};
use voice_core::agent::ToolSpec;

use super::settings::EngineTool;

/// Longest text argument accepted from a model.
const MAX_ARGUMENT_CHARS: usize = 2000;

impl EngineTool {
    pub fn name(self) -> &'static str {
        match self {
            EngineTool::TransferToHuman => "transfer_to_human",
            EngineTool::EndCall => "end_call",
            EngineTool::TakeMessage => "take_message",
            EngineTool::LookupKnowledge => "lookup_knowledge",
        }
    }

    /// The declaration the model sees.
    pub fn spec(self) -> ToolSpec {
        let (description, parameters) = match self {
            EngineTool::TransferToHuman => (
                "Transfer the call to a human attendant. Use it when the caller asks for a \
                 person, or when you cannot help. Say one short sentence that you are \
                 transferring before calling it.",
                json!({"type": "object", "properties": {
                    "reason": {"type": "string", "description": "Why, in a few words."}
                }}),
            ),
            EngineTool::EndCall => (
                "Hang up. Use it only after the conversation is over and the caller has \
                 nothing more to ask.",
                json!({"type": "object", "properties": {
                    "reason": {"type": "string", "description": "Why, in a few words."}
                }}),
            ),
            EngineTool::TakeMessage => (
                "Take a message for the team: the caller's name, a number to call back and \
                 the message. Confirm the details with the caller first.",
                json!({"type": "object", "properties": {
                    "name": {"type": "string"},
                    "phone": {"type": "string"},
                    "message": {"type": "string"}
                }, "required": ["name", "message"]}),
            ),
            EngineTool::LookupKnowledge => (
                "Search the company's knowledge base (opening hours, prices, address, \
                 services, policies). Use it before answering such questions.",
                json!({"type": "object", "properties": {
                    "query": {"type": "string", "description": "What to look up, in a few keywords."}
                }, "required": ["query"]}),
            ),
        };
        ToolSpec {
            name: self.name().into(),
            description: description.into(),
            parameters,
        }
    }
}

/// A tool call, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolRequest {
    TransferToHuman,
    EndCall,
    TakeMessage {
        name: String,
        number: String,
        message: String,
    },
    LookupKnowledge {
        query: String,
    },
}

impl ToolRequest {
    /// Parses a call to `name` with JSON `arguments`, if `offered` has that tool.
    pub fn parse(offered: &[EngineTool], name: &str, arguments: &str) -> Result<Self, String> {
        let kind = offered
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
        let text = |keys: &[&str], required: bool| -> Result<String, String> {
            let key = keys[0];
            let value = keys.iter().find_map(|k| args.get(*k));
            match value {
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
            EngineTool::TransferToHuman => ToolRequest::TransferToHuman,
            EngineTool::EndCall => ToolRequest::EndCall,
            EngineTool::TakeMessage => ToolRequest::TakeMessage {
                name: text(&["name"], true)?,
                number: text(&["phone", "number"], false)?,
                message: text(&["message"], true)?,
            },
            EngineTool::LookupKnowledge => ToolRequest::LookupKnowledge {
                query: text(&["query"], true)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[EngineTool] = &[
        EngineTool::TransferToHuman,
        EngineTool::EndCall,
        EngineTool::TakeMessage,
        EngineTool::LookupKnowledge,
    ];

    #[test]
    fn arguments_are_checked_and_only_offered_tools_parse() {
        assert_eq!(
            ToolRequest::parse(
                ALL,
                "take_message",
                r#"{"name":" Ana ","number":11999,"message":"ligar"}"#
            ),
            Ok(ToolRequest::TakeMessage {
                name: "Ana".into(),
                number: "11999".into(),
                message: "ligar".into()
            })
        );
        assert_eq!(
            ToolRequest::parse(ALL, "end_call", ""),
            Ok(ToolRequest::EndCall)
        );
        assert!(ToolRequest::parse(ALL, "take_message", r#"{"name":"Ana"}"#)
            .unwrap_err()
            .contains("message is required"));
        assert!(ToolRequest::parse(ALL, "end_call", "[1]").is_err());
        assert!(ToolRequest::parse(ALL, "lookup_knowledge", r#"{"query":[1]}"#).is_err());
        assert!(ToolRequest::parse(&ALL[1..], "transfer_to_human", "{}")
            .unwrap_err()
            .contains("unknown tool"));
        let long = format!(r#"{{"query":"{}"}}"#, "a".repeat(3000));
        assert!(ToolRequest::parse(ALL, "lookup_knowledge", &long).is_err());
    }
}
