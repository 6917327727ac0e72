//! The checks of `POST /v1/messages`, as Anthropic makes them (providers.md §5.2): the
//! `x-api-key` and `anthropic-version` headers, a known model, `max_tokens`, `stream:
//! true`, alternating roles starting with the user, non-blank text blocks, every
//! `tool_use` answered by `tool_result` blocks first in the next user turn (and none
//! answering anything else), and tools with an object `input_schema`.

use std::collections::HashSet;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::http_api::Rejection;
use super::openai_api::valid_tool_name;
use super::script::{Last, Parsed};
use super::stats::{Api, RecordedRequest};
use super::FakeLlmConfig;

pub(crate) const VERSION: &str = "2023-06-01";

fn bad(message: impl Into<String>) -> Rejection {
    Rejection::bad_request("invalid_request_error", message)
}

pub(crate) fn check_headers(headers: &HeaderMap, cfg: &FakeLlmConfig) -> Result<(), Rejection> {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if key != Some(cfg.api_key.as_str()) {
        return Err(Rejection {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            code: None,
            message: "invalid x-api-key".into(),
        });
    }
    match headers
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
    {
        None => Err(bad("anthropic-version: header is required")),
        Some(VERSION) => Ok(()),
        Some(other) => Err(bad(format!("anthropic-version: invalid version {other:?}"))),
    }
}

pub(crate) fn check(body: &Value, cfg: &FakeLlmConfig) -> Result<Parsed, Rejection> {
    let Some(obj) = body.as_object() else {
        return Err(bad("The request body is not valid JSON."));
    };
    let model = match obj.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => return Err(bad("model: Field required")),
    };
    if !cfg.models.is_empty() && !cfg.models.contains(&model) {
        return Err(Rejection {
            status: StatusCode::NOT_FOUND,
            kind: "not_found_error",
            code: None,
            message: format!("model: {model}"),
        });
    }
    let max_tokens = match obj.get("max_tokens").map(Value::as_u64) {
        Some(Some(n)) if n > 0 => n,
        None => return Err(bad("max_tokens: Field required")),
        Some(_) => return Err(bad("max_tokens: must be a positive integer")),
    };
    if obj.get("stream") != Some(&Value::Bool(true)) {
        return Err(bad("this fake only streams: set stream to true"));
    }
    if let Some(t) = obj.get("temperature") {
        if !t.as_f64().is_some_and(|t| (0.0..=1.0).contains(&t)) {
            return Err(bad("temperature: must be between 0 and 1"));
        }
    }
    let system = match obj.get("system") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|b| match (b["type"].as_str(), b["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t),
                _ => Err(bad("system: blocks must be text blocks")),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join("\n"),
        Some(_) => return Err(bad("system: Input should be a valid string or list")),
    };
    let tools = tools(obj.get("tools"))?;
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => return Err(bad("messages: at least one message is required")),
    };
    let last = conversation(messages)?;
    Ok(Parsed {
        record: RecordedRequest {
            api: Api::Messages,
            model,
            system,
            messages: messages.clone(),
            tools,
            max_tokens: Some(max_tokens),
        },
        last,
        include_usage: true,
    })
}

fn tools(value: Option<&Value>) -> Result<Vec<String>, Rejection> {
    let tools = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(bad("tools: Input should be a valid list")),
    };
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let name = tool["name"].as_str().unwrap_or("");
        if !valid_tool_name(name) {
            return Err(bad(format!(
                "tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )));
        }
        if tool["input_schema"]["type"] != "object" {
            return Err(bad(format!(
                "tools.{i}.input_schema: type must be \"object\""
            )));
        }
        if !matches!(tool.get("description"), None | Some(Value::String(_))) {
            return Err(bad(format!(
                "tools.{i}.description: Input should be a valid string"
            )));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Checks roles, blocks and tool pairing; returns what the answer responds to.
fn conversation(messages: &[Value]) -> Result<Last, Rejection> {
    let mut last = Last::Assistant;
    let mut pending: HashSet<String> = HashSet::new();
    let mut previous = "";
    for (i, m) in messages.iter().enumerate() {
        let role = match m["role"].as_str() {
            Some(r @ ("user" | "assistant")) => r,
            _ => {
                return Err(bad(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                )))
            }
        };
        if i == 0 && role != "user" {
            return Err(bad("messages: first message must use the \"user\" role"));
        }
        if role == previous {
            return Err(bad(
                "messages: roles must alternate between \"user\" and \"assistant\"",
            ));
        }
        previous = role;
        let blocks = blocks(m, i)?;
        let answered = std::mem::take(&mut pending);
        let mut results = Vec::new();
        let mut result_ids = HashSet::new();
        let mut text = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            match (b["type"].as_str().unwrap_or(""), role) {
                ("text", _) => {
                    let t = b["text"].as_str().unwrap_or("");
                    if t.trim().is_empty() {
                        return Err(bad(format!(
                            "messages.{i}.content.{j}.text: text content blocks must contain non-whitespace text"
                        )));
                    }
                    text.push(t.to_string());
                }
                ("tool_use", "assistant") => {
                    let id = b["id"].as_str().unwrap_or("");
                    let name = b["name"].as_str().unwrap_or("");
                    if id.is_empty() || name.is_empty() || !b["input"].is_object() {
                        return Err(bad(format!(
                            "messages.{i}.content.{j}: tool_use needs id, name and an object input"
                        )));
                    }
                    pending.insert(id.to_string());
                }
                ("tool_result", "user") => {
                    if !text.is_empty() {
                        return Err(bad(format!(
                            "messages.{i}: tool_result blocks must come before any text"
                        )));
                    }
                    let id = b["tool_use_id"].as_str().unwrap_or("");
                    if !answered.contains(id) {
                        return Err(bad(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        )));
                    }
                    result_ids.insert(id.to_string());
                    results.push(result_text(&b["content"], i, j)?);
                }
                (kind, _) => {
                    return Err(bad(format!(
                    "messages.{i}.content.{j}: block type {kind:?} not allowed in a {role} message"
                )))
                }
            }
        }
        if result_ids != answered {
            return Err(bad(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after"
            )));
        }
        last = match role {
            "assistant" => {
                if i == messages.len() - 1 && text.last().is_some_and(|t| t.trim_end() != t) {
                    return Err(bad(
                        "messages: final assistant content cannot end with trailing whitespace",
                    ));
                }
                Last::Assistant
            }
            _ if !results.is_empty() && text.is_empty() => Last::ToolResults(results),
            _ => Last::User(text.join(" ")),
        };
    }
    if !pending.is_empty() {
        return Err(bad(
            "messages: `tool_use` ids were found without `tool_result` blocks immediately after",
        ));
    }
    Ok(last)
}

/// The content as blocks (a string is one text block).
fn blocks(m: &Value, i: usize) -> Result<Vec<Value>, Rejection> {
    match &m["content"] {
        Value::String(s) => Ok(vec![serde_json::json!({"type": "text", "text": s})]),
        Value::Array(b) if !b.is_empty() => Ok(b.clone()),
        _ => Err(bad(format!(
            "messages.{i}: all messages must have non-empty content"
        ))),
    }
}

fn result_text(content: &Value, i: usize, j: usize) -> Result<String, Rejection> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t),
                _ => Err(bad(format!(
                    "messages.{i}.content.{j}.content: text blocks only"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|t| t.join(" ")),
        _ => Err(bad(format!("messages.{i}.content.{j}.content: invalid"))),
    }
}
