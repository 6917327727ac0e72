//! Reading the chunk stream (providers.md §5.1): text deltas go out as they come; tool
//! calls arrive in fragments keyed by `index` (Ollama sends each whole) and go out whole
//! when the answer finishes; `[DONE]` or a `finish_reason` ends it; an `error` chunk breaks
//! it. Unknown keys (`x_groq`, `reasoning`, `usage`, …) are ignored.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::config::Secret;
use crate::providers::llm::http_stream::{early_end, stream_error, EventParser};
use crate::providers::llm::sse::SseEvent;
use crate::providers::llm::{ChatEvent, StopReason, ToolCall};
use crate::providers::ProviderError;

/// Most argument text kept over all of an answer's tool calls.
const MAX_ARGUMENTS: usize = 1 << 20;

#[derive(Deserialize)]
struct Chunk {
    /// `[]` on the usage chunk; `null` on some compatible servers.
    #[serde(default, deserialize_with = "null_as_empty")]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    /// The model's refusal, said instead of an answer.
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    /// A piece of the JSON text (a whole object from some servers).
    #[serde(default)]
    arguments: Option<Value>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Tool calls being put together from their fragments.
#[derive(Debug, Default)]
struct Joiner {
    calls: Vec<Pending>,
    size: usize,
}

#[derive(Debug)]
struct Pending {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

impl Joiner {
    fn add(&mut self, fragment: ToolCallDelta) -> Result<(), ProviderError> {
        let id = fragment.id.filter(|s| !s.is_empty());
        let mut slot = match fragment.index {
            Some(i) => self.calls.iter().rposition(|c| c.index == i),
            // No index: a fragment with an id starts a call, one without continues the last.
            None if id.is_some() => None,
            None => self.calls.len().checked_sub(1),
        };
        // Another id at a known index is another call (Ollama numbers each chunk's
        // calls from 0).
        if let (Some(s), Some(id)) = (slot, &id) {
            if !self.calls[s].id.is_empty() && self.calls[s].id != *id {
                slot = None;
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                let index = fragment.index.unwrap_or(self.calls.len() as u64);
                self.calls.push(Pending {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[slot];
        if let Some(id) = id {
            call.id = id;
        }
        let Some(function) = fragment.function else {
            return Ok(());
        };
        if let Some(name) = function.name.filter(|n| !n.is_empty()) {
            if call.name.is_empty() {
                call.name = name;
            }
        }
        let piece = match function.arguments {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
        };
        self.size += piece.len();
        if self.size > MAX_ARGUMENTS {
            return Err(ProviderError::Protocol(format!(
                "tool call arguments over {MAX_ARGUMENTS} bytes"
            )));
        }
        call.arguments.push_str(&piece);
        Ok(())
    }

    /// The calls, whole, in the order they started.
    fn take(&mut self) -> Result<Vec<ToolCall>, ProviderError> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .map(|c| {
                if c.name.is_empty() {
                    return Err(ProviderError::Protocol(format!(
                        "tool call {} has no function name",
                        c.index
                    )));
                }
                let arguments = if c.arguments.trim().is_empty() {
                    "{}".to_string()
                } else {
                    c.arguments
                };
                let id = if c.id.is_empty() {
                    format!("call_{}", c.index)
                } else {
                    c.id
                };
                Ok(ToolCall {
                    id,
                    name: c.name,
                    arguments,
                })
            })
            .collect()
    }
}

/// The [`EventParser`] of the OpenAI-compatible stream.
pub struct ChunkParser {
    provider: &'static str,
    key: Option<Secret>,
    calls: Joiner,
    answering: bool,
}

impl ChunkParser {
    pub fn new(provider: &'static str, key: Option<Secret>) -> Self {
        Self {
            provider,
            key,
            calls: Joiner::default(),
            answering: false,
        }
    }

    /// The answer ended (`finish_reason`, or `[DONE]` without one): the tool calls, then
    /// `Done`.
    fn finish(&mut self, reason: Option<&str>, out: &mut Vec<ChatEvent>) {
        let calls = match self.calls.take() {
            Ok(calls) => calls,
            Err(e) => return out.push(ChatEvent::Error(e)),
        };
        let called = !calls.is_empty();
        out.extend(calls.into_iter().map(ChatEvent::ToolCall));
        let stop = match reason {
            // Calls made under another reason still want their answers.
            None | Some("stop") if called => StopReason::ToolCalls,
            None | Some("stop") => StopReason::Done,
            Some("length") => StopReason::Length,
            Some("tool_calls" | "function_call") => StopReason::ToolCalls,
            Some(other) => StopReason::Other(other.to_string()),
        };
        out.push(ChatEvent::Done(stop));
    }

    fn protocol(&self, what: String, out: &mut Vec<ChatEvent>) {
        out.push(ChatEvent::Error(ProviderError::Protocol(format!(
            "{}: {what}",
            self.provider
        ))));
    }
}

impl EventParser for ChunkParser {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<ChatEvent>) {
        let data = event.data.trim();
        if data.starts_with("[DONE]") {
            return self.finish(None, out);
        }
        if data.is_empty() {
            return;
        }
        let value: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => return self.protocol(format!("chunk is not JSON ({e})"), out),
        };
        if event.event == "error" || value.get("error").is_some_and(|e| !e.is_null()) {
            let error = stream_error(self.provider, &value, self.key.as_ref());
            return out.push(ChatEvent::Error(error));
        }
        let chunk: Chunk = match serde_json::from_value(value) {
            Ok(c) => c,
            Err(e) => return self.protocol(format!("unexpected chunk ({e})"), out),
        };
        // One answer was asked for: other choices (n > 1) are not read.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                for text in [delta.content, delta.refusal].into_iter().flatten() {
                    if !text.is_empty() {
                        self.answering = true;
                        out.push(ChatEvent::Text(text));
                    }
                }
                for fragment in delta.tool_calls {
                    self.answering = true;
                    if let Err(e) = self.calls.add(fragment) {
                        return out.push(ChatEvent::Error(e));
                    }
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                return self.finish(Some(&reason), out);
            }
        }
    }

    fn on_end(&mut self, out: &mut Vec<ChatEvent>) {
        // Neither `[DONE]` nor a finish_reason: the answer may be cut anywhere.
        out.push(early_end());
    }

    fn answering(&self) -> bool {
        self.answering
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[&str]) -> Vec<ChatEvent> {
        let mut p = ChunkParser::new("openai_chat", Some(Secret::new("sk-hidden-key")));
        let mut out = Vec::new();
        for data in lines {
            p.on_event(
                SseEvent {
                    event: String::new(),
                    data: data.to_string(),
                },
                &mut out,
            );
        }
        out
    }

    fn call(id: &str, name: &str, args: &str) -> ChatEvent {
        ChatEvent::ToolCall(ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.into(),
        })
    }

    #[test]
    fn text_then_finish_then_usage_with_unknown_keys() {
        let out = run(&[
            r#"{"id":"c","x_groq":{"id":"q"},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Olá","reasoning":"hm"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
        ]);
        assert_eq!(
            out,
            vec![
                ChatEvent::Text("Olá".into()),
                ChatEvent::Done(StopReason::Length)
            ]
        );
        let usage = run(&[
            r#"{"choices":null,"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            "[DONE]",
        ]);
        assert_eq!(usage, vec![ChatEvent::Done(StopReason::Done)]);
    }

    #[test]
    fn interleaved_fragments_join_by_index() {
        let out = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"lookup","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"take_message","arguments":"{\"na"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"phone\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"me\":\"Ana\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"11\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ]);
        assert_eq!(
            out,
            vec![
                call("call_a", "lookup", r#"{"phone":"11"}"#),
                call("call_b", "take_message", r#"{"name":"Ana"}"#),
                ChatEvent::Done(StopReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn whole_calls_restarting_at_index_zero_and_object_arguments() {
        let out = run(&[
            r#"{"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"call_1","index":0,"type":"function","function":{"name":"a","arguments":"{\"x\":1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"call_2","index":0,"type":"function","function":{"name":"b","arguments":{"y":2}}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"name":"c"}}]}}]}"#,
            "[DONE]",
        ]);
        assert_eq!(
            out,
            vec![
                call("call_1", "a", r#"{"x":1}"#),
                call("call_2", "b", r#"{"y":2}"#),
                ChatEvent::Done(StopReason::ToolCalls),
            ],
            "a fragment without index or id continues the last call"
        );
        let no_id = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"name":"end_call"}}]},"finish_reason":"stop"}]}"#,
        ]);
        assert_eq!(
            no_id,
            vec![
                call("call_3", "end_call", "{}"),
                ChatEvent::Done(StopReason::ToolCalls)
            ]
        );
    }

    #[test]
    fn errors_bad_chunks_and_nameless_calls() {
        let out = run(&[
            r#"{"choices":[{"index":0,"delta":{"content":"a"}}]}"#,
            r#"{"error":{"message":"The server had an error (key sk-hidden-key)","type":"server_error"}}"#,
        ]);
        assert_eq!(out[0], ChatEvent::Text("a".into()));
        assert!(
            matches!(&out[1], ChatEvent::Error(ProviderError::Unavailable(m)) if m.contains("server_error") && !m.contains("sk-hidden")),
            "{out:?}"
        );
        for bad in [
            "{not json",
            r#"{"choices":[{"index":0,"delta":{"content":5}}]}"#,
            r#"{"choices":"x"}"#,
        ] {
            let out = run(&[bad]);
            assert!(
                matches!(&out[..], [ChatEvent::Error(ProviderError::Protocol(_))]),
                "{bad}: {out:?}"
            );
        }
        let nameless = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"arguments":"{}"}}]}}]}"#,
            "[DONE]",
        ]);
        assert!(matches!(
            &nameless[..],
            [ChatEvent::Error(ProviderError::Protocol(_))]
        ));
        let mut p = ChunkParser::new("groq", None);
        let mut out = Vec::new();
        p.on_end(&mut out);
        assert_eq!(
            out,
            vec![ChatEvent::Error(ProviderError::Unavailable(
                "stream ended early".into()
            ))]
        );
    }
}
