//! End-of-turn detection with Smart Turn v3.2: when the VAD hears the caller stop, the
//! model listens to the last 8 s and says whether the sentence sounds finished.
//! The spec is pipecat's `LocalSmartTurnAnalyzerV3` / `BaseSmartTurn`.

mod detector;
pub mod mel;
mod smart_turn;
#[cfg(test)]
mod tests;

pub use detector::{TurnDetector, TurnEndReason, TurnSignal, TurnState};
pub use mel::log_mel;
pub use smart_turn::{model_window, SmartTurnModel, MODEL_FILE};

use serde::{Deserialize, Serialize};

use crate::onnx::OnnxError;

/// Who decides that the caller has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnDetection {
    /// The provider's own VAD (realtime agents only): nothing runs locally.
    #[default]
    Provider,
    /// Our VAD, then Smart Turn (when `smart_turn`): the provider is told when to answer.
    Local,
}

/// `[turn]` settings. Defaults are pipecat's, except `probe_ms` (see there).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnSettings {
    pub detection: TurnDetection,
    /// Ask Smart Turn at each pause. Without it, any pause of `min_silence_ms` ends the
    /// turn: raise `min_silence_ms` to 500–800 then.
    pub smart_turn: bool,
    /// Silence after speech before Smart Turn is asked. Pipecat asks after its VAD's
    /// 200 ms stop time; we ask early, after 64 ms (two Silero windows), so that the
    /// ~100 ms inference is done by the time the pause reaches `min_silence_ms`.
    pub probe_ms: u32,
    /// The shortest pause that can end a turn, whatever the model says. Commas and
    /// breaths pause for ~150 ms (espeak-ng pt-BR at 165 wpm: 140–150 ms, and Silero hears
    /// the fade of the syllable before as silence); at 160 ms, 1 in 8 simulated turns was
    /// cut at a comma. A "complete" verdict for a shorter pause is dropped when the caller
    /// goes on.
    pub min_silence_ms: u32,
    /// While the model says "incomplete", ask it again after this much more silence.
    pub reprobe_ms: u32,
    /// When the model is too busy to answer (more turn ends at once than cores can judge),
    /// a pause this long ends the turn, as a plain VAD would: slower, never stuck.
    pub fallback_silence_ms: u32,
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
            detection: TurnDetection::Provider,
            smart_turn: true,
            probe_ms: 64,
            min_silence_ms: 200,
            reprobe_ms: 500,
            fallback_silence_ms: 600,
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
        if self.probe_ms == 0
            || self.probe_ms > self.min_silence_ms
            || self.min_silence_ms >= self.max_silence_ms
        {
            return Err(TurnError::Settings(format!(
                "need 0 < probe_ms ({}) <= min_silence_ms ({}) < max_silence_ms ({})",
                self.probe_ms, self.min_silence_ms, self.max_silence_ms
            )));
        }
        if self.fallback_silence_ms < self.min_silence_ms
            || self.fallback_silence_ms > self.max_silence_ms
        {
            return Err(TurnError::Settings(format!(
                "fallback_silence_ms ({}) must be within min_silence_ms..max_silence_ms",
                self.fallback_silence_ms
            )));
        }
        if self.reprobe_ms < 100 {
            return Err(TurnError::Settings(format!(
                "reprobe_ms must be at least 100 (one inference), got {}",
                self.reprobe_ms
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
