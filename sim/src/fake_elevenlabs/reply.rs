//! The agent's spoken lines, rendered once per fake in the output format and shared by
//! every session: base64 chunks ready to send.

use std::sync::Arc;

use base64::Engine;

use super::format::AudioFormat;
use crate::speech;

pub(crate) struct Rendered {
    pub text: String,
    /// Base64 audio of each `audio` message.
    pub chunks: Vec<String>,
    /// Length of the whole line (its real-time playback).
    pub duration_ms: u64,
}

pub(crate) struct ReplyBank {
    pub reply: Arc<Rendered>,
    /// `None` when the agent has no first message.
    pub greeting: Option<Arc<Rendered>>,
}

impl ReplyBank {
    /// Speaks the lines (espeak-ng pt-BR); blocking, call it off the runtime.
    pub fn render(
        reply: &str,
        first_message: &str,
        format: AudioFormat,
        chunk_ms: u32,
    ) -> anyhow::Result<Self> {
        if !format.is_supported() {
            anyhow::bail!("unsupported output format {}", format.name());
        }
        let greeting = if first_message.is_empty() {
            None
        } else {
            Some(Arc::new(render_line(first_message, format, chunk_ms)?))
        };
        Ok(Self {
            reply: Arc::new(render_line(reply, format, chunk_ms)?),
            greeting,
        })
    }
}

fn render_line(text: &str, format: AudioFormat, chunk_ms: u32) -> anyhow::Result<Rendered> {
    let samples = speech::synthesize(text, speech::PT_BR, format.rate())?;
    let bytes = format.encode(&samples);
    let chunk_samples = (format.rate() as usize * chunk_ms.max(1) as usize / 1000).max(1);
    Ok(Rendered {
        text: text.to_string(),
        chunks: chunked(&bytes, chunk_samples * format.bytes_per_sample()),
        duration_ms: samples.len() as u64 * 1000 / u64::from(format.rate()),
    })
}

fn chunked(bytes: &[u8], chunk_bytes: usize) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    bytes
        .chunks(chunk_bytes.max(1))
        .map(|c| b64.encode(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_audio() {
        let c = chunked(&[0u8; 10_000], 3200);
        assert_eq!(c.len(), 4);
        let b64 = base64::engine::general_purpose::STANDARD;
        let total: usize = c.iter().map(|s| b64.decode(s).unwrap().len()).sum();
        assert_eq!(total, 10_000);
    }

    #[test]
    fn renders_in_the_output_format() {
        let bank =
            ReplyBank::render("Olá.", "", AudioFormat::Ulaw8k, 100).expect("espeak-ng renders");
        assert!(bank.greeting.is_none());
        let b64 = base64::engine::general_purpose::STANDARD;
        let first = b64.decode(&bank.reply.chunks[0]).unwrap();
        assert!(first.len() <= 800, "100 ms of μ-law is 800 bytes");
        assert!(bank.reply.duration_ms > 100);
    }
}
