//! Whole-call transcription in pt-BR with speakers: Deepgram pre-recorded first, OpenAI
//! transcriptions as the fallback (order configurable). A stereo WAV is diarized by
//! channel (caller on 0, agent on 1), anything else by voice.
//!
//! `Transcription::text` is the utterances in time order, one per line.

mod deepgram;
mod http;
mod openai;
mod settings;
mod tidy;
mod wav;

use std::sync::Arc;

pub use settings::{DeepgramSettings, OpenAiSettings, Provider, TranscribeSettings};

use crate::calls::model::Transcription;
use http::Failure;

/// A recording to transcribe.
#[derive(Debug, Clone)]
pub struct Audio {
    pub bytes: bytes::Bytes,
    /// `audio/wav`, `audio/mpeg`, `audio/ogg` …
    pub content_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("transcription misconfigured: {0}")]
    Config(String),
    /// Every provider failed and at least one only for now (timeout, 5xx, 429, network).
    #[error("transcription failed for now: {0}")]
    Retryable(String),
    /// Every provider refused for good (invalid audio, rejected request).
    #[error("transcription failed: {0}")]
    Permanent(String),
}

enum Client {
    Deepgram(deepgram::Deepgram),
    OpenAi(openai::OpenAi),
}

impl Client {
    fn name(&self) -> &'static str {
        match self {
            Client::Deepgram(_) => Provider::Deepgram.name(),
            Client::OpenAi(_) => Provider::OpenAi.name(),
        }
    }

    async fn transcribe(
        &self,
        http: &reqwest::Client,
        audio: &Audio,
    ) -> Result<Transcription, Failure> {
        match self {
            Client::Deepgram(d) => d.transcribe(http, audio).await,
            Client::OpenAi(o) => o.transcribe(http, audio).await,
        }
    }
}

struct Inner {
    http: reqwest::Client,
    chain: Vec<Client>,
}

/// Cheap to clone: one HTTP client and the provider chain, shared.
#[derive(Clone)]
pub struct Transcriber {
    inner: Arc<Inner>,
}

impl Transcriber {
    /// A provider without a key (in settings or its environment variable) is left out;
    /// none left is a `Config` error.
    pub fn from_settings(s: &TranscribeSettings) -> Result<Self, TranscribeError> {
        let mut chain = Vec::new();
        for provider in &s.order {
            if chain.iter().any(|c: &Client| c.name() == provider.name()) {
                continue;
            }
            let client = match provider {
                Provider::Deepgram => {
                    let Some(key) = http::api_key(&s.deepgram.api_key, "DEEPGRAM_API_KEY") else {
                        tracing::warn!("transcribe: no Deepgram key (transcribe.deepgram.api_key or DEEPGRAM_API_KEY); skipping it");
                        continue;
                    };
                    deepgram::Deepgram::new(&s.deepgram, &s.language, key)
                        .map(Client::Deepgram)
                }
                Provider::OpenAi => {
                    let Some(key) = http::api_key(&s.openai.api_key, "OPENAI_API_KEY") else {
                        tracing::warn!("transcribe: no OpenAI key (transcribe.openai.api_key or OPENAI_API_KEY); skipping it");
                        continue;
                    };
                    openai::OpenAi::new(&s.openai, &s.language, key).map(Client::OpenAi)
                }
            }
            .map_err(TranscribeError::Config)?;
            chain.push(client);
        }
        if chain.is_empty() {
            return Err(TranscribeError::Config(
                "no transcription provider has an API key".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| TranscribeError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner { http, chain }),
        })
    }

    /// The providers that will be tried, in order.
    pub fn providers(&self) -> Vec<&'static str> {
        self.inner.chain.iter().map(Client::name).collect()
    }

    /// Each provider in order until one answers.
    pub async fn transcribe(&self, audio: &Audio) -> Result<Transcription, TranscribeError> {
        let mut failures = Vec::new();
        let mut transient = false;
        for client in &self.inner.chain {
            match client.transcribe(&self.inner.http, audio).await {
                Ok(t) => return Ok(t),
                Err(failure) => {
                    tracing::warn!(
                        provider = client.name(),
                        error = failure.message(),
                        "transcription failed"
                    );
                    transient |= matches!(failure, Failure::Transient(_));
                    failures.push(format!("{}: {}", client.name(), failure.message()));
                }
            }
        }
        let all = failures.join("; ");
        Err(if transient {
            TranscribeError::Retryable(all)
        } else {
            TranscribeError::Permanent(all)
        })
    }
}
