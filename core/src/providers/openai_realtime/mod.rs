//! OpenAI Realtime (speech-to-speech over WebSocket) as an [`Agent`].
//!
//! Wire facts: /work/shared/reference/providers.md §1. One task per session owns the socket
//! (`session.rs`); the protocol rules live in `state.rs` so they are tested without sockets.
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
use tokio::sync::mpsc;
use tracing::Instrument;

pub use config::{OpenAiRealtimeConfig, Protocol};

use crate::agent::{Agent, AgentError, AgentPersona, AgentSession, CallInfo};
use wire_audio::WireAudio;

/// Capacity of the input and event channels of a session.
const CHANNEL_CAPACITY: usize = 256;

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
            let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let (events_tx, events_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let span = tracing::info_span!("openai_realtime", call_id = %call.call_id);
            let state = state::ConversationState::new(wire);
            tokio::spawn(session::run(ws, input_rx, events_tx, state).instrument(span));
            Ok(AgentSession {
                input: input_tx,
                events: events_rx,
                input_rate: wire.rate(),
                output_rate: wire.rate(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_key_is_a_config_error() {
        // Only meaningful when the environment has no key; skip otherwise.
        if std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
            return;
        }
        let agent = OpenAiRealtimeAgent::new(OpenAiRealtimeConfig::default(), Default::default());
        assert_eq!(agent.name(), "openai_realtime");
        let err = agent.connect(CallInfo::default()).await.err().unwrap();
        assert!(matches!(err, AgentError::Config(_)), "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_is_refused_not_hung() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let cfg = OpenAiRealtimeConfig {
            url: format!("ws://127.0.0.1:{port}/v1/realtime"),
            api_key: crate::config::Secret::new("sk-secret-value"),
            ..Default::default()
        };
        let err = OpenAiRealtimeAgent::new(cfg, Default::default())
            .connect(CallInfo::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, AgentError::Refused(_)), "{err}");
        assert!(!err.to_string().contains("sk-secret-value"));
    }
}
