//! VAD configuration (the `[vad]` table), with peer defaults.

use serde::{Deserialize, Serialize};

use super::VadError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VadEngine {
    /// Silero v5 over ONNX Runtime: robust to noise, ~32 ms windows.
    #[default]
    Silero,
    /// WebRTC (libfvad) GMM: nearly free, but fires on steady noise.
    Webrtc,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadSettings {
    pub engine: VadEngine,
    /// Silero speech probability that starts speech (upstream, LiveKit, jambonz: 0.5).
    /// While speaking, `threshold − 0.15` keeps it going.
    pub threshold: f32,
    /// WebRTC aggressiveness 0 (quality) … 3 (very aggressive); jambonz uses 2.
    pub webrtc_mode: u8,
    /// Speech must last this long to start (Pipecat 200 ms, jambonz 250 ms).
    pub start_ms: u32,
    /// Silence must last this long to stop (Pipecat 200 ms, LiveKit 250–550 ms).
    pub stop_ms: u32,
    /// Level floor as RMS in dBFS (0 = full scale) over one model window: anything quieter
    /// is never speech, whatever the model says. −50 dBFS sits well above line noise and
    /// comfort noise (−60…−70) and well below quiet telephone speech (−35).
    pub min_volume_dbfs: f32,
}

impl Default for VadSettings {
    fn default() -> Self {
        Self {
            engine: VadEngine::Silero,
            threshold: 0.5,
            webrtc_mode: 2,
            start_ms: 200,
            stop_ms: 250,
            min_volume_dbfs: -50.0,
        }
    }
}

/// Longest accepted start/stop hold: beyond this a turn would never be noticed.
const MAX_HOLD_MS: u32 = 10_000;

impl VadSettings {
    pub fn validate(&self) -> Result<(), VadError> {
        let bad = |msg: String| Err(VadError::Settings(msg));
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return bad(format!("threshold {} must be in (0, 1)", self.threshold));
        }
        if self.webrtc_mode > 3 {
            return bad(format!("webrtc_mode {} must be 0..=3", self.webrtc_mode));
        }
        if self.start_ms > MAX_HOLD_MS || self.stop_ms > MAX_HOLD_MS {
            return bad(format!(
                "start_ms {} / stop_ms {} must be at most {MAX_HOLD_MS}",
                self.start_ms, self.stop_ms
            ));
        }
        if !(-120.0..=0.0).contains(&self.min_volume_dbfs) {
            return bad(format!(
                "min_volume_dbfs {} must be in [-120, 0]",
                self.min_volume_dbfs
            ));
        }
        Ok(())
    }

    /// `min_volume_dbfs` as a linear RMS in i16 units (what `pcm::rms` returns).
    pub fn min_rms(&self) -> f64 {
        32768.0 * 10f64.powf(f64::from(self.min_volume_dbfs) / 20.0)
    }
}
