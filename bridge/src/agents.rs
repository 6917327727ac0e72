//! Builds the agent a call talks to from its tenant's settings.

use std::sync::Arc;

use voice_core::agent::Agent;
use voice_core::providers::openai_realtime::{AgentPersona, OpenAiRealtimeAgent};

use voice_core::audio::turn::TurnDetection;

use crate::config::{AgentSettings, BridgeConfig, ProviderKind};

pub fn build(cfg: &BridgeConfig, settings: &AgentSettings) -> Arc<dyn Agent> {
    match settings.provider {
        ProviderKind::OpenaiRealtime => Arc::new(OpenAiRealtimeAgent::new(
            cfg.providers.openai_realtime.clone(),
            AgentPersona {
                instructions: settings.instructions.clone(),
                voice: settings.voice.clone(),
                language: settings.language.clone(),
                tools: Vec::new(),
                local_turns: settings.turn.detection == TurnDetection::Local,
            },
        )),
    }
}
