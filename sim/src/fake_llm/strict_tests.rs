//! The fake refuses what the real services refuse, with their error JSON: raw HTTP
//! requests the real clients never send.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const WAIT: Duration = Duration::from_secs(5);

async fn fake(cfg: FakeLlmConfig) -> FakeLlm {
    FakeLlm::start(FakeLlmConfig {
        first_token_ms: 0,
        token_interval_ms: 0,
        ..cfg
    })
    .await
    .unwrap()
}

/// POSTs `body` with `headers` (and `Connection: close`); the status and the body as JSON
/// (`Null` for an event stream).
async fn post(fake: &FakeLlm, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut tcp = TcpStream::connect(fake.addr()).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("the fake never finished answering")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

const JSON: (&str, &str) = ("content-type", "application/json");
const BEARER: (&str, &str) = ("authorization", "Bearer sk-fake-llm");
const X_KEY: (&str, &str) = ("x-api-key", "sk-fake-llm");
const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

fn chat(messages: Value) -> Value {
    json!({"model": "gpt-4o-mini", "stream": true, "messages": messages})
}

fn tool_call(id: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": "lookup", "arguments": "{}"}})
}

#[tokio::test]
async fn chat_completions_refuses_what_openai_refuses() {
    let fake = fake(FakeLlmConfig::default()).await;
    let user = json!([{"role": "user", "content": "Oi"}]);
    let auth = [JSON, BEARER];
    let (status, body) = post(
        &fake,
        "/v1/chat/completions",
        &[JSON],
        &chat(user.clone()).to_string(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let wrong = [JSON, ("authorization", "Bearer sk-other")];
    let (status, body) = post(
        &fake,
        "/v1/chat/completions",
        &wrong,
        &chat(user.clone()).to_string(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, _) = post(
        &fake,
        "/v1/chat/completions",
        &[BEARER],
        &chat(user.clone()).to_string(),
    )
    .await;
    assert_eq!(status, 400, "not sent as JSON");
    let (status, _) = post(&fake, "/v1/chat/completions", &auth, "{not json").await;
    assert_eq!(status, 400);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"model": "gpt-4o-mini", "messages": user}),
            "only streams",
        ),
        (chat(json!([])), "empty array"),
        (
            chat(json!([{"role": "robot", "content": "x"}])),
            "Supported values",
        ),
        (
            chat(json!([{"role": "user", "content": 5}])),
            "messages[0].content",
        ),
        (
            chat(
                json!([{"role": "user", "content": "Oi"}, {"role": "tool", "tool_call_id": "c1", "content": "r"}]),
            ),
            "preceeding message with 'tool_calls'",
        ),
        (
            chat(json!([{"role": "user", "content": "Oi"},
            {"role": "assistant", "content": null, "tool_calls": [tool_call("c1"), tool_call("c2")]},
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
            {"role": "user", "content": "e?"}])),
            "did not have response messages: c2",
        ),
        (
            chat(json!([{"role": "user", "content": "Oi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "function": {"name": "x"}}]}])),
            "tool_calls[0]",
        ),
        (
            chat(json!([{"role": "assistant", "content": null}])),
            "expected a string, got null",
        ),
        (
            json!({"model": "gpt-4o-mini", "stream": true, "messages": user, "tool_choice": "auto"}),
            "only allowed when 'tools' are specified",
        ),
        (
            json!({"model": "gpt-4o-mini", "stream": true, "messages": user,
            "tools": [{"type": "function", "function": {"name": "look up"}}]}),
            "does not match pattern",
        ),
        (
            json!({"model": "gpt-4o-mini", "stream": true, "messages": user, "max_tokens": 0}),
            "max_tokens",
        ),
    ];
    let count = cases.len();
    for (body, expected) in cases {
        let (status, answer) = post(&fake, "/v1/chat/completions", &auth, &body.to_string()).await;
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(message.contains(expected), "{body}: {message}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
    }
    let unknown = json!({"model": "gpt-9", "stream": true, "messages": user});
    let (status, body) = post(&fake, "/v1/chat/completions", &auth, &unknown.to_string()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    let good = chat(
        json!([{"role": "system", "content": "s"}, {"role": "user", "content": "Oi"},
        {"role": "assistant", "content": null, "tool_calls": [tool_call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"}]),
    );
    let (status, _) = post(&fake, "/v1/chat/completions", &auth, &good.to_string()).await;
    assert_eq!(status, 200);
    let stats = fake.stats();
    assert_eq!(stats.rejections.len(), count + 5, "{:?}", stats.rejections);
    assert_eq!(
        (stats.requests, stats.accepted.len()),
        (count as u64 + 6, 1)
    );
    assert_eq!(stats.accepted[0].system, "s");
}

fn messages(messages: Value) -> Value {
    json!({"model": "claude-haiku-4-5", "max_tokens": 100, "stream": true, "messages": messages})
}

fn tool_use(id: &str) -> Value {
    json!({"type": "tool_use", "id": id, "name": "lookup", "input": {}})
}

fn tool_result(id: &str) -> Value {
    json!({"type": "tool_result", "tool_use_id": id, "content": "r"})
}

#[tokio::test]
async fn messages_refuses_what_anthropic_refuses() {
    let fake = fake(FakeLlmConfig::default()).await;
    let user = json!([{"role": "user", "content": "Oi"}]);
    let ok = messages(user.clone()).to_string();
    let (status, body) = post(&fake, "/v1/messages", &[JSON, VERSION], &ok).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    );
    let (status, body) = post(&fake, "/v1/messages", &[JSON, X_KEY], &ok).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("anthropic-version"));
    let (status, _) = post(
        &fake,
        "/v1/messages",
        &[JSON, X_KEY, ("anthropic-version", "2020-01-01")],
        &ok,
    )
    .await;
    assert_eq!(status, 400);
    let headers = [JSON, X_KEY, VERSION];
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"model": "claude-haiku-4-5", "stream": true, "messages": user}),
            "max_tokens: Field required",
        ),
        (
            json!({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": user}),
            "only streams",
        ),
        (
            messages(json!([{"role": "assistant", "content": "Olá"}])),
            "first message",
        ),
        (
            messages(json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])),
            "alternate",
        ),
        (
            messages(json!([{"role": "user", "content": [{"type": "text", "text": "  "}]}])),
            "non-whitespace",
        ),
        (
            messages(json!([{"role": "user", "content": []}])),
            "non-empty content",
        ),
        (
            messages(json!([{"role": "user", "content": [tool_result("t1")]}])),
            "unexpected `tool_use_id`",
        ),
        (
            messages(
                json!([{"role": "user", "content": "Oi"}, {"role": "assistant", "content": [tool_use("t1"), tool_use("t2")]},
            {"role": "user", "content": [tool_result("t1")]}]),
            ),
            "without `tool_result`",
        ),
        (
            messages(
                json!([{"role": "user", "content": "Oi"}, {"role": "assistant", "content": [tool_use("t1")]},
            {"role": "user", "content": [{"type": "text", "text": "e?"}, tool_result("t1")]}]),
            ),
            "before any text",
        ),
        (
            messages(
                json!([{"role": "user", "content": "Oi"}, {"role": "assistant", "content": [tool_use("t1")]}]),
            ),
            "without `tool_result`",
        ),
        (
            messages(
                json!([{"role": "user", "content": "Oi"}, {"role": "assistant", "content": "Olá "}]),
            ),
            "trailing whitespace",
        ),
        (
            json!({"model": "claude-haiku-4-5", "max_tokens": 10, "stream": true, "messages": user,
            "tools": [{"name": "lookup", "input_schema": {"type": "string"}}]}),
            "input_schema",
        ),
    ];
    let count = cases.len();
    for (body, expected) in cases {
        let (status, answer) = post(&fake, "/v1/messages", &headers, &body.to_string()).await;
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(message.contains(expected), "{body}: {message}");
        assert_eq!(answer["type"], "error");
    }
    let unknown = json!({"model": "claude-0", "max_tokens": 10, "stream": true, "messages": user});
    let (status, body) = post(&fake, "/v1/messages", &headers, &unknown.to_string()).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );
    let good = messages(json!([{"role": "user", "content": "Oi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Vou ver."}, tool_use("t1"), tool_use("t2")]},
        {"role": "user", "content": [tool_result("t1"), tool_result("t2"), {"type": "text", "text": "e?"}]}]));
    let (status, _) = post(&fake, "/v1/messages", &headers, &good.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(fake.stats().rejections.len(), count + 4);
}

#[tokio::test]
async fn ollama_takes_no_key_and_faults_answer_in_each_providers_words() {
    let fake = fake(FakeLlmConfig {
        chat_style: ChatStyle::Ollama,
        ..FakeLlmConfig::default()
    })
    .await;
    let body = json!({"model": "llama3.2", "stream": true, "messages": [{"role": "user", "content": "Oi"}]});
    let (status, _) = post(&fake, "/v1/chat/completions", &[JSON], &body.to_string()).await;
    assert_eq!(status, 200);
    let anthropic = messages(json!([{"role": "user", "content": "Oi"}])).to_string();
    let (status, _) = post(&fake, "/v1/messages", &[JSON, VERSION], &anthropic).await;
    assert_eq!(status, 401, "the Anthropic endpoint still wants its key");
    fake.set_fault_sequence(vec![Fault::Status(529), Fault::Status(429)]);
    let (status, body) = post(&fake, "/v1/messages", &[JSON, X_KEY, VERSION], &anthropic).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (529, Some("overloaded_error"))
    );
    let chat_body = json!({"model": "llama3.2", "stream": true, "messages": [{"role": "user", "content": "Oi"}]});
    let (status, body) = post(
        &fake,
        "/v1/chat/completions",
        &[JSON],
        &chat_body.to_string(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
    let (status, _) = post(&fake, "/v1/messages", &[JSON, X_KEY, VERSION], &anthropic).await;
    assert_eq!(status, 200);
    assert!(FakeLlm::start(FakeLlmConfig {
        tool_rules: vec![ToolRule {
            when_user_says: "x".into(),
            say_first: String::new(),
            calls: vec![ScriptedCall::new("t", "[1]")],
        }],
        ..FakeLlmConfig::default()
    })
    .await
    .is_err());
}
