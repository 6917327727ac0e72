//! Builds the agent a call talks to from its tenant's settings.

use std::sync::Arc;

use voice_core::agent::cascaded::CascadedAgent;
use voice_core::agent::{Agent, AgentPersona};
use voice_core::audio::turn::TurnDetection;
use voice_core::providers::catalog::StageInstances;
use voice_core::providers::elevenlabs_agent::ElevenLabsAgent;
use voice_core::providers::gemini_live::GeminiLiveAgent;
use voice_core::providers::openai_realtime::OpenAiRealtimeAgent;

use crate::config::{AgentSettings, ProviderKind, Providers};

/// The agent `settings` describe, spoken by provider `kind` (its own, or a fallback), with
/// the call's provider settings (the tenant's own accounts, or the process's).
/// `new_conversation`: nothing was said yet, so a text-only greeting is the agent's to say
/// (a greeting with audio is the bridge's, played before the agent is even connected).
pub fn build(
    providers: &Providers,
    stages: &StageInstances,
    settings: &AgentSettings,
    kind: ProviderKind,
    new_conversation: bool,
) -> Arc<dyn Agent> {
    let greeting = &settings.prompts.greeting;
    let persona = AgentPersona {
        greeting: if new_conversation && greeting.file.is_empty() {
            greeting.text.clone()
        } else {
            String::new()
        },
        instructions: settings.instructions.clone(),
        voice: settings.voice.clone(),
        language: settings.language.clone(),
        tools: settings.tools.iter().map(|t| t.spec()).collect(),
        local_turns: settings.turn.detection == TurnDetection::Local,
    };
    match kind {
        ProviderKind::OpenaiRealtime => Arc::new(OpenAiRealtimeAgent::new(
            providers.openai_realtime.clone(),
            persona,
        )),
        ProviderKind::GeminiLive => {
            Arc::new(GeminiLiveAgent::new(providers.gemini_live.clone(), persona))
        }
        ProviderKind::ElevenlabsAgent => Arc::new(ElevenLabsAgent::new(
            providers.elevenlabs_agent.clone(),
            persona,
        )),
        ProviderKind::Cascaded => {
            let mut cascaded = settings.cascaded.clone();
            if !settings.barge_in.interrupt_on_backchannel {
                cascaded.backchannels = settings.barge_in.backchannels.clone();
            }
            Arc::new(CascadedAgent::new(
                stages.stages(&settings.cascaded),
                persona,
                cascaded,
            ))
        }
    }
}
