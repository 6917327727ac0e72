//! The request body (providers.md §5.1): the system prompt first, then the conversation;
//! an assistant turn that called tools carries them as `tool_calls`, each answered by a
//! `role: tool` message.

use serde_json::{json, Value};

use super::config::{ChatFlavor, OpenAiChatConfig};
use crate::providers::llm::{ChatMessage, ChatRequest};
use crate::providers::ProviderError;

pub fn body(cfg: &OpenAiChatConfig, request: &ChatRequest) -> Result<Value, ProviderError> {
    let max_tokens = request.max_tokens.unwrap_or(cfg.max_tokens);
    if max_tokens == 0 {
        return Err(ProviderError::Config("max_tokens must be positive".into()));
    }
    let mut body = json!({
        "model": cfg.model,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": messages(request),
    });
    // OpenAI's newer models only take `max_completion_tokens`; the compatible servers
    // know `max_tokens`.
    let limit_field = match cfg.flavor {
        ChatFlavor::OpenAi => "max_completion_tokens",
        ChatFlavor::Groq | ChatFlavor::Ollama => "max_tokens",
    };
    body[limit_field] = max_tokens.into();
    if let Some(t) = cfg.temperature {
        if !(t.is_finite() && (0.0..=2.0).contains(&t)) {
            return Err(ProviderError::Config(
                "temperature must be between 0 and 2".into(),
            ));
        }
        // Rounded: an f32 widened as is would be sent as 0.20000000298….
        body["temperature"] = json!((f64::from(t) * 1000.0).round() / 1000.0);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        body["tools"] = tools.into();
        body["tool_choice"] = "auto".into();
    }
    Ok(body)
}

fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        out.push(json!({"role": "system", "content": request.system}));
    }
    for message in &request.messages {
        match message {
            ChatMessage::User(text) => out.push(json!({"role": "user", "content": text})),
            ChatMessage::Assistant { text, tool_calls } if tool_calls.is_empty() => {
                // An empty assistant turn says nothing the model needs.
                if !text.is_empty() {
                    out.push(json!({"role": "assistant", "content": text}));
                }
            }
            ChatMessage::Assistant { text, tool_calls } => {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                            "function": {"name": c.name, "arguments": arguments(&c.arguments)}})
                    })
                    .collect();
                let content = if text.is_empty() {
                    Value::Null
                } else {
                    text.as_str().into()
                };
                out.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
            }
            ChatMessage::ToolResult { call_id, output } => {
                out.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}))
            }
        }
    }
    out
}

/// A call without arguments is sent as `{}`: some servers reject an empty string.
fn arguments(args: &str) -> &str {
    if args.trim().is_empty() {
        "{}"
    } else {
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ToolSpec;
    use crate::providers::llm::ToolCall;

    fn request() -> ChatRequest {
        ChatRequest {
            system: "Seja breve.".into(),
            messages: vec![
                ChatMessage::User("Meu telefone é 11 5555".into()),
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "lookup_customer".into(),
                        arguments: String::new(),
                    }],
                },
                ChatMessage::ToolResult {
                    call_id: "call_1".into(),
                    output: "{\"name\":\"Ana\"}".into(),
                },
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![],
                },
            ],
            tools: vec![ToolSpec {
                name: "lookup_customer".into(),
                description: "Find".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: None,
        }
    }

    #[test]
    fn maps_the_conversation_tools_and_limits() {
        let body = body(&OpenAiChatConfig::default(), &request()).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_completion_tokens"], 300);
        assert!(body.get("temperature").is_none());
        assert_eq!(body["tool_choice"], "auto");
        assert_eq!(body["tools"][0]["function"]["name"], "lookup_customer");
        let m = body["messages"].as_array().unwrap();
        assert_eq!(m.len(), 4, "the empty assistant turn is left out: {m:?}");
        assert_eq!(m[0], json!({"role": "system", "content": "Seja breve."}));
        assert_eq!(m[1]["role"], "user");
        assert_eq!(m[2]["content"], Value::Null);
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{}");
        assert_eq!(m[2]["tool_calls"][0]["type"], "function");
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"name\":\"Ana\"}"})
        );
    }

    #[test]
    fn compatible_servers_get_max_tokens_and_bad_values_fail() {
        let cfg = OpenAiChatConfig {
            temperature: Some(0.2),
            ..OpenAiChatConfig::groq()
        };
        let req = ChatRequest {
            max_tokens: Some(50),
            tools: vec![],
            ..request()
        };
        let b = body(&cfg, &req).unwrap();
        assert_eq!(b["max_tokens"], 50);
        assert!(b.get("max_completion_tokens").is_none() && b.get("tools").is_none());
        assert!(b.get("tool_choice").is_none());
        assert_eq!(b["temperature"], 0.2);
        let hot = OpenAiChatConfig {
            temperature: Some(3.0),
            ..Default::default()
        };
        assert!(matches!(body(&hot, &req), Err(ProviderError::Config(_))));
        let zero = ChatRequest {
            max_tokens: Some(0),
            ..request()
        };
        assert!(matches!(body(&cfg, &zero), Err(ProviderError::Config(_))));
    }
}
