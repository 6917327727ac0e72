//! OpenAI-style transcription (`POST /v1/audio/transcriptions`, also Groq): whole
//! recordings as a [`Transcriber`], and live streams as a [`SpeechToText`] that posts one
//! segment per [`SttInput::Finalize`](super::SttInput::Finalize) (rules in `segments.rs`).
//!
//! Wire facts: /work/shared/reference/providers.md §6.1. The audio goes up as a WAV built
//! in memory; the language is reduced to ISO-639-1; only `response_format=json` is asked,
//! since the gpt-4o transcribe models support nothing else.

mod config;
mod request;
mod segments;

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub use config::OpenAiTranscribeConfig;

use super::{rest, SpeechToText, SttOptions, SttStream, Transcriber, Transcript};
use crate::providers::ProviderError;

/// Capacity of a stream's input and event channels.
const CHANNEL_CAPACITY: usize = 256;

/// Transcription through an OpenAI-compatible `/audio/transcriptions` endpoint.
pub struct OpenAiTranscribe {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: OpenAiTranscribeConfig,
    http: OnceLock<reqwest::Client>,
}

impl OpenAiTranscribe {
    pub fn new(cfg: OpenAiTranscribeConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                http: OnceLock::new(),
            }),
        }
    }
}

impl SpeechToText for OpenAiTranscribe {
    fn name(&self) -> &'static str {
        "openai_transcribe"
    }

    /// Checks the settings; no request is made until the first segment.
    fn open(&self, options: SttOptions) -> BoxFuture<'static, Result<SttStream, ProviderError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            if !(8_000..=48_000).contains(&options.sample_rate) {
                return Err(ProviderError::Config(format!(
                    "unsupported sample rate {}",
                    options.sample_rate
                )));
            }
            let target = segments::Target {
                http: rest::client(&inner.http)?.clone(),
                prepared: request::prepare(&inner.cfg)?,
                sample_rate: options.sample_rate,
                language: request::iso639_1(&options.language),
                timeout_ms: inner.cfg.timeout_ms,
            };
            let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let (events_tx, events_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let span = tracing::info_span!("openai_transcribe", model = %inner.cfg.model);
            segments::spawn(target, input_rx, events_tx, span);
            Ok(SttStream {
                input: input_tx,
                events: events_rx,
            })
        })
    }
}

impl Transcriber for OpenAiTranscribe {
    fn name(&self) -> &'static str {
        "openai_transcribe"
    }

    /// A recording shorter than 100 ms or without speech is "" without a request.
    fn transcribe(
        &self,
        samples: Vec<i16>,
        sample_rate: u32,
        language: String,
    ) -> BoxFuture<'static, Result<Transcript, ProviderError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let prepared = request::prepare(&inner.cfg)?;
            let http = rest::client(&inner.http)?;
            let mut buffer = segments::SegmentBuffer::new(sample_rate.max(1));
            buffer.push(&samples);
            if !buffer.worth_sending() {
                return Ok(Transcript::default());
            }
            let language = request::iso639_1(&language);
            let budget = inner.cfg.recording_timeout_ms;
            // The whole recording, not the buffer: its quiet start is part of its timing.
            request::post(
                http,
                &prepared,
                &samples,
                sample_rate,
                language.as_deref(),
                budget,
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::providers::stt::{SttEvent, SttInput};
    use crate::providers::test_support::closed_port;

    fn speech(ms: usize) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| if i % 2 == 0 { 3000 } else { -3000 })
            .collect()
    }

    fn unreachable(port: u16) -> OpenAiTranscribe {
        OpenAiTranscribe::new(OpenAiTranscribeConfig {
            url: format!("http://127.0.0.1:{port}/v1/audio/transcriptions"),
            api_key: Secret::new("sk-secret-value"),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn missing_key_is_a_config_error_for_both_shapes() {
        let t = OpenAiTranscribe::new(OpenAiTranscribeConfig {
            api_key_env: "VOICE_TEST_UNSET_KEY_VAR".into(),
            ..Default::default()
        });
        assert_eq!(SpeechToText::name(&t), "openai_transcribe");
        let options = SttOptions {
            sample_rate: 16_000,
            language: "pt-BR".into(),
        };
        assert!(matches!(
            t.open(options).await,
            Err(ProviderError::Config(_))
        ));
        let err = t.transcribe(speech(500), 16_000, "pt-BR".into()).await;
        assert!(matches!(err, Err(ProviderError::Config(_))));
    }

    #[tokio::test]
    async fn unreachable_server_is_unavailable_and_quiet_audio_needs_no_server() {
        let t = unreachable(closed_port().await);
        let err = t
            .transcribe(speech(500), 16_000, "pt-BR".into())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if !m.contains("sk-secret")),
            "{err}"
        );
        let quiet = t.transcribe(vec![0; 16_000], 16_000, "pt-BR".into()).await;
        assert_eq!(quiet, Ok(Transcript::default()));
        let options = SttOptions {
            sample_rate: 16_000,
            language: "pt-BR".into(),
        };
        let mut stream = t.open(options).await.unwrap();
        stream
            .input
            .send(SttInput::Audio(speech(50)))
            .await
            .unwrap();
        stream.input.send(SttInput::Finalize).await.unwrap();
        stream
            .input
            .send(SttInput::Audio(speech(300)))
            .await
            .unwrap();
        stream.input.send(SttInput::Finalize).await.unwrap();
        let first = stream.events.recv().await;
        assert_eq!(
            first,
            Some(SttEvent::Final {
                text: String::new(),
                speech_final: true
            })
        );
        let second = stream.events.recv().await;
        assert!(
            matches!(
                second,
                Some(SttEvent::Error {
                    error: ProviderError::Unavailable(_),
                    fatal: true
                })
            ),
            "{second:?}"
        );
        assert_eq!(
            stream.events.recv().await,
            None,
            "a fatal error ends the stream"
        );
    }
}
