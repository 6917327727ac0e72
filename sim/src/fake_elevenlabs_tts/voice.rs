//! What the fake says for a text: a cheap voiced tone whose length follows the text (the
//! default: free to make, exact lengths for tests and load), or espeak-ng pt-BR speech
//! (realistic; one process per new text, then cached). Then the audio in the output
//! format, cut into `audio` messages with their relative alignment.

use std::f64::consts::TAU;
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use super::format::OutputFormat;
use crate::speech;

/// How the fake voices a text.
#[derive(Debug, Clone, PartialEq)]
pub enum Voice {
    /// A voiced tone (140 Hz and two harmonics, syllable-like loudness), `ms_per_char`
    /// per character of the trimmed text.
    Tone { ms_per_char: u32 },
    /// espeak-ng pt-BR; blocking to render, so the fake renders it off the runtime.
    Espeak,
}

impl Default for Voice {
    fn default() -> Self {
        Self::Tone { ms_per_char: 60 }
    }
}

impl Voice {
    /// `text` (trimmed) spoken at `rate`. Blocking for [`Voice::Espeak`].
    pub fn render(&self, text: &str, rate: u32) -> anyhow::Result<Arc<Vec<i16>>> {
        let text = text.trim();
        match self {
            Self::Tone { ms_per_char } => Ok(Arc::new(tone(text, *ms_per_char, rate))),
            Self::Espeak => speech::synthesize(text, speech::PT_BR, rate),
        }
    }
}

/// Samples of the tone for `text`: `ms_per_char` per character, faded in and out.
fn tone(text: &str, ms_per_char: u32, rate: u32) -> Vec<i16> {
    let chars = text.chars().count() as u64;
    let len = (chars * u64::from(ms_per_char) * u64::from(rate) / 1000) as usize;
    let rate_f = f64::from(rate.max(1));
    let fade = (rate as usize / 200).max(1); // 5 ms
    (0..len)
        .map(|i| {
            let t = i as f64 / rate_f;
            let voiced = (TAU * 140.0 * t).sin()
                + 0.5 * (TAU * 280.0 * t).sin()
                + 0.25 * (TAU * 420.0 * t).sin();
            let syllables = 0.35 + 0.65 * (0.5 - 0.5 * (TAU * 4.0 * t).cos());
            let edge = (i.min(len - 1 - i) as f64 / fade as f64).min(1.0);
            (9000.0 / 1.75 * voiced * syllables * edge) as i16
        })
        .collect()
}

/// One `audio` message, ready to send.
pub(crate) struct AudioMessage {
    pub json: String,
    pub bytes: u64,
}

/// How a segment is cut into messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cutting {
    pub chunk_ms: u32,
    /// Cut PCM in the middle of a sample (every boundary at an odd byte).
    pub odd: bool,
    pub alignment: bool,
}

/// `samples` of `text` in `format`, cut into `audio` messages.
pub(crate) fn messages(
    text: &str,
    samples: &[i16],
    format: OutputFormat,
    cut: Cutting,
) -> Vec<AudioMessage> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = format.encoding().encode(samples);
    let per_ms = format.bytes_per_ms();
    let per = ((f64::from(cut.chunk_ms.max(1)) * per_ms) as usize).max(2);
    let first = if cut.odd && matches!(format, OutputFormat::Pcm(_)) {
        per + 1
    } else {
        per
    };
    let total_ms = bytes.len() as f64 / per_ms;
    let chars: Vec<char> = text.trim().chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let size = if at == 0 { first } else { per };
        let end = (at + size).min(bytes.len());
        let mut msg = json!({"audio": b64.encode(&bytes[at..end]), "isFinal": null});
        if cut.alignment {
            let a = alignment(&chars, total_ms, at as f64 / per_ms, end as f64 / per_ms);
            msg["alignment"] = a.clone();
            msg["normalizedAlignment"] = a;
        }
        out.push(AudioMessage {
            json: msg.to_string(),
            bytes: (end - at) as u64,
        });
        at = end;
    }
    out
}

/// The characters starting in `[from, to)` ms, even spacing over `total` ms, times
/// relative to `from` (as the service sends them: relative to the chunk).
fn alignment(chars: &[char], total: f64, from: f64, to: f64) -> Value {
    let n = chars.len().max(1) as f64;
    let each = total / n;
    let (mut c, mut starts, mut durations) = (Vec::new(), Vec::new(), Vec::new());
    for (i, ch) in chars.iter().enumerate() {
        let start = i as f64 * each;
        if start >= from && start < to {
            c.push(ch.to_string());
            starts.push((start - from).round() as u64);
            durations.push(each.round() as u64);
        }
    }
    json!({"chars": c, "charStartTimesMs": starts, "charDurationsMs": durations})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_common::encoding::Encoding;

    fn decode(msgs: &[AudioMessage]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        msgs.iter()
            .flat_map(|m| {
                let v: Value = serde_json::from_str(&m.json).unwrap();
                b64.decode(v["audio"].as_str().unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn the_tone_lasts_as_long_as_the_text_and_is_loud() {
        let v = Voice::default();
        let s = v.render("  Olá, tudo bem? ", 16_000).unwrap();
        assert_eq!(s.len(), 14 * 60 * 16);
        assert!(voice_core::audio::pcm::rms(&s) > 1500.0);
        assert_eq!(s, v.render("Olá, tudo bem?", 16_000).unwrap());
        assert!(v.render(" ", 16_000).unwrap().is_empty());
    }

    #[test]
    fn messages_cover_the_audio_with_odd_cuts_when_asked() {
        let samples = tone("abcdefghij", 60, 16_000); // 600 ms
        let f = OutputFormat::Pcm(16_000);
        let plain = Cutting {
            chunk_ms: 100,
            odd: false,
            alignment: true,
        };
        let msgs = messages("abcdefghij", &samples, f, plain);
        assert_eq!(
            msgs.iter().map(|m| m.bytes).collect::<Vec<_>>(),
            vec![3200; 6]
        );
        assert_eq!(decode(&msgs), Encoding::Pcm16.encode(&samples));
        let v: Value = serde_json::from_str(&msgs[1].json).unwrap();
        assert_eq!(v["alignment"]["chars"], json!(["c", "d"]));
        assert_eq!(v["alignment"]["charStartTimesMs"], json!([20, 80]));
        assert_eq!(v["normalizedAlignment"], v["alignment"]);
        assert!(v["isFinal"].is_null());
        let odd = Cutting {
            odd: true,
            alignment: false,
            ..plain
        };
        let msgs = messages("abcdefghij", &samples, f, odd);
        assert_eq!(msgs[0].bytes, 3201);
        assert!(msgs[..msgs.len() - 1]
            .iter()
            .skip(1)
            .all(|m| m.bytes == 3200));
        assert_eq!(decode(&msgs), Encoding::Pcm16.encode(&samples));
        assert!(!msgs[0].json.contains("alignment"));
        let ulaw = messages("abcdefghij", &samples, OutputFormat::Ulaw8k, odd);
        assert_eq!(
            ulaw[0].bytes, 800,
            "100 ms of μ-law; no odd cut for 1-byte samples"
        );
    }
}
