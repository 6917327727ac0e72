//! `[providers.openai_speech]` settings, and the checks that need no network.

use serde::Deserialize;

use crate::config::Secret;
use crate::providers::ProviderError;

/// Text to speech over `POST /v1/audio/speech` (OpenAI, or any server speaking it).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSpeechConfig {
    /// The endpoint; `http://` for fakes.
    pub url: String,
    /// `gpt-4o-mini-tts`, `tts-1`, `tts-1-hd`, …
    pub model: String,
    pub voice: String,
    /// How to speak ("Fale de forma calorosa"); empty: not sent. Ignored by `tts-1*`
    /// models, so it is never sent to them.
    pub instructions: String,
    /// 0.25–4.0.
    pub speed: f64,
    /// Empty: use `OPENAI_API_KEY`.
    pub api_key: Secret,
    /// Longest wait for a response, and for each next piece of its body.
    pub timeout_ms: u64,
    /// Ask for the next piece while the current one still streams, so its first audio
    /// is ready when the current one ends (the audio still comes in order).
    pub pipelined: bool,
}

impl Default for OpenAiSpeechConfig {
    fn default() -> Self {
        Self {
            url: "https://api.openai.com/v1/audio/speech".into(),
            model: "gpt-4o-mini-tts".into(),
            voice: "marin".into(),
            instructions: String::new(),
            speed: 1.0,
            api_key: Secret::default(),
            timeout_ms: 10_000,
            pipelined: true,
        }
    }
}

impl OpenAiSpeechConfig {
    /// Everything that can be wrong before any network traffic.
    pub(super) fn check(&self) -> Result<(), ProviderError> {
        let bad = |m: String| Err(ProviderError::Config(format!("openai_speech.{m}")));
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return bad(format!(
                "url must start with https:// or http://, got {:?}",
                self.url
            ));
        }
        if self.model.trim().is_empty() || self.voice.trim().is_empty() {
            return bad("model and voice are required".into());
        }
        if !(0.25..=4.0).contains(&self.speed) {
            return bad(format!("speed must be 0.25–4.0, got {}", self.speed));
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms must be positive".into());
        }
        Ok(())
    }

    /// The configured key, else `OPENAI_API_KEY`; neither is a `Config` error.
    pub(super) fn key(&self) -> Result<Secret, ProviderError> {
        if !self.api_key.is_empty() {
            return Ok(self.api_key.clone());
        }
        match std::env::var("OPENAI_API_KEY") {
            Ok(k) if !k.trim().is_empty() => Ok(Secret::new(k.trim())),
            _ => Err(ProviderError::Config(
                "openai_speech needs an API key (api_key or OPENAI_API_KEY)".into(),
            )),
        }
    }

    /// Whether the model takes `instructions` (the `tts-1` family does not).
    pub(super) fn takes_instructions(&self) -> bool {
        !self.model.starts_with("tts-1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let c: OpenAiSpeechConfig = toml::from_str("").unwrap();
        assert_eq!(c.url, "https://api.openai.com/v1/audio/speech");
        assert_eq!(
            (c.model.as_str(), c.voice.as_str()),
            ("gpt-4o-mini-tts", "marin")
        );
        assert_eq!((c.speed, c.timeout_ms, c.pipelined), (1.0, 10_000, true));
        assert!(c.instructions.is_empty() && c.api_key.is_empty());
        assert!(c.takes_instructions());
    }

    #[test]
    fn key_is_hidden_unknown_keys_and_bad_values_rejected() {
        let c: OpenAiSpeechConfig = toml::from_str("api_key = \"sk-secret\"").unwrap();
        assert!(!format!("{c:?}").contains("sk-secret"));
        assert_eq!(c.key().unwrap().expose(), "sk-secret");
        assert!(toml::from_str::<OpenAiSpeechConfig>("voices = \"x\"").is_err());
        let bad = [
            OpenAiSpeechConfig {
                url: "ws://x".into(),
                ..c.clone()
            },
            OpenAiSpeechConfig {
                voice: " ".into(),
                ..c.clone()
            },
            OpenAiSpeechConfig {
                speed: 5.0,
                ..c.clone()
            },
            OpenAiSpeechConfig {
                timeout_ms: 0,
                ..c.clone()
            },
        ];
        for b in bad {
            assert!(matches!(b.check(), Err(ProviderError::Config(_))));
        }
        let tts1 = OpenAiSpeechConfig {
            model: "tts-1-hd".into(),
            ..c
        };
        assert!(!tts1.takes_instructions());
    }
}
