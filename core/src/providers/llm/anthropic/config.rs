//! `[providers.anthropic]` settings.

use serde::Deserialize;

use crate::config::Secret;

/// Settings of the Anthropic Messages streaming client (providers.md §5.2).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnthropicConfig {
    /// The Messages endpoint (whole URL).
    pub url: String,
    pub model: String,
    /// Empty: read the environment variable named by `api_key_env` at each request.
    pub api_key: Secret,
    pub api_key_env: String,
    /// The `anthropic-version` header.
    pub anthropic_version: String,
    /// Answer length cap (the API requires one), unless the request sets its own.
    pub max_tokens: u32,
    /// Unset: the provider's default. 0 to 1.
    pub temperature: Option<f32>,
    /// Until the HTTP status is known (TCP + TLS + the provider accepting the request).
    pub connect_timeout_ms: u64,
    /// From sending the request to the first piece of the answer.
    pub first_token_timeout_ms: u64,
    /// Longest pause inside an answer.
    pub idle_timeout_ms: u64,
}

impl Default for AnthropicConfig {
    /// `claude-haiku-4-5` (the fast one, for calls), key from `ANTHROPIC_API_KEY`,
    /// version `2023-06-01`, 300 tokens, timeouts 5 s to the status, 5 s to the first
    /// token, 10 s between chunks.
    fn default() -> Self {
        Self {
            url: "https://api.anthropic.com/v1/messages".into(),
            model: "claude-haiku-4-5".into(),
            api_key: Secret::default(),
            api_key_env: "ANTHROPIC_API_KEY".into(),
            anthropic_version: "2023-06-01".into(),
            max_tokens: 300,
            temperature: None,
            connect_timeout_ms: 5000,
            first_token_timeout_ms: 5000,
            idle_timeout_ms: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: AnthropicConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.url, "https://api.anthropic.com/v1/messages");
        assert_eq!(
            (
                cfg.model.as_str(),
                cfg.api_key_env.as_str(),
                cfg.anthropic_version.as_str()
            ),
            ("claude-haiku-4-5", "ANTHROPIC_API_KEY", "2023-06-01")
        );
        assert_eq!((cfg.max_tokens, cfg.temperature), (300, None));
        assert_eq!(
            (
                cfg.connect_timeout_ms,
                cfg.first_token_timeout_ms,
                cfg.idle_timeout_ms
            ),
            (5000, 5000, 10_000)
        );
    }

    #[test]
    fn hides_the_key_and_rejects_unknown_keys() {
        let cfg: AnthropicConfig = toml::from_str("api_key = \"sk-ant-secret\"").unwrap();
        assert!(!format!("{cfg:?}").contains("sk-ant-secret"));
        assert!(toml::from_str::<AnthropicConfig>("version = \"x\"").is_err());
    }
}
