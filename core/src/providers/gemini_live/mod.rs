//! Google Gemini Live (BidiGenerateContent over WebSocket) as an [`Agent`].
//!
//! Wire facts: /work/shared/reference/providers.md §0 and §2. One task per session owns
//! the socket ([`super::ws_session`], driven through `session.rs`); the protocol rules
//! live in `state.rs` so they are tested without sockets.
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

pub use config::GeminiLiveConfig;

use super::ws_session;
use crate::agent::{Agent, AgentError, AgentPersona, AgentSession, CallInfo};

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
            let span = tracing::info_span!("gemini_live", call_id = %call.call_id);
            let state = state::ConversationState::new(inner.persona.local_turns);
            let run = |input, events| ws_session::run(ws, input, events, state);
            Ok(ws_session::spawn(span, INPUT_RATE, OUTPUT_RATE, run))
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
        let agent = GeminiLiveAgent::new(GeminiLiveConfig::default(), Default::default());
        assert_eq!(agent.name(), "gemini_live");
        assert_key_required(&agent, &["GEMINI_API_KEY", "GOOGLE_API_KEY"]).await;
    }

    #[tokio::test]
    async fn unreachable_server_is_refused_not_hung() {
        let cfg = GeminiLiveConfig {
            url: format!("ws://127.0.0.1:{}/ws/x", closed_port().await),
            api_key: Secret::new("AIza-secret-value"),
            ..Default::default()
        };
        let agent = GeminiLiveAgent::new(cfg, Default::default());
        assert_refused_hiding(&agent, "AIza-secret-value").await;
    }
}
