//! The pre-recorded response body (providers.md §4.2): `metadata`, one
//! `results.channels[]` entry per channel with the best alternative's transcript, words
//! and (with `smart_format` or `paragraphs`) paragraphs, and `results.utterances[]` with
//! `utterances=true`. Speakers appear only with diarization, as Deepgram does.

use serde_json::{json, Map, Value};

use super::messages::{self, Span};
use super::prerecorded::BatchOptions;

/// One utterance as the answer shows it: text already formatted (or not).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Said {
    pub channel: u32,
    pub speaker: u32,
    pub span: Span,
    pub text: String,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// `said` sorted by start, every channel below `channels`.
pub(crate) fn build(
    request_id: &str,
    duration_ms: u64,
    channels: u32,
    said: &[Said],
    opts: &BatchOptions,
) -> Value {
    let speaker = |s: &Said| opts.diarize.then_some(s.speaker);
    let channel_list: Vec<Value> = (0..channels)
        .map(|c| {
            let mine: Vec<&Said> = said.iter().filter(|s| s.channel == c).collect();
            let transcript = mine
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let words: Vec<Value> = mine
                .iter()
                .flat_map(|s| messages::words(&s.text, s.span, speaker(s)))
                .collect();
            let mut best = Map::new();
            best.insert("transcript".into(), json!(transcript));
            let confidence = if transcript.is_empty() { 0.0 } else { 0.97 };
            best.insert("confidence".into(), json!(confidence));
            best.insert("words".into(), json!(words));
            if opts.paragraphs || opts.listen.formatted {
                best.insert("paragraphs".into(), paragraphs(&mine, opts.diarize));
            }
            json!({"alternatives": [best]})
        })
        .collect();
    let mut results = Map::new();
    results.insert("channels".into(), json!(channel_list));
    if opts.listen.utterances {
        let list: Vec<Value> = said
            .iter()
            .map(|s| {
                let mut u = json!({"start": secs(s.span.start_ms), "end": secs(s.span.end_ms),
                    "confidence": 0.95, "channel": s.channel, "transcript": s.text,
                    "words": messages::words(&s.text, s.span, speaker(s)),
                    "id": uuid::Uuid::new_v4().to_string()});
                if let (Some(n), Some(obj)) = (speaker(s), u.as_object_mut()) {
                    obj.insert("speaker".into(), json!(n));
                }
                u
            })
            .collect();
        results.insert("utterances".into(), json!(list));
    }
    let mut metadata = messages::metadata_value(request_id, duration_ms);
    if let Some(obj) = metadata.as_object_mut() {
        obj.insert("channels".into(), json!(channels));
    }
    json!({"metadata": metadata, "results": results})
}

/// One paragraph (of one sentence) per utterance; with diarization the transcript names
/// the speakers as Deepgram's does ("Speaker 0: …").
fn paragraphs(said: &[&Said], diarize: bool) -> Value {
    let mut transcript = String::new();
    let list: Vec<Value> = said
        .iter()
        .map(|s| {
            transcript.push('\n');
            if diarize {
                transcript.push_str(&format!("Speaker {}: ", s.speaker));
            }
            transcript.push_str(&s.text);
            let mut p = json!({
                "sentences": [{"text": s.text, "start": secs(s.span.start_ms),
                    "end": secs(s.span.end_ms)}],
                "num_words": s.text.split_whitespace().count(),
                "start": secs(s.span.start_ms),
                "end": secs(s.span.end_ms),
            });
            if let (true, Some(obj)) = (diarize, p.as_object_mut()) {
                obj.insert("speaker".into(), json!(s.speaker));
            }
            p
        })
        .collect();
    json!({"transcript": transcript, "paragraphs": list})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_deepgram::params::ListenParams;

    fn opts(diarize: bool, utterances: bool, formatted: bool) -> BatchOptions {
        BatchOptions {
            listen: ListenParams {
                language: "pt-BR".into(),
                sample_rate: 0,
                interim_results: false,
                endpointing_ms: None,
                utterance_end_ms: None,
                vad_events: false,
                formatted,
                utterances,
            },
            diarize,
            multichannel: false,
            paragraphs: false,
        }
    }

    fn said(channel: u32, speaker: u32, start_ms: u64, end_ms: u64, text: &str) -> Said {
        Said {
            channel,
            speaker,
            span: Span { start_ms, end_ms },
            text: text.into(),
        }
    }

    #[test]
    fn diarized_utterances_and_paragraphs() {
        let list = [
            said(0, 0, 400, 1200, "Olá, bom dia."),
            said(0, 1, 1500, 2000, "Oi."),
        ];
        let body = build("r", 3000, 1, &list, &opts(true, true, true));
        assert_eq!(body["metadata"]["duration"].as_f64(), Some(3.0));
        assert_eq!(body["metadata"]["channels"], 1);
        let best = &body["results"]["channels"][0]["alternatives"][0];
        assert_eq!(best["transcript"], "Olá, bom dia. Oi.");
        assert_eq!(best["words"][3]["speaker"], 1);
        assert_eq!(best["words"][0]["punctuated_word"], "Olá,");
        assert_eq!(
            best["paragraphs"]["transcript"],
            "\nSpeaker 0: Olá, bom dia.\nSpeaker 1: Oi."
        );
        assert_eq!(best["paragraphs"]["paragraphs"][1]["speaker"], 1);
        let u = &body["results"]["utterances"][1];
        assert_eq!(
            (u["speaker"].as_u64(), u["channel"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(
            (u["start"].as_f64(), u["end"].as_f64()),
            (Some(1.5), Some(2.0))
        );
    }

    #[test]
    fn no_speakers_without_diarization_nor_utterances_unless_asked() {
        let list = [said(0, 1, 0, 500, "oi")];
        let body = build("r", 500, 1, &list, &opts(false, false, false));
        let best = &body["results"]["channels"][0]["alternatives"][0];
        assert!(best["words"][0].get("speaker").is_none());
        assert!(best.get("paragraphs").is_none());
        assert!(body["results"].get("utterances").is_none());
        let body = build("r", 500, 1, &list, &opts(false, true, false));
        assert!(body["results"]["utterances"][0].get("speaker").is_none());
        let body = build("r", 0, 2, &[], &opts(true, true, false));
        assert_eq!(
            body["results"]["channels"][1]["alternatives"][0]["transcript"],
            ""
        );
        assert_eq!(body["metadata"]["channels"], 2);
    }
}
