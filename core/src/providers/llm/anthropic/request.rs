//! The request body (providers.md §5.2). The system prompt goes apart; the conversation
//! must alternate user and assistant and start with the user, so turns of one role in a
//! row are merged, tool results become `tool_result` blocks of a user turn (ahead of any
//! text, as the API wants), and tool calls `tool_use` blocks of the assistant's.

use serde_json::{json, Map, Value};
use tracing::warn;

use super::config::AnthropicConfig;
use crate::providers::llm::{ChatMessage, ChatRequest};
use crate::providers::ProviderError;

/// Put before a conversation that starts with the agent (its greeting), since the API
/// wants the user first.
pub const OPENING: &str = "(call started)";

pub fn body(cfg: &AnthropicConfig, request: &ChatRequest) -> Result<Value, ProviderError> {
    let max_tokens = request.max_tokens.unwrap_or(cfg.max_tokens);
    if max_tokens == 0 {
        return Err(ProviderError::Config("max_tokens must be positive".into()));
    }
    let mut body = json!({
        "model": cfg.model,
        "max_tokens": max_tokens,
        "stream": true,
        "messages": messages(&request.messages),
    });
    if !request.system.is_empty() {
        body["system"] = request.system.as_str().into();
    }
    if let Some(t) = cfg.temperature {
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            return Err(ProviderError::Config(
                "temperature must be between 0 and 1".into(),
            ));
        }
        body["temperature"] = json!((f64::from(t) * 1000.0).round() / 1000.0);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body["tools"] = tools.into();
    }
    Ok(body)
}

fn messages(messages: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message {
            ChatMessage::User(text) => ("user", text_block(text).into_iter().collect()),
            ChatMessage::Assistant { text, tool_calls } => {
                let mut blocks: Vec<Value> = text_block(text).into_iter().collect();
                blocks.extend(tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name,
                        "input": input(&c.name, &c.arguments)})
                }));
                ("assistant", blocks)
            }
            ChatMessage::ToolResult { call_id, output } => (
                "user",
                vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": output})],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => {
                for block in blocks {
                    if block["type"] == "tool_result" {
                        let at = existing
                            .iter()
                            .position(|b| b["type"] != "tool_result")
                            .unwrap_or(existing.len());
                        existing.insert(at, block);
                    } else {
                        existing.push(block);
                    }
                }
            }
            _ => turns.push((role, blocks)),
        }
    }
    if turns.first().is_some_and(|(role, _)| *role == "assistant") {
        turns.insert(0, ("user", vec![json!({"type": "text", "text": OPENING})]));
    }
    // A last assistant turn is continued by the model, and may not end in whitespace.
    if let Some(("assistant", blocks)) = turns.last_mut().map(|(r, b)| (*r, b)) {
        if let Some(Value::String(text)) = blocks.last_mut().map(|b| &mut b["text"]) {
            let trimmed = text.trim_end().to_string();
            *text = trimmed;
        }
    }
    turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// The API refuses empty (or blank) text blocks.
fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

/// A call's arguments as the object `input` must be (`{}` when they are not one).
fn input(name: &str, arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            warn!(
                tool = name,
                "tool call arguments are not a JSON object; sent as {{}}"
            );
            Value::Object(Map::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ToolSpec;
    use crate::providers::llm::ToolCall;

    fn call(id: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "lookup".into(),
            arguments: args.into(),
        }
    }

    #[test]
    fn folds_tool_results_and_merges_roles() {
        let request = ChatRequest {
            system: "Seja breve.".into(),
            messages: vec![
                ChatMessage::Assistant {
                    text: "Olá! ".into(),
                    tool_calls: vec![],
                },
                ChatMessage::User("Oi".into()),
                ChatMessage::User("  ".into()),
                ChatMessage::Assistant {
                    text: "Vou ver.".into(),
                    tool_calls: vec![call("t1", "{\"phone\":\"11\"}"), call("t2", "oops")],
                },
                ChatMessage::User("e aí?".into()),
                ChatMessage::ToolResult {
                    call_id: "t1".into(),
                    output: "Ana".into(),
                },
                ChatMessage::ToolResult {
                    call_id: "t2".into(),
                    output: "nada".into(),
                },
                ChatMessage::Assistant {
                    text: "Achei a Ana. ".into(),
                    tool_calls: vec![],
                },
            ],
            tools: vec![ToolSpec {
                name: "lookup".into(),
                description: "Find".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: None,
        };
        let b = body(&AnthropicConfig::default(), &request).unwrap();
        assert_eq!(
            (b["max_tokens"].as_u64(), b["stream"].as_bool()),
            (Some(300), Some(true))
        );
        assert_eq!(b["system"], "Seja breve.");
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
        let m = b["messages"].as_array().unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "user",
                "assistant",
                "user",
                "assistant"
            ]
        );
        assert_eq!(m[0]["content"][0]["text"], OPENING);
        assert_eq!(
            m[2]["content"].as_array().unwrap().len(),
            1,
            "blank text left out"
        );
        assert_eq!(m[3]["content"][1]["input"], json!({"phone": "11"}));
        assert_eq!(
            m[3]["content"][2]["input"],
            json!({}),
            "bad arguments sent as {{}}"
        );
        let results: Vec<&str> = m[4]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(results, ["tool_result", "tool_result", "text"]);
        assert_eq!(m[4]["content"][1]["tool_use_id"], "t2");
        assert_eq!(m[5]["content"][0]["text"], "Achei a Ana.");
    }

    #[test]
    fn limits_and_temperature_are_checked() {
        let req = ChatRequest {
            messages: vec![ChatMessage::User("Oi".into())],
            max_tokens: Some(40),
            ..Default::default()
        };
        let b = body(&AnthropicConfig::default(), &req).unwrap();
        assert_eq!(b["max_tokens"], 40);
        assert!(b.get("system").is_none() && b.get("tools").is_none());
        let hot = AnthropicConfig {
            temperature: Some(1.5),
            ..Default::default()
        };
        assert!(matches!(body(&hot, &req), Err(ProviderError::Config(_))));
        let zero = ChatRequest {
            max_tokens: Some(0),
            ..req
        };
        assert!(body(&AnthropicConfig::default(), &zero).is_err());
    }
}
