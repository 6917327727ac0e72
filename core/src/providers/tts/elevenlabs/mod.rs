//! ElevenLabs streaming text to speech (`stream-input` WebSocket) as a [`TextToSpeech`].
//!
//! Wire facts: /work/shared/reference/providers.md §3.1. One socket per answer: BOS (a
//! single space, with the voice settings), then each text piece with `flush: true` so it
//! is spoken at once, EOS (`""`) when the pipeline closes the text; the service sends the
//! rest, `isFinal` and closes with 1000. Dropping the audio receiver closes the socket at
//! once (barge-in: nothing more is generated or billed). The key goes in the `xi-api-key`
//! header.
//!
//! The service closes a socket that gets no text for `inactivity_timeout_s` (default
//! 20 s): while the LLM is slow we send a single space every half of that, the docs'
//! keep-alive.
//!
//! Only the single-context endpoint is used: one answer is one socket, so a barge-in is
//! just a close, and the multi-context variant's `context_id` bookkeeping would buy only
//! the saved connect (one TLS handshake per answer).

mod config;
mod connect;
mod format;
mod messages;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument;

pub use config::{ElevenLabsTtsConfig, VoiceSettings};
pub use format::OutputFormat;

use super::{TextToSpeech, TtsStream};
use crate::config::Secret;
use crate::providers::ProviderError;

/// Text pieces waiting to be sent (a few sentences at most).
const TEXT_CAPACITY: usize = 32;
/// Audio messages waiting for the pipeline.
const AUDIO_CAPACITY: usize = 64;

pub struct ElevenLabsTts {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ElevenLabsTtsConfig,
    format: OutputFormat,
    /// The key; the missing-key error when there is none.
    key: Result<Secret, ProviderError>,
}

impl ElevenLabsTts {
    /// Checks the settings (a bad one is a `Config` error here). A missing key
    /// (`api_key`, else `ELEVENLABS_API_KEY`) is not: the bridge and turn-api start without
    /// it, and each answer gets a `Config` error, so a fallback provider takes over.
    pub fn new(cfg: ElevenLabsTtsConfig) -> Result<Self, ProviderError> {
        cfg.check()?;
        let format = cfg.format()?;
        let key = cfg.key();
        Ok(Self {
            inner: Arc::new(Inner { cfg, format, key }),
        })
    }

    pub fn output_format(&self) -> OutputFormat {
        self.inner.format
    }
}

impl TextToSpeech for ElevenLabsTts {
    fn name(&self) -> &'static str {
        "elevenlabs_tts"
    }

    fn sample_rate(&self) -> u32 {
        self.inner.format.rate()
    }

    fn open(&self) -> BoxFuture<'static, Result<TtsStream, ProviderError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let cfg = &inner.cfg;
            let key = inner.key.clone()?;
            let mut ws = connect::open(cfg, &key).await?;
            ws.send(Message::text(messages::bos(cfg)))
                .await
                .map_err(|e| ProviderError::Unavailable(format!("sending to ElevenLabs: {e}")))?;
            let (text_tx, text_rx) = mpsc::channel(TEXT_CAPACITY);
            let (audio_tx, audio_rx) = mpsc::channel(AUDIO_CAPACITY);
            let timing = stream::Timing {
                keep_alive: Duration::from_millis(u64::from(cfg.inactivity_timeout_s) * 500),
                audio_timeout: Duration::from_millis(cfg.first_audio_timeout_ms),
            };
            let decoder = format::Decoder::new(inner.format);
            let span = tracing::debug_span!("elevenlabs_tts", voice = %cfg.voice_id);
            let task = stream::run(ws, text_rx, audio_tx, decoder, timing, key);
            tokio::spawn(task.instrument(span));
            Ok(TtsStream {
                text: text_tx,
                audio: audio_rx,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_config_fails_at_construction() {
        let err = ElevenLabsTts::new(ElevenLabsTtsConfig {
            voice_id: String::new(),
            ..Default::default()
        })
        .err();
        assert!(matches!(err, Some(ProviderError::Config(_))), "{err:?}");
        let ok = ElevenLabsTts::new(ElevenLabsTtsConfig {
            voice_id: "v".into(),
            output_format: "ulaw_8000".into(),
            api_key: Secret::new("xi-secret"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((ok.name(), ok.sample_rate()), ("elevenlabs_tts", 8_000));
        assert_eq!(ok.output_format(), OutputFormat::Ulaw8k);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_not_hung() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let tts = ElevenLabsTts::new(ElevenLabsTtsConfig {
            url: format!("ws://127.0.0.1:{port}/v1/text-to-speech"),
            voice_id: "v".into(),
            api_key: Secret::new("xi-secret"),
            ..Default::default()
        })
        .unwrap();
        let err = tts.open().await.err().unwrap();
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if !m.contains("xi-secret")),
            "{err}"
        );
    }
}
