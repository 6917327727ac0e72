//! `[providers.openai_chat]` (and Groq, Ollama: the same API, other settings).

use serde::Deserialize;

use crate::config::Secret;

/// Which OpenAI-compatible service: names the client in logs and metrics, picks the
/// token-limit field, and `ollama` runs without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChatFlavor {
    #[default]
    #[serde(rename = "openai")]
    OpenAi,
    Groq,
    Ollama,
}

/// Settings of an OpenAI-compatible streaming chat client (providers.md §5.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiChatConfig {
    pub flavor: ChatFlavor,
    /// The chat completions endpoint (whole URL).
    pub url: String,
    pub model: String,
    /// Empty: read the environment variable named by `api_key_env` at each request.
    pub api_key: Secret,
    /// Where the key comes from when `api_key` is empty; empty: no key (Ollama).
    pub api_key_env: String,
    /// Unset: the provider's default (reasoning models accept no other).
    pub temperature: Option<f32>,
    /// Answer length cap, unless the request sets its own.
    pub max_tokens: u32,
    /// Until the HTTP status is known (TCP + TLS + the provider accepting the request).
    pub connect_timeout_ms: u64,
    /// From sending the request to the first piece of the answer.
    pub first_token_timeout_ms: u64,
    /// Longest pause inside an answer.
    pub idle_timeout_ms: u64,
}

impl Default for OpenAiChatConfig {
    /// OpenAI: `gpt-4o-mini`, key from `OPENAI_API_KEY`, 300 tokens, timeouts 5 s to the
    /// status, 5 s to the first token, 10 s between chunks.
    fn default() -> Self {
        Self {
            flavor: ChatFlavor::OpenAi,
            url: "https://api.openai.com/v1/chat/completions".into(),
            model: "gpt-4o-mini".into(),
            api_key: Secret::default(),
            api_key_env: "OPENAI_API_KEY".into(),
            temperature: None,
            max_tokens: 300,
            connect_timeout_ms: 5000,
            first_token_timeout_ms: 5000,
            idle_timeout_ms: 10_000,
        }
    }
}

impl OpenAiChatConfig {
    /// Groq: `llama-3.3-70b-versatile`, key from `GROQ_API_KEY`.
    pub fn groq() -> Self {
        Self {
            flavor: ChatFlavor::Groq,
            url: "https://api.groq.com/openai/v1/chat/completions".into(),
            model: "llama-3.3-70b-versatile".into(),
            api_key_env: "GROQ_API_KEY".into(),
            ..Self::default()
        }
    }

    /// A local Ollama: `llama3.2`, no key, more time for the model to load.
    pub fn ollama() -> Self {
        Self {
            flavor: ChatFlavor::Ollama,
            url: "http://localhost:11434/v1/chat/completions".into(),
            model: "llama3.2".into(),
            api_key_env: String::new(),
            first_token_timeout_ms: 15_000,
            ..Self::default()
        }
    }

    /// The name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self.flavor {
            ChatFlavor::OpenAi => "openai_chat",
            ChatFlavor::Groq => "groq",
            ChatFlavor::Ollama => "ollama",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: OpenAiChatConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.flavor, ChatFlavor::OpenAi);
        assert_eq!(cfg.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(
            (cfg.model.as_str(), cfg.api_key_env.as_str()),
            ("gpt-4o-mini", "OPENAI_API_KEY")
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
        assert_eq!(cfg.name(), "openai_chat");
        let groq = OpenAiChatConfig::groq();
        assert_eq!(
            (groq.name(), groq.api_key_env.as_str()),
            ("groq", "GROQ_API_KEY")
        );
        assert!(groq.url.starts_with("https://api.groq.com/openai/v1/"));
        let ollama = OpenAiChatConfig::ollama();
        assert_eq!((ollama.name(), ollama.api_key_env.as_str()), ("ollama", ""));
    }

    #[test]
    fn flavors_parse_keys_hide_and_unknown_keys_fail() {
        let cfg: OpenAiChatConfig =
            toml::from_str("flavor = \"groq\"\napi_key = \"gsk-secret\"\ntemperature = 0.3")
                .unwrap();
        assert_eq!((cfg.flavor, cfg.temperature), (ChatFlavor::Groq, Some(0.3)));
        assert!(!format!("{cfg:?}").contains("gsk-secret"));
        assert!(toml::from_str::<OpenAiChatConfig>("flavor = \"openai_chat\"").is_err());
        assert!(toml::from_str::<OpenAiChatConfig>("modle = \"x\"").is_err());
    }
}
