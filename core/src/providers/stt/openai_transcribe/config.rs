//! `[providers.openai_transcribe]` settings. The same client serves any service with
//! OpenAI's `/audio/transcriptions` (Groq: `url =
//! "https://api.groq.com/openai/v1/audio/transcriptions"`, `model =
//! "whisper-large-v3-turbo"`, `api_key_env = "GROQ_API_KEY"`).

use serde::Deserialize;

use crate::config::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiTranscribeConfig {
    /// The whole endpoint (`http://` for fakes).
    pub url: String,
    pub model: String,
    /// Empty: read the environment variable `api_key_env`.
    pub api_key: Secret,
    pub api_key_env: String,
    /// Budget for one segment of a live stream (upload, transcription, answer).
    pub timeout_ms: u64,
    /// Budget for one whole recording ([`Transcriber`](crate::providers::stt::Transcriber)).
    pub recording_timeout_ms: u64,
}

impl Default for OpenAiTranscribeConfig {
    fn default() -> Self {
        Self {
            url: "https://api.openai.com/v1/audio/transcriptions".into(),
            model: "gpt-4o-transcribe".into(),
            api_key: Secret::default(),
            api_key_env: "OPENAI_API_KEY".into(),
            timeout_ms: 5000,
            recording_timeout_ms: 60_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: OpenAiTranscribeConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.url, "https://api.openai.com/v1/audio/transcriptions");
        assert_eq!(cfg.model, "gpt-4o-transcribe");
        assert_eq!(cfg.api_key_env, "OPENAI_API_KEY");
        assert_eq!((cfg.timeout_ms, cfg.recording_timeout_ms), (5000, 60_000));
        assert!(cfg.api_key.is_empty());
    }

    #[test]
    fn rejects_unknown_keys_and_hides_the_key() {
        let cfg: OpenAiTranscribeConfig = toml::from_str("api_key = \"gsk-secret\"").unwrap();
        assert!(!format!("{cfg:?}").contains("gsk-secret"));
        assert!(toml::from_str::<OpenAiTranscribeConfig>("timeout = 1").is_err());
    }
}
