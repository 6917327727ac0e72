//! Server → client messages (`LiveServerMessage`, providers.md §2.4).
//!
//! Lenient: unknown keys (`usageMetadata`, `sessionResumptionUpdate`, …) are ignored,
//! nearly every field is optional, and the snake_case spellings are accepted too. A frame
//! that is not a JSON object, or whose known fields have the wrong type, is an error.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerMessage {
    #[serde(alias = "setup_complete")]
    pub setup_complete: Option<Value>,
    #[serde(alias = "server_content")]
    pub server_content: Option<ServerContent>,
    #[serde(alias = "tool_call")]
    pub tool_call: Option<ToolCall>,
    #[serde(alias = "tool_call_cancellation")]
    pub tool_call_cancellation: Option<ToolCallCancellation>,
    #[serde(alias = "go_away")]
    pub go_away: Option<GoAway>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerContent {
    #[serde(alias = "model_turn")]
    pub model_turn: Option<Content>,
    #[serde(alias = "turn_complete")]
    pub turn_complete: Option<bool>,
    pub interrupted: Option<bool>,
    #[serde(alias = "generation_complete")]
    pub generation_complete: Option<bool>,
    #[serde(alias = "input_transcription")]
    pub input_transcription: Option<Transcription>,
    #[serde(alias = "output_transcription")]
    pub output_transcription: Option<Transcription>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Content {
    pub parts: Option<Vec<Part>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Part {
    #[serde(alias = "inline_data")]
    pub inline_data: Option<Blob>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Blob {
    #[serde(alias = "mime_type")]
    pub mime_type: Option<String>,
    pub data: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Transcription {
    pub text: Option<String>,
    pub finished: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ToolCall {
    #[serde(alias = "function_calls")]
    pub function_calls: Option<Vec<FunctionCall>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FunctionCall {
    pub id: Option<String>,
    pub name: Option<String>,
    pub args: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ToolCallCancellation {
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GoAway {
    /// A proto Duration: `"10s"` in JSON; anything else is shown as it came.
    #[serde(alias = "time_left")]
    pub time_left: Option<Value>,
}

impl GoAway {
    pub fn time_left(&self) -> String {
        match &self.time_left {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "unknown".into(),
        }
    }
}

impl ServerMessage {
    /// Parses one frame's payload (text or binary).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        // serde would also read a struct from a JSON array: only objects are messages.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err("not a JSON object".into());
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl Blob {
    /// Whether this is PCM audio we can play, and at which rate (`None`: no rate given).
    pub fn pcm_rate(&self) -> Option<Option<u32>> {
        let mime = self.mime_type.as_deref().unwrap_or("audio/pcm");
        let mut fields = mime.split(';').map(str::trim);
        let kind = fields.next().unwrap_or("");
        if !kind.eq_ignore_ascii_case("audio/pcm") && !kind.eq_ignore_ascii_case("audio/l16") {
            return None;
        }
        let rate = fields
            .filter_map(|f| f.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("rate"))
            .map(|(_, v)| v.trim().parse::<u32>().unwrap_or(0));
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> ServerMessage {
        ServerMessage::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_the_reference_examples() {
        assert!(parse(r#"{"setupComplete":{}}"#).setup_complete.is_some());
        assert!(parse(r#"{"setup_complete":{"sessionId":"s1"}}"#)
            .setup_complete
            .is_some());
        let audio = parse(
            r#"{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate=24000","data":"AAA="}}]}}}"#,
        );
        let part = &audio
            .server_content
            .unwrap()
            .model_turn
            .unwrap()
            .parts
            .unwrap()[0];
        let blob = part.inline_data.as_ref().unwrap();
        assert_eq!(blob.data.as_deref(), Some("AAA="));
        assert_eq!(blob.pcm_rate(), Some(Some(24_000)));
        let sc = parse(
            r#"{"serverContent":{"interrupted":true},"usageMetadata":{"totalTokenCount":5}}"#,
        )
        .server_content
        .unwrap();
        assert_eq!(sc.interrupted, Some(true));
        let call = parse(
            r#"{"toolCall":{"functionCalls":[{"id":"fc_1","name":"lookup_customer","args":{"phone":"+5511999990000"}}]}}"#,
        )
        .tool_call
        .unwrap();
        let f = &call.function_calls.unwrap()[0];
        assert_eq!(f.id.as_deref(), Some("fc_1"));
        assert_eq!(f.args, Some(json!({"phone":"+5511999990000"})));
        let go = parse(r#"{"goAway":{"timeLeft":"10s"}}"#).go_away.unwrap();
        assert_eq!(go.time_left(), "10s");
        let c = parse(r#"{"toolCallCancellation":{"ids":["fc_1"]}}"#);
        assert_eq!(
            c.tool_call_cancellation.unwrap().ids,
            Some(vec!["fc_1".to_string()])
        );
    }

    #[test]
    fn snake_case_and_nulls_are_accepted() {
        let sc = parse(
            r#"{"server_content":{"model_turn":{"parts":[{"inline_data":{"mime_type":"audio/pcm","data":"AA=="}}]},"turn_complete":true,"output_transcription":{"text":"Olá","finished":null}}}"#,
        )
        .server_content
        .unwrap();
        assert_eq!(sc.turn_complete, Some(true));
        assert_eq!(
            sc.output_transcription.unwrap().text.as_deref(),
            Some("Olá")
        );
        let p = &sc.model_turn.unwrap().parts.unwrap()[0];
        assert_eq!(p.inline_data.as_ref().unwrap().pcm_rate(), Some(None));
        let empty = parse(r#"{"serverContent":{"modelTurn":null,"interrupted":null}}"#);
        assert_eq!(empty.server_content, Some(ServerContent::default()));
    }

    #[test]
    fn unknown_messages_are_empty_and_garbage_is_an_error() {
        assert_eq!(
            parse(r#"{"sessionResumptionUpdate":{"newHandle":"h","resumable":true}}"#),
            ServerMessage::default()
        );
        assert!(ServerMessage::parse(b"not json").is_err());
        assert!(ServerMessage::parse(b"[1,2]").is_err());
        assert!(ServerMessage::parse(b"").is_err());
        assert!(ServerMessage::parse(br#"{"serverContent":{"turnComplete":"yes"}}"#).is_err());
    }

    #[test]
    fn only_pcm_is_audio() {
        let blob = |m: &str| Blob {
            mime_type: Some(m.into()),
            data: None,
        };
        assert_eq!(blob("image/png").pcm_rate(), None);
        assert_eq!(blob("audio/pcm; rate=16000").pcm_rate(), Some(Some(16_000)));
        assert_eq!(blob("audio/pcm;rate=x").pcm_rate(), Some(Some(0)));
    }
}
