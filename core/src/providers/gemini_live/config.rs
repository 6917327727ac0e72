//! `[providers.gemini_live]` settings.

use serde::Deserialize;

use crate::config::Secret;

/// Connection, voice-activity and transcription settings for the Gemini Live API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiLiveConfig {
    /// The BidiGenerateContent endpoint (`ws://` for fakes). A `?key=` is never added: the
    /// key goes in the `x-goog-api-key` header, as the official SDK sends it.
    pub url: String,
    /// `models/<name>`; a bare name gets the `models/` prefix.
    pub model: String,
    /// Empty: use `GEMINI_API_KEY`, then `GOOGLE_API_KEY`, at connect time.
    pub api_key: Secret,
    /// Budget for TCP + TLS + upgrade + `setupComplete` (+ sending the history).
    pub connect_timeout_ms: u64,
    /// `automaticActivityDetection.startOfSpeechSensitivity`.
    pub start_sensitivity: String,
    /// `automaticActivityDetection.endOfSpeechSensitivity`.
    pub end_sensitivity: String,
    pub prefix_padding_ms: u32,
    pub silence_duration_ms: u32,
    /// Ask for input and output audio transcription (the call's transcript lines).
    pub transcription: bool,
}

pub(crate) const DEFAULT_URL: &str = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";

impl Default for GeminiLiveConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.into(),
            model: "models/gemini-2.5-flash-native-audio-preview-12-2025".into(),
            api_key: Secret::default(),
            connect_timeout_ms: 5000,
            start_sensitivity: "START_SENSITIVITY_HIGH".into(),
            end_sensitivity: "END_SENSITIVITY_LOW".into(),
            prefix_padding_ms: 20,
            silence_duration_ms: 500,
            transcription: true,
        }
    }
}

impl GeminiLiveConfig {
    /// The model as the setup message names it (`models/…`).
    pub(crate) fn model_path(&self) -> String {
        if self.model.contains('/') {
            self.model.clone()
        } else {
            format!("models/{}", self.model)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: GeminiLiveConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.url, DEFAULT_URL);
        assert!(cfg.url.starts_with("wss://"));
        assert_eq!(
            cfg.model,
            "models/gemini-2.5-flash-native-audio-preview-12-2025"
        );
        assert_eq!(cfg.connect_timeout_ms, 5000);
        assert_eq!(cfg.start_sensitivity, "START_SENSITIVITY_HIGH");
        assert_eq!(cfg.end_sensitivity, "END_SENSITIVITY_LOW");
        assert_eq!((cfg.prefix_padding_ms, cfg.silence_duration_ms), (20, 500));
        assert!(cfg.transcription);
        assert!(cfg.api_key.is_empty());
    }

    #[test]
    fn hides_the_key_and_rejects_unknown_keys() {
        let cfg: GeminiLiveConfig =
            toml::from_str("api_key = \"AIza-secret\"\nmodel = \"gemini-live\"").unwrap();
        assert!(!format!("{cfg:?}").contains("AIza-secret"));
        assert_eq!(cfg.model_path(), "models/gemini-live");
        assert!(toml::from_str::<GeminiLiveConfig>("modle = \"x\"").is_err());
    }
}
