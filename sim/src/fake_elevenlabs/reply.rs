//! The agent's spoken lines, rendered once per fake in the output format and shared by
//! every session: base64 chunks ready to send.

use std::sync::Arc;

use super::format::AudioFormat;
use crate::fake_common::reply::SpokenLine;

pub(crate) struct ReplyBank {
    pub reply: Arc<SpokenLine>,
    /// `None` when the agent has no first message.
    pub greeting: Option<Arc<SpokenLine>>,
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
        let line = |text: &str| {
            SpokenLine::render(text, format.rate(), format.encoding(), chunk_ms).map(Arc::new)
        };
        let greeting = if first_message.is_empty() {
            None
        } else {
            Some(line(first_message)?)
        };
        Ok(Self {
            reply: line(reply)?,
            greeting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_the_output_format() {
        let bank =
            ReplyBank::render("Olá.", "", AudioFormat::Ulaw8k, 100).expect("espeak-ng renders");
        assert!(bank.greeting.is_none());
        assert_eq!(
            bank.reply.chunk_bytes[0], 800,
            "100 ms of μ-law is 800 bytes"
        );
        assert!(ReplyBank::render("Olá.", "", AudioFormat::Pcm(12_000), 100).is_err());
    }
}
