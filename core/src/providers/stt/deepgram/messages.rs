//! Deepgram live messages (providers.md §4.1): the three control messages we send as text
//! frames, and the server messages we read. Parsing is lenient (unknown fields and types
//! are skipped, as the SDKs do); only what the transcript needs is kept.

use serde::Deserialize;

pub const KEEP_ALIVE: &str = r#"{"type":"KeepAlive"}"#;
pub const FINALIZE: &str = r#"{"type":"Finalize"}"#;
pub const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;

/// A server message, by its `type`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ServerMessage {
    Results(Results),
    SpeechStarted {},
    UtteranceEnd {},
    Metadata {},
    /// Shape unconfirmed (sayna reads `description`, `message`, `variant`).
    #[serde(alias = "error")]
    Error(ErrorMessage),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
pub struct Results {
    #[serde(default)]
    pub is_final: bool,
    #[serde(default)]
    pub speech_final: bool,
    #[serde(default)]
    pub from_finalize: bool,
    /// Stream time (s) of the span this result covers.
    #[serde(default)]
    pub start: f64,
    #[serde(default)]
    pub duration: f64,
    pub channel: Channel,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
pub struct Channel {
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
pub struct Alternative {
    #[serde(default)]
    pub transcript: String,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
pub struct ErrorMessage {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Results {
    /// The best alternative's text, trimmed ("" when there is none).
    pub fn transcript(&self) -> &str {
        self.channel
            .alternatives
            .first()
            .map_or("", |a| a.transcript.trim())
    }

    /// End of the span in stream seconds.
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }
}

impl ErrorMessage {
    /// What the server said, shortened for a log line.
    pub fn summary(&self) -> String {
        let parts: Vec<&str> = [&self.variant, &self.description, &self.message]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .filter(|p| !p.is_empty())
            .collect();
        let text = if parts.is_empty() {
            "no description".to_string()
        } else {
            parts.join(": ")
        };
        text.chars().take(200).collect()
    }
}

pub fn parse(text: &str) -> Result<ServerMessage, String> {
    serde_json::from_str(text).map_err(|e| format!("unreadable Deepgram message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shapes_and_skips_the_rest() {
        let results = r#"{"type":"Results","channel_index":[0,1],"duration":1.98,"start":5.99,
            "is_final":true,"speech_final":true,"from_finalize":false,
            "channel":{"alternatives":[{"transcript":" bom dia ","confidence":0.98,"words":[]}]},
            "metadata":{"request_id":"r"}}"#;
        let ServerMessage::Results(r) = parse(results).unwrap() else {
            panic!("not results");
        };
        assert_eq!(r.transcript(), "bom dia");
        assert!(r.is_final && r.speech_final && !r.from_finalize);
        assert!((r.end() - 7.97).abs() < 1e-9);
        let speech = r#"{"type":"SpeechStarted","channel":[0],"timestamp":5.91}"#;
        assert_eq!(parse(speech).unwrap(), ServerMessage::SpeechStarted {});
        let end = r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":7.84}"#;
        assert_eq!(parse(end).unwrap(), ServerMessage::UtteranceEnd {});
        assert_eq!(
            parse(r#"{"type":"Metadata","request_id":"x","duration":1.0}"#).unwrap(),
            ServerMessage::Metadata {}
        );
        assert_eq!(
            parse(r#"{"type":"NewThing","x":1}"#).unwrap(),
            ServerMessage::Other
        );
        let no_alternatives = r#"{"type":"Results","channel":{"alternatives":[]}}"#;
        let ServerMessage::Results(r) = parse(no_alternatives).unwrap() else {
            panic!("not results");
        };
        assert_eq!(r.transcript(), "");
    }

    #[test]
    fn errors_and_garbage() {
        let err =
            r#"{"type":"Error","description":"bad audio","message":"x","variant":"DATA-0000"}"#;
        let ServerMessage::Error(e) = parse(err).unwrap() else {
            panic!("not an error");
        };
        assert_eq!(e.summary(), "DATA-0000: bad audio: x");
        let ServerMessage::Error(e) = parse(r#"{"type":"Error"}"#).unwrap() else {
            panic!("not an error");
        };
        assert_eq!(e.summary(), "no description");
        assert!(parse("not json").is_err());
        assert!(
            parse(r#"{"type":"Results"}"#).is_err(),
            "a result needs its channel"
        );
        assert!(parse(r#"{"no_type":1}"#).is_err());
    }
}
