//! The `[transcribe]` settings: which providers, in which order, and how to reach them.

use serde::Deserialize;
use voice_core::config::Secret;

/// A transcription provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Deepgram,
    OpenAi,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Deepgram => "deepgram",
            Provider::OpenAi => "openai",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscribeSettings {
    /// Tried in this order; the next one on failure.
    pub order: Vec<Provider>,
    /// BCP-47 (`pt-BR`); OpenAI gets its ISO-639-1 part.
    pub language: String,
    pub deepgram: DeepgramSettings,
    pub openai: OpenAiSettings,
}

impl Default for TranscribeSettings {
    fn default() -> Self {
        Self {
            order: vec![Provider::Deepgram, Provider::OpenAi],
            language: "pt-BR".into(),
            deepgram: DeepgramSettings::default(),
            openai: OpenAiSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepgramSettings {
    pub url: String,
    pub model: String,
    /// Empty: the environment variable `DEEPGRAM_API_KEY`.
    pub api_key: Secret,
    pub timeout_secs: u64,
}

impl Default for DeepgramSettings {
    fn default() -> Self {
        Self {
            url: "https://api.deepgram.com".into(),
            model: "nova-3".into(),
            api_key: Secret::default(),
            timeout_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiSettings {
    pub url: String,
    /// `gpt-4o-transcribe-diarize` answers `diarized_json` (speaker labels); a Whisper
    /// model answers `verbose_json` (segments and words, no speakers).
    pub model: String,
    /// Empty: the environment variable `OPENAI_API_KEY`.
    pub api_key: Secret,
    pub timeout_secs: u64,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-transcribe-diarize".into(),
            api_key: Secret::default(),
            timeout_secs: 300,
        }
    }
}
