//! `[analyze]`: which chat model analyses and scores calls.

use serde::Deserialize;
use voice_core::config::Secret;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzeSettings {
    /// `openai`, `groq`, `ollama` or `anthropic`.
    pub provider: String,
    /// The whole endpoint URL; empty: the provider's default.
    pub url: String,
    pub model: String,
    /// Empty: the provider's environment variable (`OPENAI_API_KEY`, `GROQ_API_KEY`,
    /// `ANTHROPIC_API_KEY`; none for Ollama).
    pub api_key: Secret,
    /// Longest wait for one whole answer.
    pub timeout_secs: u64,
    /// Requests per stage; an invalid answer is asked again with the reason.
    pub max_attempts: u32,
    /// Longer transcripts keep their beginning and end; the middle is cut.
    pub max_transcript_chars: usize,
    /// Answer length cap, in tokens.
    pub max_tokens: u32,
}

impl Default for AnalyzeSettings {
    fn default() -> Self {
        Self {
            provider: "openai".into(),
            url: String::new(),
            model: "gpt-4o-mini".into(),
            api_key: Secret::default(),
            timeout_secs: 120,
            max_attempts: 3,
            max_transcript_chars: 60_000,
            max_tokens: 4096,
        }
    }
}
