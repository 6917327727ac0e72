//! What providers answer, made safe: times finite and ordered, empty text dropped, the
//! whole transcript assembled.

use crate::calls::model::{Transcription, Utterance, Word};

/// `(start, end)` finite, not negative and `end >= start`; `None` when nothing usable.
pub fn span(start: f64, end: f64) -> Option<(f64, f64)> {
    let start = if start.is_finite() {
        start.max(0.0)
    } else {
        return None;
    };
    let end = if end.is_finite() { end.max(0.0) } else { start };
    Some((start, end.max(start)))
}

pub fn word(
    word: &str,
    start: f64,
    end: f64,
    speaker: Option<u32>,
    confidence: Option<f64>,
) -> Option<Word> {
    let text = word.trim();
    if text.is_empty() {
        return None;
    }
    let (start, end) = span(start, end)?;
    Some(Word {
        word: text.to_string(),
        start,
        end,
        speaker,
        confidence: confidence.filter(|c| c.is_finite()),
    })
}

pub fn utterance(speaker: u32, start: f64, end: f64, text: &str) -> Option<Utterance> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (start, end) = span(start, end)?;
    Some(Utterance {
        speaker,
        start,
        end,
        text: text.to_string(),
    })
}

/// Sorted by time (stable: the provider's order breaks ties); `text` is the utterances
/// one per line, so a reader (and the LLM) sees the turns.
pub fn transcription(
    language: &str,
    provider: &str,
    mut words: Vec<Word>,
    mut utterances: Vec<Utterance>,
) -> Transcription {
    utterances.sort_by(|a, b| a.start.total_cmp(&b.start));
    words.sort_by(|a, b| a.start.total_cmp(&b.start));
    let text = utterances
        .iter()
        .map(|u| u.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    Transcription {
        language: language.to_string(),
        provider: provider.to_string(),
        text,
        words,
        utterances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_times_are_fixed_or_dropped() {
        assert_eq!(span(f64::NAN, 1.0), None);
        assert_eq!(span(-1.0, 2.0), Some((0.0, 2.0)));
        assert_eq!(span(3.0, 1.0), Some((3.0, 3.0)));
        assert_eq!(span(1.0, f64::INFINITY), Some((1.0, 1.0)));
        assert!(utterance(0, 0.0, 1.0, "  ").is_none());
        let t = transcription(
            "pt-BR",
            "x",
            vec![],
            vec![
                utterance(1, 2.0, 3.0, "b").unwrap(),
                utterance(0, 0.0, 1.0, "a").unwrap(),
            ],
        );
        assert_eq!(t.text, "a\nb");
    }
}
