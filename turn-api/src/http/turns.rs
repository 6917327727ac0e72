//! What the HTTP layer needs from a conversation engine: a greeting and one turn at a time.
//! The conversation state is opaque JSON here, so the session store keeps it without
//! knowing its shape.

use futures_util::future::BoxFuture;
use serde::Serialize;

/// What the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NextAction {
    Continue,
    Transfer { target: String },
    Hangup,
}

impl NextAction {
    pub fn name(&self) -> &'static str {
        match self {
            NextAction::Continue => "continue",
            NextAction::Transfer { .. } => "transfer",
            NextAction::Hangup => "hangup",
        }
    }

    pub fn target(&self) -> Option<String> {
        match self {
            NextAction::Transfer { target } => Some(target.clone()),
            _ => None,
        }
    }
}

/// One answer of the engine.
#[derive(Debug, Clone)]
pub struct Reply {
    /// What the caller said (empty for the greeting).
    pub caller_text: String,
    pub reply_text: String,
    /// Mono PCM16 at `audio_rate`.
    pub audio: Vec<i16>,
    pub audio_rate: u32,
    pub action: NextAction,
    /// Per-stage durations, as the engine reports them.
    pub timings: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnsError {
    /// The recording cannot be used (400).
    #[error("bad audio: {0}")]
    BadAudio(String),
    /// A provider refused or failed (502).
    #[error("provider failed: {0}")]
    Provider(String),
    /// Every provider is unreachable or timed out (503).
    #[error("providers unavailable: {0}")]
    Unavailable(String),
    /// The stored conversation cannot be used (500).
    #[error("conversation state: {0}")]
    State(String),
}

/// A conversation engine. `conversation` is `null` before the greeting.
pub trait Turns: Send + Sync {
    fn greeting<'a>(
        &'a self,
        conversation: &'a mut serde_json::Value,
    ) -> BoxFuture<'a, Result<Reply, TurnsError>>;

    fn turn<'a>(
        &'a self,
        conversation: &'a mut serde_json::Value,
        audio: &'a [i16],
        rate: u32,
    ) -> BoxFuture<'a, Result<Reply, TurnsError>>;

    /// Each provider the engine uses and its state (`configured`, `not configured`), for
    /// `/healthz`.
    fn providers(&self) -> serde_json::Map<String, serde_json::Value>;
}
