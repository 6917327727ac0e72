//! The server messages the fake sends (providers.md §4.1, §4.2), built from a scripted
//! transcript and a span of stream time. Words are spread evenly over their span.

use serde_json::{json, Value};

pub(crate) const MODEL_UUID: &str = "1abfe86b-e047-4eed-858a-35e5625b41ee";

/// A span of stream time, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Which kind of `Results` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finality {
    pub is_final: bool,
    pub speech_final: bool,
    pub from_finalize: bool,
}

impl Finality {
    pub const INTERIM: Self = Self {
        is_final: false,
        speech_final: false,
        from_finalize: false,
    };
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// `text` as the service shows it: as scripted when formatting is on, else lower case
/// without punctuation.
pub(crate) fn shown(text: &str, formatted: bool) -> String {
    if formatted {
        return text.to_string();
    }
    let words: Vec<String> = text.split_whitespace().map(bare_word).collect();
    words
        .into_iter()
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn bare_word(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric() || *c == '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The first `n` words of `text`.
pub(crate) fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `words[]` for `text` (as shown) over `span`.
pub(crate) fn words(text: &str, span: Span, speaker: Option<u32>) -> Vec<Value> {
    let list: Vec<&str> = text.split_whitespace().collect();
    let n = list.len().max(1) as u64;
    let length = span.end_ms.saturating_sub(span.start_ms);
    list.iter()
        .enumerate()
        .map(|(i, w)| {
            let i = i as u64;
            let start = span.start_ms + length * i / n;
            let end = span.start_ms + length * (i + 1) / n;
            let mut word = json!({"word": bare_word(w), "start": secs(start), "end": secs(end),
                "confidence": 0.98, "punctuated_word": w});
            if let (Some(s), Some(obj)) = (speaker, word.as_object_mut()) {
                obj.insert("speaker".into(), json!(s));
                obj.insert("speaker_confidence".into(), json!(0.9));
            }
            word
        })
        .collect()
}

pub(crate) fn results(text: &str, span: Span, kind: Finality, request_id: &str) -> String {
    let duration = span.end_ms.saturating_sub(span.start_ms);
    json!({
        "type": "Results",
        "channel_index": [0, 1],
        "duration": secs(duration),
        "start": secs(span.start_ms),
        "is_final": kind.is_final,
        "speech_final": kind.speech_final,
        "from_finalize": kind.from_finalize,
        "channel": {"alternatives": [{
            "transcript": text,
            "confidence": if text.is_empty() { 0.0 } else { 0.98 },
            "words": words(text, span, None),
        }]},
        "metadata": {
            "request_id": request_id,
            "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
            "model_uuid": MODEL_UUID,
        },
    })
    .to_string()
}

pub(crate) fn speech_started(at_ms: u64) -> String {
    json!({"type": "SpeechStarted", "channel": [0], "timestamp": secs(at_ms)}).to_string()
}

pub(crate) fn utterance_end(last_word_end_ms: u64) -> String {
    json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": secs(last_word_end_ms)})
        .to_string()
}

pub(crate) fn metadata_value(request_id: &str, duration_ms: u64) -> Value {
    json!({
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
        "created": "2026-01-01T00:00:00.000Z",
        "duration": secs(duration_ms),
        "channels": 1,
        "models": [MODEL_UUID],
        "model_info": {MODEL_UUID: {"name": "general-nova-3", "version": "fake", "arch": "nova-3"}},
    })
}

/// The stream's closing `Metadata`.
pub(crate) fn metadata(request_id: &str, duration_ms: u64) -> String {
    let mut m = metadata_value(request_id, duration_ms);
    if let Some(obj) = m.as_object_mut() {
        obj.insert("type".into(), json!("Metadata"));
    }
    m.to_string()
}

/// A mid-stream error (shape unconfirmed: what sayna reads).
pub(crate) fn error(variant: &str, description: &str) -> String {
    json!({"type": "Error", "variant": variant, "description": description,
        "message": "fault injection"})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_words() {
        assert_eq!(shown("Olá, bom dia!", true), "Olá, bom dia!");
        assert_eq!(
            shown("Olá, bom dia! Segunda-feira?", false),
            "olá bom dia segunda-feira"
        );
        assert_eq!(first_words("a b c", 2), "a b");
        let span = Span {
            start_ms: 1000,
            end_ms: 2000,
        };
        let w = words("Olá, mundo", span, None);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0]["word"], "olá");
        assert_eq!(w[0]["punctuated_word"], "Olá,");
        assert_eq!(
            (w[1]["start"].as_f64(), w[1]["end"].as_f64()),
            (Some(1.5), Some(2.0))
        );
    }

    #[test]
    fn results_have_the_documented_shape() {
        let span = Span {
            start_ms: 500,
            end_ms: 1500,
        };
        let kind = Finality {
            is_final: true,
            speech_final: true,
            from_finalize: false,
        };
        let v: Value = serde_json::from_str(&results("bom dia", span, kind, "r1")).unwrap();
        assert_eq!(v["type"], "Results");
        assert_eq!(
            (v["start"].as_f64(), v["duration"].as_f64()),
            (Some(0.5), Some(1.0))
        );
        assert_eq!(v["channel"]["alternatives"][0]["transcript"], "bom dia");
        assert_eq!(v["speech_final"], true);
        let m: Value = serde_json::from_str(&metadata("r1", 2500)).unwrap();
        assert_eq!(
            (m["type"].as_str(), m["duration"].as_f64()),
            (Some("Metadata"), Some(2.5))
        );
    }
}
