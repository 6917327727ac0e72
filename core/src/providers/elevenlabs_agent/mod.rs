//! ElevenLabs Agents (Conversational AI over WebSocket) as an [`Agent`].
//!
//! Wire facts: /work/shared/reference/providers.md §3.2. One task per conversation owns
//! the socket (`session.rs`); the protocol rules live in `state.rs` so they are tested
//! without sockets.
//!
//! A private agent (API key set) is reached through a one-use signed URL; a public one
//! directly with `?agent_id=`. The persona's instructions, language and voice go in the
//! `conversation_config_override` (unless `override_prompt` is off); its tools cannot be
//! sent, since client tools are declared on the agent in ElevenLabs itself. The audio
//! formats are whatever the agent is configured for (read from the metadata). The
//! service detects turns and barge-in itself, so `local_turns` is refused.

mod client_messages;
mod config;
mod connect;
mod server_messages;
mod session;
mod signed_url;
mod state;
mod wire_audio;

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use tracing::debug;

pub use config::ElevenLabsAgentConfig;

use super::ws_session;
use crate::agent::{Agent, AgentError, AgentPersona, AgentSession, CallInfo};

pub struct ElevenLabsAgent {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ElevenLabsAgentConfig,
    persona: AgentPersona,
    /// Built on the first keyed connect and reused (connection pool, TLS roots).
    http: OnceLock<reqwest::Client>,
}

impl ElevenLabsAgent {
    pub fn new(cfg: ElevenLabsAgentConfig, persona: AgentPersona) -> Self {
        if !persona.tools.is_empty() {
            debug!("persona tools are ignored: ElevenLabs client tools live on the agent");
        }
        Self {
            inner: Arc::new(Inner {
                cfg,
                persona,
                http: OnceLock::new(),
            }),
        }
    }
}

impl Agent for ElevenLabsAgent {
    fn name(&self) -> &'static str {
        "elevenlabs_agent"
    }

    fn connect(&self, call: CallInfo) -> BoxFuture<'static, Result<AgentSession, AgentError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let opened = connect::open(&inner.cfg, &inner.persona, &call, &inner.http).await?;
            let span = tracing::info_span!("elevenlabs_agent", call_id = %call.call_id);
            let state = state::ConversationState::new(
                opened.input,
                opened.output,
                inner.cfg.chunk_ms,
                inner.cfg.answer_gap_ms,
            );
            let (input_rate, output_rate) = (opened.input.rate(), opened.output.rate());
            let run = |input, events| session::run(opened.ws, input, events, state, opened.early);
            Ok(ws_session::spawn(span, input_rate, output_rate, run))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::providers::test_support::{
        assert_refused_hiding, closed_port, connect_error, env_has_key,
    };

    #[tokio::test]
    async fn local_turns_and_missing_agent_are_config_errors() {
        let persona = AgentPersona {
            local_turns: true,
            ..Default::default()
        };
        let cfg = ElevenLabsAgentConfig {
            agent_id: "agent_1".into(),
            ..Default::default()
        };
        let agent = ElevenLabsAgent::new(cfg, persona);
        assert_eq!(agent.name(), "elevenlabs_agent");
        let err = connect_error(&agent).await;
        assert!(matches!(err, AgentError::Config(_)), "{err}");
        let agent = ElevenLabsAgent::new(ElevenLabsAgentConfig::default(), Default::default());
        let err = connect_error(&agent).await;
        assert!(matches!(err, AgentError::Config(_)), "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_is_refused_not_hung() {
        let port = closed_port().await;
        for key in ["xi-secret-value", ""] {
            if key.is_empty() && env_has_key(&["ELEVENLABS_API_KEY"]) {
                continue; // the environment would make the agent private
            }
            let cfg = ElevenLabsAgentConfig {
                url: format!("ws://127.0.0.1:{port}/v1/convai/conversation"),
                api_base: format!("http://127.0.0.1:{port}"),
                agent_id: "agent_1".into(),
                api_key: Secret::new(key),
                ..Default::default()
            };
            let agent = ElevenLabsAgent::new(cfg, Default::default());
            assert_refused_hiding(&agent, "xi-secret-value").await;
        }
    }
}
