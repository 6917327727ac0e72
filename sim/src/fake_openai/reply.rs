//! The agent's spoken reply, rendered once per format and shared by every session:
//! base64 deltas ready to send, plus transcript pieces to go with them.

use std::sync::Arc;

use base64::Engine;
use voice_core::audio::{g711, pcm};

use super::session_config::Format;
use crate::speech;

pub(crate) struct RenderedReply {
    pub transcript: String,
    /// Base64 audio of each delta.
    pub deltas: Vec<String>,
    /// Raw bytes in each delta (for the generated-audio bookkeeping).
    pub delta_bytes: Vec<u64>,
    /// Transcript text sent with each delta; concatenated they give `transcript`.
    pub transcript_pieces: Vec<String>,
}

pub(crate) struct ReplyBank {
    pcm: Arc<RenderedReply>,
    pcmu: Arc<RenderedReply>,
    pcma: Arc<RenderedReply>,
}

impl ReplyBank {
    /// Speaks `text` (espeak-ng pt-BR) at 24 kHz and 8 kHz; blocking, call it off the runtime.
    pub fn render(text: &str, delta_ms: u32) -> anyhow::Result<Self> {
        let wide = speech::synthesize(text, speech::PT_BR, 24_000)?;
        let narrow = speech::synthesize(text, speech::PT_BR, 8_000)?;
        let ms = delta_ms.max(1) as usize;
        Ok(Self {
            pcm: Arc::new(chunked(text, &pcm::to_le_bytes(&wide), 48 * ms)),
            pcmu: Arc::new(chunked(text, &g711::encode_ulaw(&narrow), 8 * ms)),
            pcma: Arc::new(chunked(text, &g711::encode_alaw(&narrow), 8 * ms)),
        })
    }

    pub fn get(&self, format: Format) -> Arc<RenderedReply> {
        match format {
            Format::Pcm24k => self.pcm.clone(),
            Format::Pcmu => self.pcmu.clone(),
            Format::Pcma => self.pcma.clone(),
        }
    }
}

fn chunked(text: &str, bytes: &[u8], chunk_bytes: usize) -> RenderedReply {
    let b64 = base64::engine::general_purpose::STANDARD;
    let chunks: Vec<&[u8]> = bytes.chunks(chunk_bytes.max(2)).collect();
    RenderedReply {
        transcript: text.to_string(),
        deltas: chunks.iter().map(|c| b64.encode(c)).collect(),
        delta_bytes: chunks.iter().map(|c| c.len() as u64).collect(),
        transcript_pieces: split_words(text, chunks.len()),
    }
}

/// `text` cut at word boundaries into `n` pieces (some may be empty).
fn split_words(text: &str, n: usize) -> Vec<String> {
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
    fn deltas_cover_the_audio() {
        let r = chunked("a b", &[0u8; 10_000], 4800);
        assert_eq!(r.deltas.len(), 3);
        assert_eq!(r.delta_bytes, vec![4800, 4800, 400]);
        assert_eq!(r.transcript_pieces.concat(), "a b");
    }
}
