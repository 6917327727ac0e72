//! Voice activity detection: one per-call [`Vad`] in front of a [`SpeechModel`] (Silero v5
//! over ONNX Runtime, or WebRTC VAD), with start/stop hysteresis.
//!
//! Feed mono i16 at the call rate (8 or 16 kHz) in any chunk size; the model sees fixed
//! windows (Silero 32 ms, WebRTC 20 ms) and [`Vad::push`] reports [`VadEvent`]s with
//! stream-time positions.

mod gate;
mod settings;
pub mod silero;
pub mod webrtc;

use std::path::Path;
use std::sync::Arc;

pub use gate::Gate;
pub use settings::{VadEngine, VadSettings};
pub use silero::{SileroModel, SileroStream};
pub use webrtc::WebrtcModel;

#[derive(Debug, Clone, thiserror::Error)]
pub enum VadError {
    #[error("invalid VAD settings: {0}")]
    Settings(String),
    #[error("VAD does not support {0} Hz audio (8000 or 16000)")]
    Rate(u32),
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxError),
    #[error("Silero VAD model: {0}")]
    Model(String),
    #[error("Silero VAD inference failed: {0}")]
    Inference(String),
    #[error("WebRTC VAD rejected a {0}-sample frame")]
    Frame(usize),
}

/// Quiet windows (below the volume floor) the model still sees before it is skipped.
const QUIET_WINDOWS_BEFORE_SKIP: u32 = 8;

/// A speech boundary. `at_ms` is where in the stream (ms of audio fed to this [`Vad`])
/// speech began or ended; the event itself is reported `start_ms` / `stop_ms` later, once
/// the hysteresis confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    SpeechStart { at_ms: u64 },
    SpeechEnd { at_ms: u64 },
}

/// A classifier of fixed-size windows: the engine behind a [`Vad`].
pub trait SpeechModel: Send {
    /// Samples per window at this model's rate.
    fn window_samples(&self) -> usize;
    /// Speech probability in [0, 1] for one window of exactly `window_samples()` samples.
    fn speech_probability(&mut self, window: &[i16]) -> Result<f32, VadError>;
    /// Forgets all stream state (a new call or a discontinuity).
    fn reset(&mut self);
}

/// Makes per-call [`Vad`]s; holds what calls share (the Silero session). Build it once at
/// start-up so a missing model is reported then, not on the first call.
pub struct VadFactory {
    settings: VadSettings,
    silero: Option<Arc<SileroModel>>,
}

impl VadFactory {
    /// Validates `settings` and, for Silero, loads ONNX Runtime and the model from
    /// `models_dir` (see [`crate::onnx::models_dir`]).
    pub fn new(settings: VadSettings, models_dir: &Path) -> Result<Self, VadError> {
        settings.validate()?;
        let silero = match settings.engine {
            VadEngine::Silero => Some(Arc::new(SileroModel::load(models_dir)?)),
            VadEngine::Webrtc => None,
        };
        Ok(Self { settings, silero })
    }

    pub fn settings(&self) -> &VadSettings {
        &self.settings
    }

    /// A detector for one call whose audio is at `rate` Hz (8000 or 16000).
    pub fn for_call(&self, rate: u32) -> Result<Vad, VadError> {
        let model: Box<dyn SpeechModel> = match &self.silero {
            Some(shared) => Box::new(SileroStream::new(shared.clone(), rate)?),
            None => Box::new(WebrtcModel::new(rate, self.settings.webrtc_mode)?),
        };
        Vad::new(model, rate, &self.settings)
    }
}

/// Per-call detector: buffers arbitrary chunks into model windows and runs the hysteresis.
pub struct Vad {
    model: Box<dyn SpeechModel>,
    gate: Gate,
    rate: u32,
    threshold: f32,
    /// While speaking, windows down to this probability still count as speech (upstream
    /// Silero and LiveKit use threshold − 0.15), so speech is not cut at soft syllables.
    continue_threshold: f32,
    min_rms: f64,
    pending: Vec<i16>,
    samples_seen: u64,
    probability: f32,
    /// The last classified window was speech (before hysteresis).
    window_speech: bool,
    /// Stream position (ms) where the last speech window ended.
    last_speech_ms: Option<u64>,
    /// Consecutive windows below the volume floor.
    quiet_windows: u32,
}

impl Vad {
    pub fn new(
        model: Box<dyn SpeechModel>,
        rate: u32,
        settings: &VadSettings,
    ) -> Result<Self, VadError> {
        settings.validate()?;
        if rate != 8000 && rate != 16000 {
            return Err(VadError::Rate(rate));
        }
        Ok(Self {
            pending: Vec::with_capacity(model.window_samples() * 2),
            model,
            gate: Gate::new(settings.start_ms, settings.stop_ms),
            rate,
            threshold: settings.threshold,
            continue_threshold: (settings.threshold - 0.15).max(0.01),
            min_rms: settings.min_rms(),
            samples_seen: 0,
            probability: 0.0,
            window_speech: false,
            last_speech_ms: None,
            quiet_windows: 0,
        })
    }

    /// Feeds `samples`; appends any boundaries they complete to `events`. On a model
    /// error the failing window is dropped (and still counted in the stream position).
    pub fn push(&mut self, samples: &[i16], events: &mut Vec<VadEvent>) -> Result<(), VadError> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(samples);
        let window = self.model.window_samples();
        let mut used = 0;
        let mut result = Ok(());
        while pending.len() - used >= window {
            let chunk = &pending[used..used + window];
            used += window;
            let from_ms = self.ms(self.samples_seen);
            self.samples_seen += window as u64;
            match self.classify(chunk) {
                Ok(speech) => {
                    let to_ms = self.ms(self.samples_seen);
                    self.window_speech = speech;
                    if speech {
                        self.last_speech_ms = Some(to_ms);
                    }
                    events.extend(self.gate.update(speech, from_ms, to_ms));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        pending.drain(..used);
        self.pending = pending;
        result
    }

    fn ms(&self, samples: u64) -> u64 {
        samples * 1000 / u64::from(self.rate)
    }

    fn classify(&mut self, window: &[i16]) -> Result<bool, VadError> {
        let loud = super::pcm::rms(window) >= self.min_rms;
        // Below the volume floor a window is never speech. After a few such windows (so
        // the model's state has seen the speech end) the model is not run at all: most of
        // a call is the caller listening, and this is most of the VAD's cost. Its state
        // starts over when sound comes back, as at the start of a stream.
        if !loud {
            self.quiet_windows = self.quiet_windows.saturating_add(1);
            if self.quiet_windows > QUIET_WINDOWS_BEFORE_SKIP {
                self.probability = 0.0;
                return Ok(false);
            }
        } else {
            if self.quiet_windows > QUIET_WINDOWS_BEFORE_SKIP {
                self.model.reset();
            }
            self.quiet_windows = 0;
        }
        self.probability = self.model.speech_probability(window)?;
        let limit = if self.gate.is_speaking() {
            self.continue_threshold
        } else {
            self.threshold
        };
        Ok(loud && self.probability >= limit)
    }

    pub fn is_speaking(&self) -> bool {
        self.gate.is_speaking()
    }

    /// The probability at which speech starts (`VadSettings::threshold`).
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The model's speech probability for the last window (WebRTC: 0 or 1).
    pub fn probability(&self) -> f32 {
        self.probability
    }

    /// Milliseconds of audio classified so far (a partial window is not counted).
    pub fn position_ms(&self) -> u64 {
        self.ms(self.samples_seen)
    }

    /// Milliseconds of audio fed so far, including a partial window not yet classified.
    pub fn received_ms(&self) -> u64 {
        self.ms(self.samples_seen + self.pending.len() as u64)
    }

    /// Whether the last classified window was speech, before any hysteresis: what a turn
    /// detector counts silence by.
    pub fn window_is_speech(&self) -> bool {
        self.window_speech
    }

    /// Stream position (ms) where the last speech window ended: the caller's last word.
    pub fn last_speech_ms(&self) -> Option<u64> {
        self.last_speech_ms
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Starts over as if new: model state, buffered samples, hysteresis and position.
    pub fn reset(&mut self) {
        self.model.reset();
        self.gate = Gate::new(self.gate.start_ms(), self.gate.stop_ms());
        self.pending.clear();
        self.samples_seen = 0;
        self.probability = 0.0;
        self.window_speech = false;
        self.last_speech_ms = None;
        self.quiet_windows = 0;
    }
}

#[cfg(test)]
mod test_audio;
#[cfg(test)]
mod tests;
