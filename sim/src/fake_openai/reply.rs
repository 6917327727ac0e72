//! The agent's spoken reply in each output format a session may pick, rendered once and
//! shared by every session: base64 deltas ready to send, plus transcript pieces to go
//! with them.

use std::sync::Arc;

use super::session_config::Format;
use crate::fake_common::reply::{speak, SpokenLine};

pub(crate) struct ReplyBank {
    pcm: Arc<SpokenLine>,
    pcmu: Arc<SpokenLine>,
    pcma: Arc<SpokenLine>,
}

impl ReplyBank {
    /// Speaks `text` (espeak-ng pt-BR) at 24 kHz and 8 kHz; blocking, call it off the runtime.
    pub fn render(text: &str, delta_ms: u32) -> anyhow::Result<Self> {
        let wide = speak(text, 24_000)?;
        let narrow = speak(text, 8_000)?;
        let line = |samples: &[i16], format: Format| {
            let encoding = format.encoding();
            Arc::new(SpokenLine::new(
                text,
                samples,
                format.rate(),
                encoding,
                delta_ms,
            ))
        };
        Ok(Self {
            pcm: line(&wide, Format::Pcm24k),
            pcmu: line(&narrow, Format::Pcmu),
            pcma: line(&narrow, Format::Pcma),
        })
    }

    pub fn get(&self, format: Format) -> Arc<SpokenLine> {
        match format {
            Format::Pcm24k => self.pcm.clone(),
            Format::Pcmu => self.pcmu.clone(),
            Format::Pcma => self.pcma.clone(),
        }
    }
}
