//! The model's spoken reply, rendered once per fake at Gemini's output rate and shared by
//! every session: base64 PCM16 chunks, plus the transcript pieces that go with them.

use crate::fake_common::encoding::Encoding;
use crate::fake_common::reply::SpokenLine;

/// Gemini's output rate.
pub(crate) const OUTPUT_RATE: u32 = 24_000;

/// Speaks `text` (espeak-ng pt-BR) at 24 kHz; blocking, call it off the runtime.
pub(crate) fn render(text: &str, chunk_ms: u32) -> anyhow::Result<SpokenLine> {
    SpokenLine::render(text, OUTPUT_RATE, Encoding::Pcm16, chunk_ms)
}
