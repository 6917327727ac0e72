//! An answer as SSE events, in each provider's framing (providers.md §5.1, §5.2), marked
//! with how they are paced: the preamble goes out at once, content chunks (text deltas,
//! tool-call pieces) wait for the first-token delay and then the token interval, and
//! what follows a content chunk (block ends, finish, usage) goes right after it.

use serde_json::{json, Value};

use super::script::{Answer, Call, Stop};
use super::{ChatStyle, WireStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Preamble,
    Content,
    Follow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: Kind,
    /// The whole event, blank line included (`\n` line ends).
    pub text: String,
}

fn frame(kind: Kind, text: String) -> Frame {
    Frame { kind, text }
}

/// A keep-alive comment, as some proxies send before the answer.
fn comments(wire: &WireStyle) -> Option<Frame> {
    wire.comments
        .then(|| frame(Kind::Preamble, ": keep-alive\n: processing\n\n".into()))
}

/// `s` in pieces of `n` characters (one piece when `n` is 0).
fn pieces(s: &str, n: usize) -> Vec<String> {
    if n == 0 || s.is_empty() {
        return vec![s.to_string()];
    }
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The fields every OpenAI chunk carries.
struct Head {
    id: String,
    created: u64,
    model: String,
    fingerprint: &'static str,
    ollama: bool,
}

impl Head {
    fn chunk(&self, mut delta: Value, finish: Option<&str>) -> String {
        if self.ollama {
            // Ollama puts the role on every delta.
            delta["role"] = "assistant".into();
        }
        let chunk = json!({"id": self.id, "object": "chat.completion.chunk",
            "created": self.created, "model": self.model, "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    }
}

/// A Chat Completions stream.
pub(crate) fn openai(
    answer: &Answer,
    model: &str,
    include_usage: bool,
    style: ChatStyle,
    wire: &WireStyle,
) -> Vec<Frame> {
    let ollama = style == ChatStyle::Ollama;
    let head = Head {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_now(),
        model: model.to_string(),
        fingerprint: if ollama { "fp_ollama" } else { "fp_fake" },
        ollama,
    };
    let mut out: Vec<Frame> = comments(wire).into_iter().collect();
    out.push(frame(
        Kind::Preamble,
        head.chunk(json!({"role": "assistant", "content": ""}), None),
    ));
    for token in &answer.tokens {
        out.push(frame(
            Kind::Content,
            head.chunk(json!({"content": token}), None),
        ));
    }
    if ollama && !answer.calls.is_empty() {
        let calls: Vec<Value> = answer
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({"id": c.id, "index": i, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        let delta = json!({"content": "", "tool_calls": calls});
        out.push(frame(Kind::Content, head.chunk(delta, None)));
    } else {
        for fragment in fragments(&answer.calls, wire) {
            let delta = json!({"tool_calls": [fragment]});
            out.push(frame(Kind::Content, head.chunk(delta, None)));
        }
    }
    let finish = match answer.stop {
        Stop::Done => "stop",
        Stop::ToolCalls => "tool_calls",
        Stop::Length => "length",
    };
    let last_delta = if ollama {
        json!({"content": ""})
    } else {
        json!({})
    };
    out.push(frame(Kind::Follow, head.chunk(last_delta, Some(finish))));
    if include_usage {
        let choices = if wire.usage_choices_null {
            Value::Null
        } else {
            json!([])
        };
        let completion = answer.tokens.len() + answer.calls.len() * 10;
        let usage = json!({"id": head.id, "object": "chat.completion.chunk",
            "created": head.created, "model": head.model, "system_fingerprint": head.fingerprint,
            "choices": choices, "usage": {"prompt_tokens": 50, "completion_tokens": completion,
            "total_tokens": 50 + completion}});
        out.push(frame(Kind::Follow, format!("data: {usage}\n\n")));
    }
    out.push(frame(Kind::Follow, "data: [DONE]\n\n".into()));
    out
}

/// OpenAI tool-call fragments: per call, a head (id, name, empty arguments) and then the
/// arguments in pieces; one call after the other, or alternating.
fn fragments(calls: &[Call], wire: &WireStyle) -> Vec<Value> {
    let per_call: Vec<Vec<Value>> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut f = vec![json!({"index": i, "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": ""}})];
            f.extend(
                pieces(&c.arguments, wire.tool_args_piece)
                    .into_iter()
                    .map(|p| json!({"index": i, "function": {"arguments": p}})),
            );
            f
        })
        .collect();
    if !wire.interleave_tool_calls {
        return per_call.into_iter().flatten().collect();
    }
    let longest = per_call.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|k| per_call.iter().filter_map(move |f| f.get(k).cloned()))
        .collect()
}

/// The error chunk OpenAI sends mid-stream.
pub(crate) fn openai_error() -> String {
    let e = json!({"error": {"message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error", "param": null, "code": null}});
    format!("data: {e}\n\n")
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A Messages stream.
pub(crate) fn anthropic(answer: &Answer, model: &str, wire: &WireStyle) -> Vec<Frame> {
    let mut out: Vec<Frame> = comments(wire).into_iter().collect();
    let message = json!({"id": format!("msg_{}", uuid::Uuid::new_v4().simple()), "type": "message",
        "role": "assistant", "content": [], "model": model, "stop_reason": null,
        "stop_sequence": null, "usage": {"input_tokens": 50, "output_tokens": 1}});
    out.push(frame(
        Kind::Preamble,
        event(
            "message_start",
            json!({"type": "message_start", "message": message}),
        ),
    ));
    let ping = event("ping", json!({"type": "ping"}));
    let mut index = 0;
    if answer.tokens.is_empty() {
        out.push(frame(Kind::Preamble, ping));
    } else {
        let start = json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}});
        out.push(frame(Kind::Preamble, event("content_block_start", start)));
        out.push(frame(Kind::Preamble, ping));
        for token in &answer.tokens {
            let delta = json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": token}});
            out.push(frame(Kind::Content, event("content_block_delta", delta)));
        }
        out.push(block_stop(0));
        index = 1;
    }
    for call in &answer.calls {
        let start = json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}});
        out.push(frame(Kind::Content, event("content_block_start", start)));
        let mut parts = vec![String::new()];
        parts.extend(pieces(&call.arguments, wire.tool_args_piece));
        for part in parts {
            let delta = json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": part}});
            out.push(frame(Kind::Content, event("content_block_delta", delta)));
        }
        out.push(block_stop(index));
        index += 1;
    }
    let reason = match answer.stop {
        Stop::Done => "end_turn",
        Stop::ToolCalls => "tool_use",
        Stop::Length => "max_tokens",
    };
    let delta = json!({"type": "message_delta", "delta": {"stop_reason": reason,
        "stop_sequence": null}, "usage": {"output_tokens": answer.tokens.len().max(1)}});
    out.push(frame(Kind::Follow, event("message_delta", delta)));
    out.push(frame(
        Kind::Follow,
        event("message_stop", json!({"type": "message_stop"})),
    ));
    out
}

fn block_stop(index: usize) -> Frame {
    frame(
        Kind::Follow,
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ),
    )
}

/// The error event Anthropic sends mid-stream.
pub(crate) fn anthropic_error() -> String {
    event(
        "error",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(tokens: &[&str], calls: usize, stop: Stop) -> Answer {
        Answer {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            calls: (0..calls)
                .map(|i| Call {
                    id: format!("call_{i}"),
                    name: format!("tool_{i}"),
                    arguments: "{\"a\":\"olá\"}".into(),
                })
                .collect(),
            stop,
        }
    }

    fn data(f: &Frame) -> Value {
        let line = f
            .text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        serde_json::from_str(line).unwrap_or(Value::Null)
    }

    #[test]
    fn openai_fragments_alternate_when_asked() {
        let wire = WireStyle {
            tool_args_piece: 4,
            interleave_tool_calls: true,
            ..Default::default()
        };
        let frames = openai(
            &answer(&[], 2, Stop::ToolCalls),
            "m",
            true,
            ChatStyle::OpenAi,
            &wire,
        );
        let indexes: Vec<u64> = frames
            .iter()
            .filter(|f| f.kind == Kind::Content)
            .map(|f| {
                data(f)["choices"][0]["delta"]["tool_calls"][0]["index"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(indexes, [0, 1, 0, 1, 0, 1, 0, 1]);
        let n = frames.len();
        assert_eq!(
            data(&frames[n - 3])["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(data(&frames[n - 2])["choices"], json!([]));
        assert_eq!(frames[n - 1].text, "data: [DONE]\n\n");
    }

    #[test]
    fn ollama_sends_calls_whole() {
        let frames = openai(
            &answer(&["Oi"], 2, Stop::ToolCalls),
            "m",
            false,
            ChatStyle::Ollama,
            &WireStyle::default(),
        );
        let content: Vec<&Frame> = frames.iter().filter(|f| f.kind == Kind::Content).collect();
        assert_eq!(content.len(), 2);
        let calls = &data(content[1])["choices"][0]["delta"]["tool_calls"];
        assert_eq!(calls[1]["function"]["arguments"], "{\"a\":\"olá\"}");
        assert_eq!(data(content[1])["system_fingerprint"], "fp_ollama");
        assert_eq!(data(content[0])["choices"][0]["delta"]["role"], "assistant");
    }

    #[test]
    fn anthropic_blocks_in_order() {
        let frames = anthropic(
            &answer(&["Vou ", "ver."], 1, Stop::ToolCalls),
            "m",
            &WireStyle::default(),
        );
        let names: Vec<&str> = frames
            .iter()
            .map(|f| f.text.lines().next().unwrap().trim_start_matches("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let joined: String = frames
            .iter()
            .map(data)
            .filter(|d| d["delta"]["type"] == "input_json_delta")
            .map(|d| d["delta"]["partial_json"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(joined, "{\"a\":\"olá\"}");
        assert_eq!(pieces("olá", 2), ["ol", "á"]);
    }
}
