//! The ONNX models every call's front end shares, loaded once at start so a missing model
//! is one clear error then, not a failure on the first call.

use std::path::Path;
use std::sync::Arc;

use voice_core::audio::turn::{SmartTurnModel, TurnDetection};
use voice_core::audio::vad::{SileroModel, VadEngine};

use crate::config::AgentSettings;

#[derive(Clone, Default)]
pub struct FrontEndModels {
    pub silero: Option<Arc<SileroModel>>,
    pub smart_turn: Option<Arc<SmartTurnModel>>,
    /// Smart Turn inferences running or queued. Beyond this the machine cannot keep up:
    /// a probe is skipped (that pause falls back to plain VAD timing) instead of queueing
    /// work whose answer would come too late anyway.
    pub smart_turn_slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl FrontEndModels {
    /// Loads what `agents` (the default agent and every tenant's) need from `dir`.
    pub fn load<'a>(
        agents: impl IntoIterator<Item = &'a AgentSettings>,
        dir: &Path,
    ) -> Result<Self, String> {
        let local: Vec<_> = agents
            .into_iter()
            .filter(|a| a.turn.detection == TurnDetection::Local)
            .collect();
        let mut models = Self::default();
        if local.iter().any(|a| a.vad.engine == VadEngine::Silero) {
            let silero = SileroModel::load(dir).map_err(|e| format!("Silero VAD: {e}"))?;
            models.silero = Some(Arc::new(silero));
        }
        if local.iter().any(|a| a.turn.smart_turn) {
            let smart_turn = SmartTurnModel::load(dir).map_err(|e| format!("Smart Turn: {e}"))?;
            // Enough for every session to have one running and one waiting.
            let slots = 2 * smart_turn.sessions();
            models.smart_turn = Some(smart_turn);
            models.smart_turn_slots = Some(Arc::new(tokio::sync::Semaphore::new(slots)));
        }
        Ok(models)
    }
}
