//! OpenAI Realtime (speech-to-speech over WebSocket) as an [`Agent`].
//!
//! Wire facts: /work/shared/reference/providers.md §1. One task per session owns the socket
//! ([`super::ws_session`], driven through `session.rs`); the protocol rules live in
//! `state.rs` so they are tested without sockets.
//!
//! Audio is PCM16 24 kHz both ways, or G.711 μ-law 8 kHz when `g711_passthrough` is on
//! and the call is 8 kHz. The provider's server VAD detects turns and answers by itself;
//! on barge-in the call sends [`crate::agent::AgentInput::Interrupted`] and the agent
//! cancels and truncates. DTMF digits reach the model as user text `[DTMF <digit>]`.

mod client_events;
mod config;
mod connect;
mod server_events;
mod session;
mod state;
mod wire_audio;

use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use config::{OpenAiRealtimeConfig, Protocol};

use super::ws_session;
use crate::agent::{Agent, AgentError, AgentPersona, AgentSession, CallInfo};
use wire_audio::WireAudio;

pub struct OpenAiRealtimeAgent {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: OpenAiRealtimeConfig,
    persona: AgentPersona,
}

impl OpenAiRealtimeAgent {
    pub fn new(cfg: OpenAiRealtimeConfig, persona: AgentPersona) -> Self {
        Self {
            inner: Arc::new(Inner { cfg, persona }),
        }
    }
}

impl Agent for OpenAiRealtimeAgent {
    fn name(&self) -> &'static str {
        "openai_realtime"
    }

    fn connect(&self, call: CallInfo) -> BoxFuture<'static, Result<AgentSession, AgentError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let wire = WireAudio::for_call(&inner.cfg, call.call_rate);
            let ws = connect::open(&inner.cfg, &inner.persona, wire, &call.history).await?;
            let span = tracing::info_span!("openai_realtime", call_id = %call.call_id);
            let state = state::ConversationState::new(wire);
            let run = |input, events| ws_session::run(ws, input, events, state);
            Ok(ws_session::spawn(span, wire.rate(), wire.rate(), run))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::providers::test_support::{assert_key_required, assert_refused_hiding, closed_port};

    #[tokio::test]
    async fn missing_key_is_a_config_error() {
        let agent = OpenAiRealtimeAgent::new(OpenAiRealtimeConfig::default(), Default::default());
        assert_eq!(agent.name(), "openai_realtime");
        assert_key_required(&agent, &["OPENAI_API_KEY"]).await;
    }

    #[tokio::test]
    async fn unreachable_server_is_refused_not_hung() {
        let cfg = OpenAiRealtimeConfig {
            url: format!("ws://127.0.0.1:{}/v1/realtime", closed_port().await),
            api_key: Secret::new("sk-secret-value"),
            ..Default::default()
        };
        let agent = OpenAiRealtimeAgent::new(cfg, Default::default());
        assert_refused_hiding(&agent, "sk-secret-value").await;
    }
}
