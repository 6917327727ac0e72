//! A database tenant's provider accounts for the bridge: the settings come from
//! voice-core's [`tenant_providers`] (shared with the turn-api, with its rules on keys and
//! addresses); here only the realtime kinds become the bridge's [`ProviderKind`]s.

use voice_core::tenancy::crypto::Credentials;
use voice_core::tenancy::model::ProviderInstance;
pub use voice_core::tenancy::providers::{stage_chains, tenant_providers};

use crate::config::ProviderKind;

/// Realtime providers of the tenant's enabled instances, by priority, each once.
pub fn realtime_chain(instances: &[(ProviderInstance, Option<Credentials>)]) -> Vec<ProviderKind> {
    voice_core::tenancy::providers::realtime_order(instances)
        .iter()
        .filter_map(|kind| match kind.as_str() {
            "openai_realtime" => Some(ProviderKind::OpenaiRealtime),
            "gemini_live" => Some(ProviderKind::GeminiLive),
            "elevenlabs_agent" => Some(ProviderKind::ElevenlabsAgent),
            _ => None,
        })
        .collect()
}
