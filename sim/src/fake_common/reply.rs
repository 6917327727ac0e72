//! A line the agent speaks, rendered once per fake and shared by every session: espeak-ng
//! pt-BR audio in the wire encoding, cut into base64 chunks ready to send, with the text
//! cut to go along.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;

use super::encoding::Encoding;
use crate::speech;

pub(crate) struct SpokenLine {
    pub text: String,
    /// Base64 of each chunk.
    pub chunks: Vec<String>,
    /// Raw bytes in each chunk.
    pub chunk_bytes: Vec<u64>,
    /// Text sent with each chunk (some may be empty); concatenated they give `text`.
    pub text_pieces: Vec<String>,
    /// How long the line lasts when played.
    pub duration: Duration,
}

/// Speaks `text` (espeak-ng pt-BR) at `rate`; blocking, call it off the runtime.
pub(crate) fn speak(text: &str, rate: u32) -> anyhow::Result<Arc<Vec<i16>>> {
    speech::synthesize(text, speech::PT_BR, rate)
}

impl SpokenLine {
    /// `samples` (at `rate`) of `text`, encoded and cut into `chunk_ms` chunks.
    pub fn new(text: &str, samples: &[i16], rate: u32, encoding: Encoding, chunk_ms: u32) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        let per_chunk = (rate as usize * chunk_ms.max(1) as usize / 1000).max(1);
        let bytes = encoding.encode(samples);
        let chunks: Vec<&[u8]> = bytes
            .chunks(per_chunk * encoding.bytes_per_sample())
            .collect();
        let us = samples.len() as u64 * 1_000_000 / u64::from(rate.max(1));
        Self {
            text: text.to_string(),
            chunks: chunks.iter().map(|c| b64.encode(c)).collect(),
            chunk_bytes: chunks.iter().map(|c| c.len() as u64).collect(),
            text_pieces: split_words(text, chunks.len()),
            duration: Duration::from_micros(us),
        }
    }

    /// Speaks `text` at `rate` and renders it; blocking, call it off the runtime.
    pub fn render(
        text: &str,
        rate: u32,
        encoding: Encoding,
        chunk_ms: u32,
    ) -> anyhow::Result<Self> {
        let samples = speak(text, rate)?;
        Ok(Self::new(text, &samples, rate, encoding, chunk_ms))
    }
}

/// Runs a blocking render (espeak-ng) off the async runtime; `what` names it in errors.
pub(crate) async fn off_runtime<T, F>(what: &'static str, render: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(render).await.context(what)?
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
        let r = SpokenLine::new("a b", &[0i16; 5000], 24_000, Encoding::Pcm16, 100);
        assert_eq!(r.chunks.len(), 3);
        assert_eq!(r.chunk_bytes, vec![4800, 4800, 400]);
        assert_eq!(r.text_pieces.concat(), "a b");
        assert_eq!(r.duration, Duration::from_micros(5000 * 1_000_000 / 24_000));
        let b64 = base64::engine::general_purpose::STANDARD;
        let last = b64.decode(&r.chunks[2]).unwrap();
        assert_eq!(last.len(), (5000 - 4800) * 2);
        let ulaw = SpokenLine::new("a", &[0i16; 10_000], 8_000, Encoding::Ulaw, 400);
        assert_eq!(ulaw.chunk_bytes, vec![3200, 3200, 3200, 400]);
    }

    #[test]
    fn renders_the_text_in_the_encoding() {
        let line = SpokenLine::render("Olá.", 8_000, Encoding::Ulaw, 100).expect("espeak-ng");
        let b64 = base64::engine::general_purpose::STANDARD;
        let first = b64.decode(&line.chunks[0]).unwrap();
        assert_eq!(first.len(), 800, "100 ms of μ-law is 800 bytes");
        assert!(line.duration > Duration::from_millis(100));
        assert_eq!(line.text, "Olá.");
    }
}
