//! End-of-turn detection with Smart Turn v3.2: when the VAD hears the caller stop, the
//! model listens to the last 8 s and says whether the sentence sounds finished.
//! The spec is pipecat's `LocalSmartTurnAnalyzerV3` / `BaseSmartTurn`.

mod detector;
pub mod mel;
mod smart_turn;
#[cfg(test)]
mod tests;

pub use detector::{TurnDetector, TurnState};
pub use mel::log_mel;
pub use smart_turn::{model_window, SmartTurnModel, MODEL_FILE};

use serde::Deserialize;

use crate::onnx::OnnxError;

/// `[turn]` settings. Defaults are pipecat's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnSettings {
    /// The turn is complete when the model's probability is above this.
    pub threshold: f32,
    /// Silence after which the turn ends whatever the model says (pipecat `stop_secs`).
    pub max_silence_ms: u32,
    /// Audio kept from before the VAD first heard speech (its onset is late).
    pub pre_speech_ms: u32,
}

impl Default for TurnSettings {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            max_silence_ms: 3000,
            pre_speech_ms: 500,
        }
    }
}

impl TurnSettings {
    pub fn validate(&self) -> Result<(), TurnError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(TurnError::Settings(format!(
                "threshold must be within 0..1, got {}",
                self.threshold
            )));
        }
        if self.max_silence_ms == 0 || self.max_silence_ms > 60_000 {
            return Err(TurnError::Settings(format!(
                "max_silence_ms must be within 1..60000, got {}",
                self.max_silence_ms
            )));
        }
        if self.pre_speech_ms > 8000 {
            return Err(TurnError::Settings(format!(
                "pre_speech_ms must be at most 8000, got {}",
                self.pre_speech_ms
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("smart turn inference failed: {0}")]
    Inference(String),
    #[error("smart turn features must be 80 x 800 values, got {0}")]
    FeatureShape(usize),
    #[error("invalid turn settings: {0}")]
    Settings(String),
}
