//! `[providers.openai_realtime]` settings.

use serde::Deserialize;

use crate::config::Secret;

/// Which dialect of the Realtime API to speak (providers.md §1.1, §1.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The GA protocol (`session.type = "realtime"`, `response.output_audio.*`).
    #[default]
    Ga,
    /// The old beta protocol (header `OpenAI-Beta: realtime=v1`, `response.audio.*`).
    Beta,
}

/// Connection and turn-detection settings for the OpenAI Realtime API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiRealtimeConfig {
    /// Endpoint without the query, e.g. `wss://api.openai.com/v1/realtime` (`ws://` for fakes).
    pub url: String,
    pub model: String,
    /// Empty: use the `OPENAI_API_KEY` environment variable at connect time.
    pub api_key: Secret,
    pub protocol: Protocol,
    /// With an 8 kHz call, exchange G.711 μ-law with the provider (no resampling at all).
    pub g711_passthrough: bool,
    /// Budget for TCP + TLS + upgrade + `session.created` + `session.updated`.
    pub connect_timeout_ms: u64,
    /// Model for the caller's transcript; empty turns input transcription off.
    pub transcription_model: String,
    /// server_vad activation threshold (0..1).
    pub vad_threshold: f32,
    pub prefix_padding_ms: u32,
    pub silence_duration_ms: u32,
}

impl Default for OpenAiRealtimeConfig {
    fn default() -> Self {
        Self {
            url: "wss://api.openai.com/v1/realtime".into(),
            model: "gpt-realtime".into(),
            api_key: Secret::default(),
            protocol: Protocol::Ga,
            g711_passthrough: false,
            connect_timeout_ms: 5000,
            transcription_model: "gpt-4o-transcribe".into(),
            vad_threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: OpenAiRealtimeConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.url, "wss://api.openai.com/v1/realtime");
        assert_eq!(cfg.model, "gpt-realtime");
        assert_eq!(cfg.protocol, Protocol::Ga);
        assert_eq!(cfg.connect_timeout_ms, 5000);
        assert!(cfg.api_key.is_empty());
    }

    #[test]
    fn parses_beta_and_rejects_unknown_keys() {
        let cfg: OpenAiRealtimeConfig =
            toml::from_str("protocol = \"beta\"\napi_key = \"sk-x\"").unwrap();
        assert_eq!(cfg.protocol, Protocol::Beta);
        assert_eq!(format!("{:?}", cfg.api_key), "\"***\"");
        assert!(toml::from_str::<OpenAiRealtimeConfig>("modle = \"x\"").is_err());
    }
}
