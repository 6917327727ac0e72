//! The admin API's shapes for the OpenAPI document. The store's types live in voice-core,
//! which does not depend on utoipa, so they are described here; tests check both name the
//! same fields (requests: the store's own list of accepted fields; responses: the JSON the
//! server sends).

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// One FusionPBX domain.
#[derive(Serialize, ToSchema)]
#[schema(as = Tenant)]
pub struct TenantDoc {
    #[schema(value_type = String, format = "uuid")]
    pub id: (),
    /// FusionPBX `domain_uuid`.
    #[schema(value_type = String, format = "uuid")]
    pub domain_uuid: (),
    pub domain_name: String,
    /// IANA time zone of the tenant's day (daily metrics).
    pub timezone: String,
    pub enabled: bool,
    /// Calls the bridge runs at once; `null`: no cap.
    pub max_concurrent_calls: Option<i32>,
    /// Extension a call over the cap is transferred to; empty: a spoken busy message.
    pub busy_transfer: String,
    /// API requests per minute; `null`: the service default.
    pub requests_per_minute: Option<i32>,
    /// LGPD: process only calls whose sender said `consent: true`; `null`: the service's
    /// rule (`REQUIRE_CONSENT`).
    pub require_consent: Option<bool>,
    /// LGPD: days recordings and transcripts are kept; `null`: the service's
    /// `RETENTION_DAYS`.
    pub retention_days: Option<i32>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NewTenant)]
pub struct NewTenantDoc {
    #[schema(value_type = String, format = "uuid")]
    pub domain_uuid: (),
    pub domain_name: String,
    /// Default `America/Sao_Paulo`.
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    #[schema(minimum = 0)]
    pub max_concurrent_calls: Option<i32>,
    pub busy_transfer: Option<String>,
    #[schema(minimum = 1)]
    pub requests_per_minute: Option<i32>,
    pub require_consent: Option<bool>,
    #[schema(minimum = 1, maximum = 36500)]
    pub retention_days: Option<i32>,
}

/// Fields left out stay as they are; `null` clears `max_concurrent_calls`,
/// `requests_per_minute`, `require_consent` and `retention_days`.
#[derive(Serialize, ToSchema)]
#[schema(as = TenantPatch)]
pub struct TenantPatchDoc {
    pub domain_name: Option<String>,
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    #[schema(minimum = 0)]
    pub max_concurrent_calls: Option<i32>,
    pub busy_transfer: Option<String>,
    #[schema(minimum = 1)]
    pub requests_per_minute: Option<i32>,
    pub require_consent: Option<bool>,
    #[schema(minimum = 1, maximum = 36500)]
    pub retention_days: Option<i32>,
}

/// How an agent talks to callers.
#[derive(Serialize, ToSchema)]
#[schema(as = AgentMode)]
#[serde(rename_all = "snake_case")]
pub enum AgentModeDoc {
    Realtime,
    Cascaded,
    Turn,
}

/// An agent: who answers, and how. The objects have the shapes of the services' TOML sections
/// of the same names (`[agent.vad]`, `[agent.turn]`, …).
#[derive(Serialize, ToSchema)]
#[schema(as = Agent)]
pub struct AgentDoc {
    #[schema(value_type = String, format = "uuid")]
    pub id: (),
    #[schema(value_type = String, format = "uuid")]
    pub tenant_id: (),
    pub name: String,
    pub mode: AgentModeDoc,
    pub prompt: String,
    pub language: String,
    pub voice: String,
    pub greeting: String,
    #[schema(value_type = Object)]
    pub vad: (),
    #[schema(value_type = Object)]
    pub turn: (),
    #[schema(value_type = Object)]
    pub barge_in: (),
    #[schema(value_type = Vec<Object>)]
    pub tools: (),
    #[schema(value_type = Object)]
    pub handoff: (),
    #[schema(value_type = Object)]
    pub playout: (),
    /// Dialled numbers that reach this agent.
    pub numbers: Vec<String>,
    /// The agent for calls whose number no agent claims (one per tenant).
    pub is_default: bool,
    /// Further `[agent]` overrides.
    #[schema(value_type = Object)]
    pub settings: (),
    pub enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: (),
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: (),
}

#[derive(Serialize, ToSchema)]
#[schema(as = NewAgent)]
pub struct NewAgentDoc {
    pub name: String,
    pub mode: Option<AgentModeDoc>,
    pub prompt: Option<String>,
    pub language: Option<String>,
    pub voice: Option<String>,
    pub greeting: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub vad: (),
    #[schema(value_type = Option<Object>)]
    pub turn: (),
    #[schema(value_type = Option<Object>)]
    pub barge_in: (),
    #[schema(value_type = Option<Object>)]
    pub handoff: (),
    #[schema(value_type = Option<Object>)]
    pub playout: (),
    #[schema(value_type = Option<Object>)]
    pub settings: (),
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: (),
    /// A number another agent of the tenant claims: 409.
    pub numbers: Option<Vec<String>>,
    pub is_default: Option<bool>,
    pub enabled: Option<bool>,
}

/// Fields left out stay as they are.
#[derive(Serialize, ToSchema)]
#[schema(as = AgentPatch)]
pub struct AgentPatchDoc {
    pub name: Option<String>,
    pub mode: Option<AgentModeDoc>,
    pub prompt: Option<String>,
    pub language: Option<String>,
    pub voice: Option<String>,
    pub greeting: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub vad: (),
    #[schema(value_type = Option<Object>)]
    pub turn: (),
    #[schema(value_type = Option<Object>)]
    pub barge_in: (),
    #[schema(value_type = Option<Object>)]
    pub handoff: (),
    #[schema(value_type = Option<Object>)]
    pub playout: (),
    #[schema(value_type = Option<Object>)]
    pub settings: (),
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: (),
    pub numbers: Option<Vec<String>>,
    pub is_default: Option<bool>,
    pub enabled: Option<bool>,
}

/// A tenant's account with a provider. Credentials are write-only: only whether there are any.
#[derive(Serialize, ToSchema)]
#[schema(as = ProviderInstance)]
pub struct ProviderDoc {
    #[schema(value_type = String, format = "uuid")]
    pub id: (),
    #[schema(value_type = String, format = "uuid")]
    pub tenant_id: (),
    /// `openai_realtime`, `gemini_live`, `elevenlabs_agent`, `deepgram`, `openai`, `groq`,
    /// `anthropic`, `ollama`, `elevenlabs` or `piper`.
    pub kind: String,
    pub name: String,
    /// Non-secret settings (base URL, model, voice …) in the shape of `[providers.<kind>]`.
    #[schema(value_type = Object)]
    pub settings: (),
    pub has_credentials: bool,
    /// Lower first in the fallback chain.
    pub priority: i32,
    pub enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: (),
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: (),
}

#[derive(Serialize, ToSchema)]
#[schema(as = NewProvider)]
pub struct NewProviderDoc {
    pub kind: String,
    pub name: String,
    #[schema(value_type = Option<Object>)]
    pub settings: (),
    /// Secrets by name (`{"api_key": "…"}`; names of a-z, 0-9 and _). Write-only: sealed with
    /// VOICE_CREDENTIALS_KEY (503 when it is not set) and never shown again.
    pub credentials: Option<std::collections::BTreeMap<String, String>>,
    #[schema(minimum = 0)]
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
}

/// Fields left out stay as they are; `"credentials": null` removes the credentials.
#[derive(Serialize, ToSchema)]
#[schema(as = ProviderPatch)]
pub struct ProviderPatchDoc {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: (),
    pub credentials: Option<std::collections::BTreeMap<String, String>>,
    #[schema(minimum = 0)]
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = KnowledgeDocument)]
pub struct DocumentDoc {
    #[schema(value_type = String, format = "uuid")]
    pub id: (),
    #[schema(value_type = String, format = "uuid")]
    pub tenant_id: (),
    /// `null`: every agent of the tenant may use it.
    #[schema(value_type = Option<String>, format = "uuid")]
    pub agent_id: (),
    pub title: String,
    pub body: String,
    pub source: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: (),
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: (),
}

#[derive(Serialize, ToSchema)]
#[schema(as = NewDocument)]
pub struct NewDocumentDoc {
    /// An agent of the tenant; `null`/absent: tenant-wide.
    #[schema(value_type = Option<String>, format = "uuid")]
    pub agent_id: (),
    pub title: Option<String>,
    pub body: String,
    pub source: Option<String>,
}

/// Fields left out stay as they are; `"agent_id": null` makes the document tenant-wide.
#[derive(Serialize, ToSchema)]
#[schema(as = DocumentPatch)]
pub struct DocumentPatchDoc {
    #[schema(value_type = Option<String>, format = "uuid")]
    pub agent_id: (),
    pub title: Option<String>,
    pub body: Option<String>,
    pub source: Option<String>,
}

/// A knowledge search result, best first.
#[derive(Serialize, ToSchema)]
#[schema(as = KnowledgeHit)]
pub struct KnowledgeHitDoc {
    #[schema(value_type = String, format = "uuid")]
    pub id: (),
    pub title: String,
    pub text: String,
    pub rank: f32,
}

/// What an API key may do: `viewer` reads; `agent` also searches knowledge; `supervisor` also
/// writes agents and knowledge; `admin` also writes providers (credentials) and manages keys.
#[derive(Serialize, ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "snake_case")]
pub enum RoleDoc {
    Admin,
    Supervisor,
    Agent,
    Viewer,
}

/// An API key as listed: never the key, only its prefix.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyDoc {
    #[schema(value_type = String, format = "uuid")]
    pub id: (),
    #[schema(value_type = String, format = "uuid")]
    pub tenant_id: (),
    pub name: String,
    pub role: RoleDoc,
    pub prefix: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: (),
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: (),
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: (),
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: (),
}

#[derive(Serialize, ToSchema)]
#[schema(as = NewApiKey)]
pub struct NewApiKeyDoc {
    pub name: Option<String>,
    pub role: RoleDoc,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: (),
}

/// A new key: the record, and the key itself, shown this once only.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedApiKey)]
pub struct CreatedApiKeyDoc {
    /// `vk_…`: send as `Authorization: Bearer <key>` or `X-API-Key`. Not stored, not shown again.
    pub key: String,
    pub api_key: ApiKeyDoc,
}
