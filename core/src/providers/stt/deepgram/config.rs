//! `[providers.deepgram]` settings, for the live stream and the pre-recorded endpoint.

use serde::Deserialize;

use crate::config::Secret;

/// Deepgram live (`wss://…/v1/listen`) and pre-recorded (`POST https://…/v1/listen`)
/// settings (providers.md §4).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramConfig {
    /// Live endpoint without the query (`ws://` for fakes). The pre-recorded endpoint is
    /// the same URL with `https://` (`http://`) instead of `wss://` (`ws://`).
    pub url: String,
    pub model: String,
    /// Empty: use the `DEEPGRAM_API_KEY` environment variable.
    pub api_key: Secret,
    /// Silence (ms) before Deepgram marks a result `speech_final`; 0 sends
    /// `endpointing=false` (then only `UtteranceEnd` and `Finalize` end an utterance).
    pub endpointing_ms: u32,
    /// Gap (ms) after the last word before `UtteranceEnd`; 0 leaves it off. Needs
    /// `interim_results`.
    pub utterance_end_ms: u32,
    pub interim_results: bool,
    pub smart_format: bool,
    /// `SpeechStarted` messages.
    pub vad_events: bool,
    /// Budget for TCP + TLS + upgrade.
    pub connect_timeout_ms: u64,
    /// A `KeepAlive` goes out after this long without audio (Deepgram closes a stream
    /// after 10 s without audio or KeepAlive).
    pub keepalive_ms: u64,
    /// Budget for one pre-recorded request (upload, transcription, answer).
    pub request_timeout_ms: u64,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        Self {
            url: "wss://api.deepgram.com/v1/listen".into(),
            model: "nova-3".into(),
            api_key: Secret::default(),
            endpointing_ms: 300,
            utterance_end_ms: 1000,
            interim_results: true,
            smart_format: true,
            vad_events: true,
            connect_timeout_ms: 3000,
            keepalive_ms: 3000,
            request_timeout_ms: 60_000,
        }
    }
}

/// The environment variable holding the key when `api_key` is empty.
pub const KEY_ENV: &str = "DEEPGRAM_API_KEY";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: DeepgramConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.url, "wss://api.deepgram.com/v1/listen");
        assert_eq!(cfg.model, "nova-3");
        assert_eq!((cfg.endpointing_ms, cfg.utterance_end_ms), (300, 1000));
        assert!(cfg.interim_results && cfg.smart_format && cfg.vad_events);
        assert_eq!((cfg.connect_timeout_ms, cfg.keepalive_ms), (3000, 3000));
        assert!(cfg.api_key.is_empty());
    }

    #[test]
    fn rejects_unknown_keys_and_hides_the_key() {
        let cfg: DeepgramConfig = toml::from_str("api_key = \"dg-secret\"").unwrap();
        assert!(!format!("{cfg:?}").contains("dg-secret"));
        assert!(toml::from_str::<DeepgramConfig>("endpointing = 10").is_err());
    }
}
