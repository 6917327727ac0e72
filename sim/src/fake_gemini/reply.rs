//! The agent's spoken reply, rendered once per fake and shared by every session: base64
//! chunks ready to send, plus the transcript pieces that go with them.

use std::time::Duration;

use base64::Engine;
use voice_core::audio::pcm;

use crate::speech;

/// Gemini's output rate.
pub(crate) const OUTPUT_RATE: u32 = 24_000;

pub(crate) struct RenderedReply {
    /// Base64 of each chunk of PCM16 24 kHz.
    pub chunks: Vec<String>,
    /// Output transcription sent after each chunk; concatenated they give the reply text.
    pub transcript_pieces: Vec<String>,
    /// How long the reply lasts when played.
    pub duration: Duration,
}

impl RenderedReply {
    /// Speaks `text` (espeak-ng pt-BR) at 24 kHz; blocking, call it off the runtime.
    pub fn render(text: &str, chunk_ms: u32) -> anyhow::Result<Self> {
        let audio = speech::synthesize(text, speech::PT_BR, OUTPUT_RATE)?;
        Ok(Self::from_samples(text, &audio, chunk_ms))
    }

    fn from_samples(text: &str, samples: &[i16], chunk_ms: u32) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        let per_chunk = (OUTPUT_RATE as usize / 1000 * chunk_ms.max(1) as usize).max(1);
        let chunks: Vec<String> = samples
            .chunks(per_chunk)
            .map(|c| b64.encode(pcm::to_le_bytes(c)))
            .collect();
        let duration = Duration::from_micros(samples.len() as u64 * 1_000_000 / 24_000);
        Self {
            transcript_pieces: split_words(text, chunks.len()),
            chunks,
            duration,
        }
    }
}

/// `text` cut at word boundaries into `n` pieces (some may be empty).
pub(crate) fn split_words(text: &str, n: usize) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let n = n.max(1);
    (0..n)
        .map(|i| words[i * words.len() / n..(i + 1) * words.len() / n].concat())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rebuild_the_text() {
        let t = "Claro, posso ajudar com isso.";
        for n in [1, 2, 3, 10] {
            let p = split_words(t, n);
            assert_eq!(p.len(), n);
            assert_eq!(p.concat(), t);
        }
    }

    #[test]
    fn chunks_cover_the_audio() {
        let r = RenderedReply::from_samples("a b", &[0i16; 5000], 100);
        assert_eq!(r.chunks.len(), 3);
        assert_eq!(r.transcript_pieces.concat(), "a b");
        assert_eq!(r.duration, Duration::from_micros(5000 * 1_000_000 / 24_000));
        let b64 = base64::engine::general_purpose::STANDARD;
        let last = b64.decode(&r.chunks[2]).unwrap();
        assert_eq!(last.len(), (5000 - 4800) * 2);
    }
}
