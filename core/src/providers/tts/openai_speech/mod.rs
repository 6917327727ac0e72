//! OpenAI speech (`POST /v1/audio/speech`) as a [`TextToSpeech`].
//!
//! Wire facts: /work/shared/reference/providers.md §6.2. One request per text piece, with
//! `response_format: "pcm"` (raw 24 kHz PCM16 LE mono); the body is read as it arrives
//! and passed on chunk by chunk, so a piece starts playing long before it is fully
//! rendered. Pieces play strictly in order; with `pipelined` the next piece's request
//! starts while the current one still streams (at most two in flight), so there is no
//! gap for its first byte. Pieces longer than the endpoint's 4096 characters are split at
//! a space.

mod config;
mod request;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::Instrument;

pub use config::OpenAiSpeechConfig;

use super::{TextToSpeech, TtsStream};
use crate::providers::ProviderError;

/// `response_format: "pcm"` is always 24 kHz.
pub const SAMPLE_RATE: u32 = 24_000;
/// Text pieces waiting to be sent.
const TEXT_CAPACITY: usize = 32;
/// Audio chunks waiting for the pipeline.
const AUDIO_CAPACITY: usize = 64;

pub struct OpenAiSpeech {
    /// The endpoint and key; the missing-key error when there is none.
    target: Result<Arc<request::Target>, ProviderError>,
}

impl OpenAiSpeech {
    /// Checks the settings (a bad one is a `Config` error here). A missing key
    /// (`api_key`, else `OPENAI_API_KEY`) is not: the bridge and turn-api start without
    /// it, `/healthz` says so, and each answer gets a `Config` error, so a fallback
    /// provider takes over.
    pub fn new(cfg: OpenAiSpeechConfig) -> Result<Self, ProviderError> {
        cfg.check()?;
        let key = cfg.key();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.timeout_ms))
            .build()
            .map_err(|e| ProviderError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            target: key.map(|key| Arc::new(request::Target { http, cfg, key })),
        })
    }
}

impl TextToSpeech for OpenAiSpeech {
    fn name(&self) -> &'static str {
        "openai_speech"
    }

    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    /// Ready at once: each piece is its own request.
    fn open(&self) -> BoxFuture<'static, Result<TtsStream, ProviderError>> {
        let target = self.target.clone();
        Box::pin(async move {
            let target = target?;
            let (text_tx, text_rx) = mpsc::channel(TEXT_CAPACITY);
            let (audio_tx, audio_rx) = mpsc::channel(AUDIO_CAPACITY);
            let span = tracing::debug_span!("openai_speech", voice = %target.cfg.voice);
            tokio::spawn(stream::run(target, text_rx, audio_tx).instrument(span));
            Ok(TtsStream {
                text: text_tx,
                audio: audio_rx,
            })
        })
    }
}

#[cfg(test)]
mod tests;
