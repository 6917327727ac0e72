//! One loaded voice: text → per-sentence ids → PCM16. Everything here blocks (espeak-ng,
//! ONNX Runtime); the stream runs it on tokio's blocking pool.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::espeak::Espeak;
use super::model::{to_pcm16, PiperModel, MAX_IDS};
use super::phonemize;
use super::voice::{PhonemeType, Voice};
use crate::providers::ProviderError;

/// Longest phoneme string synthesized at once: ids are about two per phoneme, so this
/// keeps a sentence without punctuation under [`MAX_IDS`]; longer ones are cut at spaces.
const MAX_PHONEMES: usize = MAX_IDS / 4;

pub struct Engine {
    pub voice: Voice,
    pub model: PiperModel,
    /// None for `phoneme_type: text` voices.
    pub espeak: Option<&'static Espeak>,
    /// noise_scale, length_scale, noise_w: the graph's `scales` order.
    pub scales: [f32; 3],
    pub sid: i64,
    /// Zero samples after each sentence.
    pub silence: usize,
    /// Phonemes already reported as missing from the voice (logged once each).
    pub reported: Mutex<HashSet<char>>,
    /// Sentences synthesized since load (metrics, tests).
    pub rendered: AtomicU64,
}

impl Engine {
    /// The ids of each sentence of `text`, in order (cheap: phonemization only).
    pub fn sentence_ids(&self, text: &str) -> Result<Vec<Vec<i64>>, ProviderError> {
        let sentences = phonemize::sentences(text, |clause| {
            match (self.espeak, self.voice.phoneme_type) {
                (Some(espeak), PhonemeType::Espeak) => {
                    espeak.phonemes(&self.voice.espeak_voice, clause.text)
                }
                _ => Ok(clause.words.to_string()),
            }
        })
        .map_err(|e| ProviderError::Unavailable(format!("phonemization failed: {e}")))?;
        let mut missing = Vec::new();
        let ids = sentences
            .iter()
            .flat_map(|sentence| chunks(sentence, MAX_PHONEMES))
            .map(|chunk| self.voice.ids.sentence_ids(chunk, &mut |p| missing.push(p)))
            .collect();
        if !missing.is_empty() {
            let mut reported = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
            for phoneme in missing {
                if reported.insert(phoneme) {
                    tracing::debug!(
                        phoneme = %phoneme.escape_unicode(),
                        "Piper voice has no id for this phoneme; skipped"
                    );
                }
            }
        }
        Ok(ids)
    }

    /// One sentence's audio, followed by the configured silence.
    pub fn render(&self, ids: &[i64]) -> Result<Vec<i16>, ProviderError> {
        let audio = self.model.infer(ids, self.scales, self.sid)?;
        let mut pcm = to_pcm16(&audio);
        pcm.resize(pcm.len() + self.silence, 0);
        self.rendered.fetch_add(1, Ordering::Relaxed);
        Ok(pcm)
    }
}

/// `sentence` cut at spaces into pieces of at most `max` codepoints (a word longer than
/// that is cut where it must).
pub fn chunks(sentence: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = sentence.trim();
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let cut = match rest[..limit].rfind(' ') {
            _ if rest[limit..].starts_with(' ') => limit,
            Some(space) if space > 0 => space,
            _ => limit,
        };
        out.push(rest[..cut].trim_end());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}
