//! The timed answers of `POST /v1/audio/transcriptions` (providers.md §6.1):
//! `verbose_json` (Whisper: segments and/or words) and `diarized_json`
//! (`gpt-4o-transcribe-diarize`: segments with speaker labels), both built from the
//! segments an upload "says": a scripted recording, or one line spanning the upload.

use serde_json::{json, Value};

/// One stretch of a scripted recording, in recording time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedSegment {
    /// The diarized speaker label (OpenAI labels unknown speakers `A`, `B`, …).
    pub speaker: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

impl ScriptedSegment {
    pub fn new(speaker: &str, start_ms: u64, end_ms: u64, text: &str) -> Self {
        Self {
            speaker: speaker.to_string(),
            start_ms,
            end_ms,
            text: text.to_string(),
        }
    }
}

/// Why a scripted recording cannot be used.
pub(crate) fn check_script(script: &[ScriptedSegment]) -> anyhow::Result<()> {
    for (i, s) in script.iter().enumerate() {
        if s.text.trim().is_empty() || s.speaker.trim().is_empty() || s.end_ms <= s.start_ms {
            anyhow::bail!("scripted segment {i} needs a speaker, text and end_ms after start_ms");
        }
    }
    Ok(())
}

/// Which timings a `verbose_json` answer carries (`timestamp_granularities[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Granularities {
    pub segment: bool,
    pub word: bool,
}

impl Granularities {
    /// None asked means segments only, as the real service does.
    pub fn from_asked(asked: &[String]) -> Self {
        let word = asked.iter().any(|g| g == "word");
        let segment = asked.iter().any(|g| g == "segment") || !word;
        Self { segment, word }
    }
}

/// The whole transcript: the segments' texts joined by a space.
pub(crate) fn full_text(segments: &[ScriptedSegment]) -> String {
    let texts: Vec<&str> = segments.iter().map(|s| s.text.trim()).collect();
    texts.join(" ")
}

/// Whisper's `verbose_json`.
pub(crate) fn verbose_json(
    segments: &[ScriptedSegment],
    language: Option<&str>,
    duration_ms: u64,
    granularities: Granularities,
    usage: Value,
) -> Value {
    let mut body = json!({
        "language": language_name(language),
        "duration": seconds(duration_ms),
        "text": full_text(segments),
        "usage": usage,
    });
    if granularities.segment {
        let mut next_token = 50_365u64;
        let rows: Vec<Value> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let count = s.text.split_whitespace().count() as u64;
                let tokens: Vec<u64> = (next_token..next_token + count).collect();
                next_token += count;
                json!({"id": i, "seek": 0, "start": seconds(s.start_ms), "end": seconds(s.end_ms),
                    "text": format!(" {}", s.text.trim()), "tokens": tokens, "temperature": 0.0,
                    "avg_logprob": -0.21, "compression_ratio": 1.0, "no_speech_prob": 0.01})
            })
            .collect();
        body["segments"] = Value::Array(rows);
    }
    if granularities.word {
        body["words"] = Value::Array(words(segments));
    }
    body
}

/// `gpt-4o-transcribe-diarize`'s `diarized_json`.
pub(crate) fn diarized_json(segments: &[ScriptedSegment], duration_ms: u64, usage: Value) -> Value {
    let rows: Vec<Value> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"type": "transcript.text.segment", "id": format!("seg_{i}"),
                "speaker": s.speaker, "start": seconds(s.start_ms), "end": seconds(s.end_ms),
                "text": s.text.trim()})
        })
        .collect();
    json!({"task": "transcribe", "duration": seconds(duration_ms), "text": full_text(segments),
        "segments": rows, "usage": usage})
}

/// Each segment's words without punctuation, sharing its span evenly.
fn words(segments: &[ScriptedSegment]) -> Vec<Value> {
    let mut out = Vec::new();
    for s in segments {
        let bare: Vec<&str> = s
            .text
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .collect();
        let each = (s.end_ms - s.start_ms) / (bare.len() as u64).max(1);
        for (i, word) in bare.iter().enumerate() {
            let start = s.start_ms + each * i as u64;
            let end = if i + 1 == bare.len() {
                s.end_ms
            } else {
                start + each
            };
            out.push(json!({"word": word, "start": seconds(start), "end": seconds(end)}));
        }
    }
    out
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Whisper names the language in English ([UNCONFIRMED] in §6.1); the fake assumes
/// Portuguese when none was sent, as its scripts are.
fn language_name(iso: Option<&str>) -> String {
    match iso.unwrap_or("pt") {
        "pt" => "portuguese".into(),
        "en" => "english".into(),
        "es" => "spanish".into(),
        "fr" => "french".into(),
        "de" => "german".into(),
        "it" => "italian".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Vec<ScriptedSegment> {
        vec![
            ScriptedSegment::new("A", 0, 1200, "Olá, bom dia."),
            ScriptedSegment::new("B", 1500, 3000, "Quero marcar uma consulta."),
        ]
    }

    #[test]
    fn granularities_default_to_segments() {
        let g = |asked: &[&str]| {
            let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
            let g = Granularities::from_asked(&asked);
            (g.segment, g.word)
        };
        assert_eq!(g(&[]), (true, false));
        assert_eq!(g(&["word"]), (false, true));
        assert_eq!(g(&["word", "segment"]), (true, true));
    }

    #[test]
    fn words_share_their_segment_span_without_punctuation() {
        let w = words(&call());
        let names: Vec<&str> = w.iter().filter_map(|w| w["word"].as_str()).collect();
        assert_eq!(
            names,
            ["Olá", "bom", "dia", "Quero", "marcar", "uma", "consulta"]
        );
        assert_eq!(
            (w[0]["start"].as_f64(), w[0]["end"].as_f64()),
            (Some(0.0), Some(0.4))
        );
        assert_eq!(w[2]["end"].as_f64(), Some(1.2));
        assert_eq!(w[3]["start"].as_f64(), Some(1.5));
        assert_eq!(w[6]["end"].as_f64(), Some(3.0));
    }

    #[test]
    fn a_script_needs_text_a_speaker_and_a_span() {
        assert!(check_script(&call()).is_ok());
        assert!(check_script(&[ScriptedSegment::new("A", 10, 10, "oi")]).is_err());
        assert!(check_script(&[ScriptedSegment::new("A", 0, 10, " ")]).is_err());
        assert!(check_script(&[ScriptedSegment::new("", 0, 10, "oi")]).is_err());
    }
}
