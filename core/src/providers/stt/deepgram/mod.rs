//! Deepgram speech to text: the live WebSocket stream ([`DeepgramStt`]) and the
//! pre-recorded endpoint ([`DeepgramTranscriber`]).
//!
//! Wire facts: /work/shared/reference/providers.md §4. The live stream sends the call's
//! PCM16 as binary `linear16` frames, `KeepAlive` after `keepalive_ms` without audio,
//! `Finalize` for [`SttInput::Finalize`](super::SttInput::Finalize) and `CloseStream` when
//! the input is dropped. How results become interim, final and end-of-utterance events
//! (appending finals, the end marker, `Finalize` answers and their repeats) is written
//! out in `state.rs`.

mod config;
mod connect;
mod messages;
mod prerecorded;
mod session;
mod state;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::Instrument;

pub use config::DeepgramConfig;

use super::{rest, SpeechToText, SttOptions, SttStream, Transcriber, Transcript};
use crate::providers::ProviderError;

/// Capacity of a stream's input and event channels.
const CHANNEL_CAPACITY: usize = 256;

/// Live recognition over Deepgram's WebSocket.
pub struct DeepgramStt {
    cfg: Arc<DeepgramConfig>,
}

impl DeepgramStt {
    pub fn new(cfg: DeepgramConfig) -> Self {
        Self { cfg: Arc::new(cfg) }
    }
}

impl SpeechToText for DeepgramStt {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    fn open(&self, options: SttOptions) -> BoxFuture<'static, Result<SttStream, ProviderError>> {
        let cfg = self.cfg.clone();
        Box::pin(async move {
            let ws = connect::open(&cfg, &options).await?;
            let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let (events_tx, events_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let keepalive = Duration::from_millis(cfg.keepalive_ms);
            let span = tracing::info_span!("deepgram_stt", language = %options.language);
            tokio::spawn(session::run(ws, input_rx, events_tx, keepalive).instrument(span));
            Ok(SttStream {
                input: input_tx,
                events: events_rx,
            })
        })
    }
}

/// Whole recordings through Deepgram's pre-recorded endpoint.
pub struct DeepgramTranscriber {
    inner: Arc<TranscriberInner>,
}

struct TranscriberInner {
    cfg: DeepgramConfig,
    http: OnceLock<reqwest::Client>,
}

impl DeepgramTranscriber {
    pub fn new(cfg: DeepgramConfig) -> Self {
        Self {
            inner: Arc::new(TranscriberInner {
                cfg,
                http: OnceLock::new(),
            }),
        }
    }
}

impl Transcriber for DeepgramTranscriber {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    fn transcribe(
        &self,
        samples: Vec<i16>,
        sample_rate: u32,
        language: String,
    ) -> BoxFuture<'static, Result<Transcript, ProviderError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let http = rest::client(&inner.http)?;
            prerecorded::transcribe(http, &inner.cfg, &samples, sample_rate, &language).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::providers::test_support::{closed_port, env_has_key};

    fn options() -> SttOptions {
        SttOptions {
            sample_rate: 16_000,
            language: "pt-BR".into(),
        }
    }

    async fn open_error(stt: &DeepgramStt) -> ProviderError {
        match stt.open(options()).await {
            Ok(_) => panic!("opened"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn without_a_key_it_is_a_config_error() {
        if env_has_key(&["DEEPGRAM_API_KEY"]) {
            return;
        }
        let stt = DeepgramStt::new(DeepgramConfig::default());
        assert_eq!(stt.name(), "deepgram");
        assert!(matches!(open_error(&stt).await, ProviderError::Config(_)));
        let t = DeepgramTranscriber::new(DeepgramConfig::default());
        let err = t.transcribe(vec![0; 1600], 16_000, "pt-BR".into()).await;
        assert!(matches!(err, Err(ProviderError::Config(_))));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_not_hung() {
        let port = closed_port().await;
        let cfg = DeepgramConfig {
            url: format!("ws://127.0.0.1:{port}/v1/listen"),
            api_key: Secret::new("dg-secret-value"),
            ..Default::default()
        };
        let err = open_error(&DeepgramStt::new(cfg.clone())).await;
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if !m.contains("dg-secret")),
            "{err}"
        );
        let t = DeepgramTranscriber::new(cfg);
        let err = t
            .transcribe(vec![0; 1600], 16_000, "pt-BR".into())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if !m.contains("dg-secret")),
            "{err}"
        );
    }
}
