//! Reading the Messages event stream (providers.md §5.2): text deltas go out as they
//! come; a `tool_use` block's `input_json_delta` pieces are joined and parsed at its
//! `content_block_stop`; `message_delta` says why it stopped, `message_stop` ends it; an
//! `error` event breaks it; `ping` and unknown events are skipped (SDK rule).

use std::collections::HashMap;

use serde_json::Value;

use crate::config::Secret;
use crate::providers::llm::http_stream::{early_end, stream_error, EventParser};
use crate::providers::llm::sse::SseEvent;
use crate::providers::llm::{ChatEvent, StopReason, ToolCall};
use crate::providers::ProviderError;

/// Most tool input text kept over all of an answer's tool calls.
const MAX_INPUT: usize = 1 << 20;

enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
    },
    /// `thinking` and whatever comes next: not part of the spoken answer.
    Other,
}

/// The [`EventParser`] of the Anthropic stream.
pub struct EventsParser {
    key: Option<Secret>,
    blocks: HashMap<u64, Block>,
    stop: Option<StopReason>,
    called: bool,
    answering: bool,
    input_size: usize,
}

impl EventsParser {
    pub fn new(key: Option<Secret>) -> Self {
        Self {
            key,
            blocks: HashMap::new(),
            stop: None,
            called: false,
            answering: false,
            input_size: 0,
        }
    }

    fn read(&mut self, kind: &str, value: &Value, out: &mut Vec<ChatEvent>) -> Result<(), String> {
        match kind {
            "error" => out.push(ChatEvent::Error(stream_error(
                "anthropic",
                value,
                self.key.as_ref(),
            ))),
            "content_block_start" => {
                let index = index(value)?;
                let block = &value["content_block"];
                let block = match block["type"].as_str() {
                    Some("text") => {
                        self.text(block["text"].as_str().unwrap_or(""), out);
                        Block::Text
                    }
                    Some("tool_use") => {
                        self.answering = true;
                        Block::Tool {
                            id: nonempty(&block["id"], "tool_use without an id")?,
                            name: nonempty(&block["name"], "tool_use without a name")?,
                            json: String::new(),
                        }
                    }
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let index = index(value)?;
                let delta = &value["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = delta["text"].as_str().ok_or("text_delta without text")?;
                        self.text(text, out);
                    }
                    Some("input_json_delta") => {
                        let piece = delta["partial_json"]
                            .as_str()
                            .ok_or("input_json_delta without partial_json")?;
                        self.answering = true;
                        self.input_size += piece.len();
                        if self.input_size > MAX_INPUT {
                            return Err(format!("tool input over {MAX_INPUT} bytes"));
                        }
                        match self.blocks.get_mut(&index) {
                            Some(Block::Tool { json, .. }) => json.push_str(piece),
                            _ => {
                                return Err(format!(
                                    "input_json_delta for block {index}, not a tool_use"
                                ))
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(Block::Tool { id, name, json }) = self.blocks.remove(&index(value)?) {
                    let arguments = if json.trim().is_empty() {
                        "{}".to_string()
                    } else {
                        match serde_json::from_str::<Value>(&json) {
                            Ok(Value::Object(_)) => json,
                            _ => {
                                return Err(format!(
                                    "the input of tool call {name} is not a JSON object"
                                ))
                            }
                        }
                    };
                    self.called = true;
                    out.push(ChatEvent::ToolCall(ToolCall {
                        id,
                        name,
                        arguments,
                    }));
                }
            }
            "message_delta" => {
                if let Some(reason) = value["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop_reason(reason));
                }
            }
            "message_stop" => {
                let stop = self.stop.take().unwrap_or(if self.called {
                    StopReason::ToolCalls
                } else {
                    StopReason::Done
                });
                out.push(ChatEvent::Done(stop));
            }
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, text: &str, out: &mut Vec<ChatEvent>) {
        if !text.is_empty() {
            self.answering = true;
            out.push(ChatEvent::Text(text.to_string()));
        }
    }
}

impl EventParser for EventsParser {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<ChatEvent>) {
        let data = event.data.trim();
        if data.is_empty() {
            return;
        }
        let result = match serde_json::from_str::<Value>(data) {
            Err(e) => Err(format!("event is not JSON ({e})")),
            Ok(value) => {
                // The SDK dispatches on the SSE event name; `type` serves when it is missing.
                let kind = match event.event.as_str() {
                    "" => value["type"].as_str().unwrap_or("").to_string(),
                    name => name.to_string(),
                };
                self.read(&kind, &value, out)
            }
        };
        if let Err(what) = result {
            out.push(ChatEvent::Error(ProviderError::Protocol(format!(
                "anthropic: {what}"
            ))));
        }
    }

    fn on_end(&mut self, out: &mut Vec<ChatEvent>) {
        // A stop reason came (only `message_stop` is missing): the answer is whole.
        match self.stop.take() {
            Some(stop) => out.push(ChatEvent::Done(stop)),
            None => out.push(early_end()),
        }
    }

    fn answering(&self) -> bool {
        self.answering
    }
}

fn index(value: &Value) -> Result<u64, String> {
    value["index"]
        .as_u64()
        .ok_or_else(|| "content block event without an index".to_string())
}

fn nonempty(value: &Value, what: &str) -> Result<String, String> {
    match value.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(what.to_string()),
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "stop_sequence" => StopReason::Done,
        "tool_use" => StopReason::ToolCalls,
        "max_tokens" => StopReason::Length,
        other => StopReason::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[(&str, &str)]) -> Vec<ChatEvent> {
        let mut p = EventsParser::new(None);
        let mut out = Vec::new();
        for (event, data) in events {
            p.on_event(
                SseEvent {
                    event: event.to_string(),
                    data: data.to_string(),
                },
                &mut out,
            );
        }
        out
    }

    #[test]
    fn text_and_a_tool_call_joined_from_pieces() {
        let out = run(&[
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"m","content":[],"usage":{"input_tokens":5}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ("ping", r#"{"type":"ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Vou ver."}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"lookup","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"pho"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ne\": \"11\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":1}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            ),
            ("brand_new_event", r#"{"type":"brand_new_event"}"#),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        assert_eq!(
            out,
            vec![
                ChatEvent::Text("Vou ver.".into()),
                ChatEvent::ToolCall(ToolCall {
                    id: "toolu_1".into(),
                    name: "lookup".into(),
                    arguments: "{\"phone\": \"11\"}".into(),
                }),
                ChatEvent::Done(StopReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn stop_reasons_map_and_a_missing_message_stop_is_forgiven() {
        for (reason, stop) in [
            ("end_turn", StopReason::Done),
            ("max_tokens", StopReason::Length),
            ("refusal", StopReason::Other("refusal".into())),
        ] {
            let delta =
                format!(r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}"}}}}"#);
            let mut p = EventsParser::new(None);
            let mut out = Vec::new();
            p.on_event(
                SseEvent {
                    event: String::new(),
                    data: delta,
                },
                &mut out,
            );
            p.on_end(&mut out);
            assert_eq!(out, vec![ChatEvent::Done(stop)]);
        }
        let mut p = EventsParser::new(None);
        let mut out = Vec::new();
        p.on_end(&mut out);
        assert_eq!(out, vec![early_end()]);
    }

    #[test]
    fn errors_and_broken_tool_input() {
        let out = run(&[(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )]);
        assert!(
            matches!(&out[..], [ChatEvent::Error(ProviderError::Unavailable(m))] if m.contains("overloaded_error"))
        );
        let start = r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}}"#;
        for broken in [
            vec![
                ("content_block_start", start),
                (
                    "content_block_delta",
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
                ),
                ("content_block_stop", r#"{"index":0}"#),
            ],
            vec![(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            )],
            vec![(
                "content_block_start",
                r#"{"index":0,"content_block":{"type":"tool_use","name":"n"}}"#,
            )],
            vec![(
                "content_block_delta",
                r#"{"delta":{"type":"text_delta","text":"x"}}"#,
            )],
            vec![("message_start", "{nope")],
        ] {
            let out = run(&broken);
            assert!(
                matches!(
                    out.last(),
                    Some(ChatEvent::Error(ProviderError::Protocol(_)))
                ),
                "{broken:?}: {out:?}"
            );
        }
    }
}
