//! The checks of `POST /v1/chat/completions`, as OpenAI makes them (providers.md §5.1):
//! a Bearer key, a known model, `stream: true`, messages whose roles and shapes are
//! valid, every assistant `tool_calls` answered by `role: tool` messages right after it
//! (and no tool message answering anything else), function tools.

use std::collections::HashSet;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::http_api::Rejection;
use super::script::{Last, Parsed};
use super::stats::{Api, RecordedRequest};
use super::{ChatStyle, FakeLlmConfig};

/// `Authorization: Bearer <key>` (Ollama takes anything).
pub(crate) fn check_auth(headers: &HeaderMap, cfg: &FakeLlmConfig) -> Result<(), Rejection> {
    if cfg.chat_style == ChatStyle::Ollama {
        return Ok(());
    }
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
        ));
    };
    match auth.strip_prefix("Bearer ") {
        Some(key) if key == cfg.api_key => Ok(()),
        _ => Err(unauthorized(
            "Incorrect API key provided. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            Some("invalid_api_key"),
        )),
    }
}

fn unauthorized(message: &str, code: Option<&'static str>) -> Rejection {
    Rejection {
        status: StatusCode::UNAUTHORIZED,
        kind: "invalid_request_error",
        code,
        message: message.into(),
    }
}

fn bad(message: impl Into<String>) -> Rejection {
    Rejection::bad_request("invalid_request_error", message)
}

pub(crate) fn check(body: &Value, cfg: &FakeLlmConfig) -> Result<Parsed, Rejection> {
    let Some(obj) = body.as_object() else {
        return Err(bad("We could not parse the JSON body of your request."));
    };
    let model = match obj.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => return Err(bad("you must provide a model parameter")),
    };
    if !cfg.models.is_empty() && !cfg.models.contains(&model) {
        return Err(Rejection {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("model_not_found"),
            message: format!("The model `{model}` does not exist or you do not have access to it."),
        });
    }
    if obj.get("stream") != Some(&Value::Bool(true)) {
        return Err(bad("this fake only streams: set 'stream' to true"));
    }
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("Invalid type for 'stream_options.include_usage'")),
        },
        Some(_) => return Err(bad("Invalid type for 'stream_options': expected an object")),
    };
    let max_tokens = limit(obj.get("max_completion_tokens"), "max_completion_tokens")?
        .or(limit(obj.get("max_tokens"), "max_tokens")?);
    if let Some(t) = obj.get("temperature") {
        if !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t)) {
            return Err(bad(
                "Invalid 'temperature': must be a number between 0 and 2.",
            ));
        }
    }
    if obj.get("n").is_some_and(|n| n.as_u64() != Some(1)) {
        return Err(bad("this fake answers one choice: 'n' must be 1"));
    }
    let tools = tools(obj.get("tools"))?;
    match obj.get("tool_choice") {
        None => {}
        Some(_) if tools.is_empty() => {
            return Err(bad(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            ))
        }
        Some(Value::String(s)) if ["none", "auto", "required"].contains(&s.as_str()) => {}
        Some(Value::Object(_)) => {}
        Some(_) => return Err(bad("Invalid value for 'tool_choice'.")),
    }
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(bad(
                "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            ))
        }
        _ => return Err(bad("Missing required parameter: 'messages'.")),
    };
    let (system, last) = conversation(messages)?;
    Ok(Parsed {
        record: RecordedRequest {
            api: Api::ChatCompletions,
            model,
            system,
            messages: messages.clone(),
            tools,
            max_tokens,
        },
        last,
        include_usage,
    })
}

/// A token limit, when given: a positive integer.
fn limit(value: Option<&Value>, name: &str) -> Result<Option<u64>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(bad(format!(
                "Invalid '{name}': expected a positive integer."
            ))),
        },
    }
}

/// The declared function tools' names.
fn tools(value: Option<&Value>) -> Result<Vec<String>, Rejection> {
    let tools = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(bad("Invalid type for 'tools': expected an array.")),
    };
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        if tool["type"] != "function" {
            return Err(bad(format!(
                "Invalid value for 'tools[{i}].type': expected 'function'."
            )));
        }
        let f = &tool["function"];
        let name = f["name"].as_str().unwrap_or("");
        if !valid_tool_name(name) {
            return Err(bad(format!(
                "Invalid 'tools[{i}].function.name': string does not match pattern '^[a-zA-Z0-9_-]{{1,64}}$'."
            )));
        }
        if !matches!(f.get("parameters"), None | Some(Value::Object(_))) {
            return Err(bad(format!(
                "Invalid type for 'tools[{i}].function.parameters': expected an object."
            )));
        }
        if !matches!(f.get("description"), None | Some(Value::String(_))) {
            return Err(bad(format!(
                "Invalid type for 'tools[{i}].function.description'."
            )));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

pub(crate) fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The system prompt and what the answer responds to, once every message checks out.
fn conversation(messages: &[Value]) -> Result<(String, Last), Rejection> {
    let mut system = Vec::new();
    // Tool calls of the last assistant message not answered yet.
    let mut pending: HashSet<String> = HashSet::new();
    let mut last = Last::Assistant;
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        if role != "tool" && !pending.is_empty() {
            return Err(unanswered(&pending));
        }
        match role {
            "system" | "developer" => system.push(text_content(m, i)?),
            "user" => last = Last::User(text_content(m, i)?),
            "assistant" => {
                let calls = match m.get("tool_calls") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(c)) => c.as_slice(),
                    Some(_) => return Err(bad(format!("Invalid type for 'messages[{i}].tool_calls'."))),
                };
                match m.get("content") {
                    Some(Value::String(_)) => {}
                    None | Some(Value::Null) if !calls.is_empty() => {}
                    _ => {
                        return Err(bad(format!(
                            "Invalid value for 'messages[{i}].content': expected a string, got null."
                        )))
                    }
                }
                for (j, call) in calls.iter().enumerate() {
                    let id = call["id"].as_str().unwrap_or("");
                    let f = &call["function"];
                    let ok = !id.is_empty()
                        && call["type"] == "function"
                        && f["name"].as_str().is_some_and(|n| !n.is_empty())
                        && f["arguments"].is_string();
                    if !ok {
                        return Err(bad(format!(
                            "Invalid 'messages[{i}].tool_calls[{j}]': needs id, type 'function', function.name and function.arguments (a string)."
                        )));
                    }
                    pending.insert(id.to_string());
                }
                last = Last::Assistant;
            }
            "tool" => {
                let id = m["tool_call_id"].as_str().unwrap_or("");
                if !pending.remove(id) {
                    return Err(bad(format!(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls' (messages[{i}].tool_call_id {id:?})."
                    )));
                }
                let output = text_content(m, i)?;
                match &mut last {
                    Last::ToolResults(outputs) => outputs.push(output),
                    _ => last = Last::ToolResults(vec![output]),
                }
            }
            other => {
                return Err(bad(format!(
                    "Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'."
                )))
            }
        }
    }
    if !pending.is_empty() {
        return Err(unanswered(&pending));
    }
    Ok((system.join("\n"), last))
}

fn unanswered(pending: &HashSet<String>) -> Rejection {
    let mut ids: Vec<&str> = pending.iter().map(String::as_str).collect();
    ids.sort_unstable();
    bad(format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        ids.join(", ")
    ))
}

/// A string, or an array of `{"type": "text", "text": …}` parts.
fn text_content(m: &Value, i: usize) -> Result<String, Rejection> {
    match &m["content"] {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t),
                _ => Err(bad(format!("Invalid content part in 'messages[{i}]'."))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|t| t.join(" ")),
        _ => Err(bad(format!(
            "Invalid type for 'messages[{i}].content': expected a string or an array of parts."
        ))),
    }
}
