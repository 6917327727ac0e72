//! The tenancy rows as the services use them (migrations/0001 and 0002 define the tables).
//! Secrets are never part of these types: a provider instance says only whether it has
//! credentials and their names come from [`super::crypto::Credentials`] when opened.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One FusionPBX domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: Uuid,
    pub domain_uuid: Uuid,
    pub domain_name: String,
    /// IANA zone of the tenant's day (daily metrics).
    pub timezone: String,
    pub enabled: bool,
    /// Calls the bridge runs at once; `None`: no cap.
    pub max_concurrent_calls: Option<i32>,
    /// Extension a call over the cap is transferred to; empty: spoken busy message.
    pub busy_transfer: String,
    /// API requests per minute; `None`: the service default.
    pub requests_per_minute: Option<i32>,
    /// LGPD: process only calls with consent = true; `None`: the service's rule.
    pub require_consent: Option<bool>,
    /// LGPD: days recordings and transcripts are kept; `None`: the service's setting.
    pub retention_days: Option<i32>,
}

/// How an agent talks to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentMode {
    /// A speech-to-speech provider through the bridge.
    Realtime,
    /// STT → LLM → TTS through the bridge.
    Cascaded,
    /// One turn at a time through the turn-api (Lua IVR).
    Turn,
}

impl AgentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMode::Realtime => "realtime",
            AgentMode::Cascaded => "cascaded",
            AgentMode::Turn => "turn",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "realtime" => Some(AgentMode::Realtime),
            "cascaded" => Some(AgentMode::Cascaded),
            "turn" => Some(AgentMode::Turn),
            _ => None,
        }
    }
}

/// An agent: who answers, and how. The JSON objects are in the shapes of the services' TOML
/// sections of the same names (`[agent.vad]`, `[agent.turn]`, …); each service checks them
/// when it builds a call from the row, and the admin API checks them when they are written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub mode: AgentMode,
    pub prompt: String,
    pub language: String,
    pub voice: String,
    pub greeting: String,
    pub vad: Value,
    pub turn: Value,
    pub barge_in: Value,
    pub tools: Value,
    pub handoff: Value,
    pub playout: Value,
    /// Dialled numbers that reach this agent.
    pub numbers: Vec<String>,
    /// The agent for calls whose number no agent claims.
    pub is_default: bool,
    /// Further `[agent]` overrides (failover, prompts, cascaded …).
    pub settings: Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Provider kinds a tenant can hold accounts with (the `provider_instances.kind` check).
pub const PROVIDER_KINDS: &[&str] = &[
    "openai_realtime",
    "gemini_live",
    "elevenlabs_agent",
    "deepgram",
    "openai",
    "groq",
    "anthropic",
    "ollama",
    "elevenlabs",
    "piper",
];

/// A tenant's account with a provider. Credentials are write-only: this says whether there
/// are any, never what they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderInstance {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// One of [`PROVIDER_KINDS`].
    pub kind: String,
    pub name: String,
    /// Non-secret settings (base URL, model, voice …) in the shape of `[providers.<kind>]`.
    pub settings: Value,
    pub has_credentials: bool,
    /// Lower first in the fallback chain.
    pub priority: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowledgeDocument {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `None`: every agent of the tenant may use it.
    pub agent_id: Option<Uuid>,
    pub title: String,
    pub body: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an API key may do. Ordered: each role may do what the ones after it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the tenant, including API keys and provider credentials.
    Admin,
    /// Agents, knowledge and reports; not keys or credentials.
    Supervisor,
    /// What a running service needs: read its configuration, write events and turns.
    Agent,
    /// Read only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "agent" => Some(Role::Agent),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// An API key as listed: never the key, only its prefix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A presented API key that [`super`]'s lookup accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyIdentity {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub role: Role,
}
