//! What a session keeps between turns.

use serde::{Deserialize, Serialize};

/// One session: who it belongs to, the engine's conversation state, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    /// The tenant (FusionPBX domain name) whose key created it.
    pub tenant: String,
    pub call_id: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    /// Unix time of creation, in milliseconds.
    pub created_at_ms: u64,
    /// Caller turns answered (the greeting is not one).
    pub turns: u32,
    /// The engine's conversation, opaque here.
    pub conversation: serde_json::Value,
    /// Every exchange, greeting first.
    pub history: Vec<TurnRecord>,
    /// With a database key: the tenant's id (what later requests' keys must match) and the
    /// agent that answers. `None` for TOML tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The caller's consent to recording analysis (LGPD), as the IVR was told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<bool>,
}

/// One exchange, for the end-of-session summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TurnRecord {
    /// 0 for the greeting.
    pub turn: u32,
    pub caller_text: String,
    pub reply_text: String,
    /// `continue`, `transfer` or `hangup`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Session {
    /// How long ago it was created.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.created_at_ms)
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
