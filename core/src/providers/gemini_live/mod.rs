//! Google Gemini Live (BidiGenerateContent over WebSocket) as an [`Agent`].
//!
//! Wire facts: /work/shared/reference/providers.md §0 and §2. One task per session owns
//! the socket (`session.rs`); the protocol rules live in `state.rs` so they are tested
//! without sockets.
//!
//! Caller audio goes up as PCM16 16 kHz, agent audio comes back as PCM16 24 kHz. Gemini's
//! own activity detection ends turns and signals barge-in (`interrupted`), unless the
//! persona asks for local turns: then the call brackets the caller's speech with
//! `activityStart` / `activityEnd`. There is no truncation; a barge-in only drops the rest
//! of the turn's audio. DTMF digits reach the model as streamed text `[DTMF <digit>]`.

mod client_messages;
mod config;
mod connect;
mod server_messages;
mod session;
mod state;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::Instrument;

pub use config::GeminiLiveConfig;

use crate::agent::{Agent, AgentError, AgentPersona, AgentSession, CallInfo};

/// Capacity of the input and event channels of a session.
const CHANNEL_CAPACITY: usize = 256;
/// Rate of the caller audio the API takes (PCM16 mono).
pub const INPUT_RATE: u32 = 16_000;
/// Rate of the agent audio the API sends (PCM16 mono).
pub const OUTPUT_RATE: u32 = state::OUTPUT_RATE;

pub struct GeminiLiveAgent {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: GeminiLiveConfig,
    persona: AgentPersona,
}

impl GeminiLiveAgent {
    pub fn new(cfg: GeminiLiveConfig, persona: AgentPersona) -> Self {
        Self {
            inner: Arc::new(Inner { cfg, persona }),
        }
    }
}

impl Agent for GeminiLiveAgent {
    fn name(&self) -> &'static str {
        "gemini_live"
    }

    fn connect(&self, call: CallInfo) -> BoxFuture<'static, Result<AgentSession, AgentError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let ws = connect::open(&inner.cfg, &inner.persona, &call.history).await?;
            let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let (events_tx, events_rx) = mpsc::channel(CHANNEL_CAPACITY);
            let span = tracing::info_span!("gemini_live", call_id = %call.call_id);
            let state = state::ConversationState::new(inner.persona.local_turns);
            tokio::spawn(session::run(ws, input_rx, events_tx, state).instrument(span));
            Ok(AgentSession {
                input: input_tx,
                events: events_rx,
                input_rate: INPUT_RATE,
                output_rate: OUTPUT_RATE,
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
        let has_key = ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
        if has_key {
            return;
        }
        let agent = GeminiLiveAgent::new(GeminiLiveConfig::default(), Default::default());
        assert_eq!(agent.name(), "gemini_live");
        let err = agent.connect(CallInfo::default()).await.err().unwrap();
        assert!(matches!(err, AgentError::Config(_)), "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_is_refused_not_hung() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let cfg = GeminiLiveConfig {
            url: format!("ws://127.0.0.1:{port}/ws/x"),
            api_key: crate::config::Secret::new("AIza-secret-value"),
            ..Default::default()
        };
        let err = GeminiLiveAgent::new(cfg, Default::default())
            .connect(CallInfo::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, AgentError::Refused(_)), "{err}");
        assert!(!err.to_string().contains("AIza-secret-value"));
    }
}
