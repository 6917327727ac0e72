//! `[providers.elevenlabs_agent]` settings.

use serde::Deserialize;

use crate::config::Secret;

/// Connection settings for an ElevenLabs Agents (Conversational AI) conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElevenLabsAgentConfig {
    /// Conversation endpoint for public agents (`?agent_id=` is added); `ws://` for fakes.
    pub url: String,
    /// REST base for `get_signed_url`; `http://` for fakes.
    pub api_base: String,
    /// The agent to talk to (required).
    pub agent_id: String,
    /// Empty: use `ELEVENLABS_API_KEY`; still empty: the agent is public (no signed URL).
    pub api_key: Secret,
    /// Budget for signed URL + TCP/TLS + upgrade + `conversation_initiation_metadata`.
    pub connect_timeout_ms: u64,
    /// Send the persona's instructions, language and voice as `conversation_config_override`.
    /// Agents that forbid overrides reject the conversation: set this to false for them.
    pub override_prompt: bool,
    /// Caller audio per `user_audio_chunk`. The docs suggest 250 ms, but every ms held
    /// here is added to the turn: 100 ms chunks measured 63 ms more turn latency (p50)
    /// than 20 ms ones under `voice-sim load`.
    pub chunk_ms: u32,
    /// ElevenLabs has no end-of-audio event: an answer counts as over once no audio came
    /// for this long after its `agent_response` (see `state.rs`).
    pub answer_gap_ms: u64,
}

impl Default for ElevenLabsAgentConfig {
    fn default() -> Self {
        Self {
            url: "wss://api.elevenlabs.io/v1/convai/conversation".into(),
            api_base: "https://api.elevenlabs.io".into(),
            agent_id: String::new(),
            api_key: Secret::default(),
            connect_timeout_ms: 5000,
            override_prompt: true,
            chunk_ms: 20,
            answer_gap_ms: 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: ElevenLabsAgentConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.url, "wss://api.elevenlabs.io/v1/convai/conversation");
        assert_eq!(cfg.api_base, "https://api.elevenlabs.io");
        assert_eq!(cfg.connect_timeout_ms, 5000);
        assert!(cfg.override_prompt);
        assert_eq!((cfg.chunk_ms, cfg.answer_gap_ms), (20, 500));
        assert!(cfg.agent_id.is_empty() && cfg.api_key.is_empty());
    }

    #[test]
    fn key_is_hidden_and_unknown_keys_rejected() {
        let cfg: ElevenLabsAgentConfig =
            toml::from_str("agent_id = \"agent_1\"\napi_key = \"xi-secret\"").unwrap();
        assert_eq!(cfg.agent_id, "agent_1");
        assert!(!format!("{cfg:?}").contains("xi-secret"));
        assert!(toml::from_str::<ElevenLabsAgentConfig>("agentid = \"x\"").is_err());
    }
}
