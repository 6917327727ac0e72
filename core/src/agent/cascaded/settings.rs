//! `[agent.cascaded]` settings: stage timeouts, preemptive generation, the prompt guard.

use serde::Deserialize;

use super::guard::GuardSettings;
use crate::providers::catalog::{LlmKind, SttKind, TtsKind};

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CascadedSettings {
    /// Speech-to-text providers, tried in order (`[providers.<name>]` configures each).
    pub stt: Vec<SttKind>,
    /// Chat models, tried in order.
    pub llm: Vec<LlmKind>,
    /// Text-to-speech providers, tried in order.
    pub tts: Vec<TtsKind>,
    /// Rate the caller's audio is given to STT at.
    pub stt_rate: u32,
    /// After the turn ends, how long STT may take to give its final before the next STT
    /// provider gets the turn's audio.
    pub stt_final_timeout_ms: u64,
    /// How long an LLM may take to its first token before the next LLM gets the request.
    pub llm_first_token_timeout_ms: u64,
    /// How long a TTS may take from the first text to its first audio before the next TTS
    /// gets the text.
    pub tts_first_audio_timeout_ms: u64,
    /// How long a tool may run before the LLM is told it failed.
    pub tool_timeout_ms: u64,
    /// Start the LLM on a confident STT final before the turn is decided; its answer is
    /// held back, and thrown away if the caller goes on.
    pub preemptive_generation: bool,
    /// Messages of history sent to the LLM (oldest dropped first).
    pub max_history_messages: usize,
    /// Tool rounds in one answer before the agent must answer in words.
    pub max_tool_rounds: u32,
    /// Caller audio kept for the current turn, replayed to the next STT provider if the
    /// current one fails mid-turn.
    pub replay_buffer_ms: u64,
    pub guard: GuardSettings,
    /// Words that only acknowledge ("aham", "sim"): a caller turn of nothing else, said
    /// over an answer, resumes that answer instead of being answered. Empty: every turn is
    /// answered. Set by the bridge from its barge-in settings.
    #[serde(skip)]
    pub backchannels: Vec<String>,
}

impl Default for CascadedSettings {
    fn default() -> Self {
        Self {
            stt: vec![SttKind::Deepgram, SttKind::OpenaiTranscribe],
            llm: vec![LlmKind::Groq, LlmKind::OpenaiChat],
            tts: vec![TtsKind::ElevenlabsTts, TtsKind::OpenaiSpeech],
            stt_rate: 16_000,
            stt_final_timeout_ms: 1000,
            llm_first_token_timeout_ms: 2500,
            tts_first_audio_timeout_ms: 1500,
            tool_timeout_ms: 10_000,
            preemptive_generation: true,
            max_history_messages: 40,
            max_tool_rounds: 4,
            replay_buffer_ms: 15_000,
            guard: GuardSettings::default(),
            backchannels: Vec::new(),
        }
    }
}

impl CascadedSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.stt.is_empty() || self.llm.is_empty() || self.tts.is_empty() {
            return Err("stt, llm and tts each need at least one provider".into());
        }
        if !(8000..=48_000).contains(&self.stt_rate) {
            return Err(format!("stt_rate {} is not 8000–48000", self.stt_rate));
        }
        for (name, v) in [
            ("stt_final_timeout_ms", self.stt_final_timeout_ms),
            (
                "llm_first_token_timeout_ms",
                self.llm_first_token_timeout_ms,
            ),
            (
                "tts_first_audio_timeout_ms",
                self.tts_first_audio_timeout_ms,
            ),
            ("tool_timeout_ms", self.tool_timeout_ms),
        ] {
            if !(50..=120_000).contains(&v) {
                return Err(format!("{name} {v} is not 50–120000"));
            }
        }
        if self.max_history_messages < 2 {
            return Err("max_history_messages must be at least 2".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_empty_chains_do_not() {
        assert!(CascadedSettings::default().validate().is_ok());
        let s: CascadedSettings = toml::from_str("stt = []").unwrap();
        assert!(s.validate().unwrap_err().contains("at least one"));
        let s: CascadedSettings = toml::from_str("stt_final_timeout_ms = 10").unwrap();
        assert!(s.validate().is_err());
        let s: CascadedSettings =
            toml::from_str("llm = [\"anthropic\", \"ollama\"]\ntts = [\"piper\"]").unwrap();
        assert_eq!(s.llm, vec![LlmKind::Anthropic, LlmKind::Ollama]);
        assert!(toml::from_str::<CascadedSettings>("llm = [\"gpt\"]").is_err());
    }
}
