//! The call's own ears: VAD and end-of-turn detection on the caller's audio, for agents
//! with `[agent.turn] detection = "local"`.
//!
//! [`FrontEnd::push`] takes the caller's frames at the call rate and reports what it heard.
//! Smart Turn (~100 ms of CPU) never runs here: a [`Heard::Probe`] carries the audio to
//! judge, the call runs it on the blocking pool, and [`FrontEnd::verdict`] takes the answer.

pub mod barge_in;
mod models;

use std::time::{Duration, Instant};

use voice_core::audio::turn::{TurnDetector, TurnEndReason, TurnSettings, TurnSignal};
use voice_core::audio::vad::{SileroStream, Vad, VadEngine, VadEvent, VadSettings, WebrtcModel};
use voice_core::audio::Resampler;

pub use barge_in::BargeInSettings;
pub use models::FrontEndModels;

/// The rate the VAD and Smart Turn listen at.
const LISTEN_RATE: u32 = 16_000;

/// What the front end heard in one push.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The caller started speaking (confirmed by the VAD); `onset` is when they began.
    SpeechStarted { onset: Instant },
    /// Ask Smart Turn about `audio` (16 kHz) and hand the answer to [`FrontEnd::verdict`]
    /// with this `probe`.
    Probe { probe: u64, audio: Vec<i16> },
    /// Without Smart Turn: the caller paused (the turn ends if the pause lasts).
    Paused,
    /// The caller's turn is over.
    TurnEnded(TurnEnd),
}

/// How a turn ended, for latency accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnEnd {
    /// When the caller's last word ended (VAD estimate).
    pub end_of_speech: Instant,
    /// When this was decided.
    pub decided: Instant,
    /// Smart Turn's probability, when it decided.
    pub probability: Option<f32>,
    /// `smart_turn`, `silence` (no model: `min_silence_ms`) or `max_silence`.
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum FrontEndError {
    #[error(transparent)]
    Vad(#[from] voice_core::audio::vad::VadError),
    #[error(transparent)]
    Turn(#[from] voice_core::audio::turn::TurnError),
    #[error("{0}")]
    Setup(String),
}

pub struct FrontEnd {
    to_listen_rate: Option<Resampler>,
    /// The caller's audio resampled to 16 kHz (reused buffer; unused for 16 kHz calls).
    listen: Vec<i16>,
    vad: Vad,
    vad_events: Vec<VadEvent>,
    turn: TurnDetector,
    probe: u64,
    /// Smart Turn's answer for this pause, once it came.
    probability: Option<f32>,
    /// When the audio at `vad.received_ms()` arrived.
    fed_at: Instant,
}

impl FrontEnd {
    /// A front end for a call at `rate` Hz, with the shared models.
    pub fn new(
        models: &FrontEndModels,
        rate: u32,
        vad: &VadSettings,
        turn: &TurnSettings,
    ) -> Result<Self, FrontEndError> {
        let to_listen_rate = (rate != LISTEN_RATE)
            .then(|| Resampler::new(rate, LISTEN_RATE))
            .transpose()
            .map_err(|e| FrontEndError::Setup(e.to_string()))?;
        let model: Box<dyn voice_core::audio::vad::SpeechModel> = match vad.engine {
            VadEngine::Silero => {
                let shared = models.silero.clone().ok_or_else(|| {
                    FrontEndError::Setup("the Silero VAD model is not loaded".into())
                })?;
                Box::new(SileroStream::new(shared, LISTEN_RATE)?)
            }
            VadEngine::Webrtc => Box::new(WebrtcModel::new(LISTEN_RATE, vad.webrtc_mode)?),
        };
        if turn.smart_turn && models.smart_turn.is_none() {
            return Err(FrontEndError::Setup(
                "the Smart Turn model is not loaded".into(),
            ));
        }
        Ok(Self {
            to_listen_rate,
            listen: Vec::with_capacity(640),
            vad: Vad::new(model, LISTEN_RATE, vad)?,
            vad_events: Vec::new(),
            turn: TurnDetector::new(turn.clone())?,
            probe: 0,
            probability: None,
            fed_at: Instant::now(),
        })
    }

    /// Feeds caller audio (call rate) that arrived at `now`; appends what was heard.
    pub fn push(&mut self, samples: &[i16], now: Instant, heard: &mut Vec<Heard>) {
        // At 16 kHz the call's own samples are heard as they are, without a copy.
        let listen: &[i16] = match &mut self.to_listen_rate {
            Some(resampler) => {
                self.listen.clear();
                resampler.process(samples, &mut self.listen);
                &self.listen
            }
            None => samples,
        };
        self.fed_at = now;
        self.vad_events.clear();
        if let Err(e) = self.vad.push(listen, &mut self.vad_events) {
            // One window lost; the stream goes on.
            tracing::debug!(error = %e, "VAD window failed");
        }
        for event in &self.vad_events {
            if let VadEvent::SpeechStart { at_ms } = *event {
                heard.push(Heard::SpeechStarted {
                    onset: self.instant_of(at_ms),
                });
            }
        }
        // The turn's silence starts at the first window under the start threshold, not at
        // the end of the VAD's softer continue threshold: a fading last syllable is not
        // the caller going on, and this ends turns a window or two sooner.
        let speech = self.is_speaking() && self.vad.probability() >= self.vad.threshold();
        match self.turn.push(listen, speech) {
            TurnSignal::Wait => {}
            TurnSignal::Probe => {
                self.probe += 1;
                self.probability = None;
                heard.push(Heard::Probe {
                    probe: self.probe,
                    audio: self.turn.snapshot(),
                });
            }
            TurnSignal::Pause => heard.push(Heard::Paused),
            TurnSignal::End(reason) => {
                let end = self.end_turn(now, self.probability, reason);
                heard.push(Heard::TurnEnded(end));
            }
        }
    }

    /// Smart Turn's answer to probe `probe`: the end of the turn if it is complete and the
    /// pause long enough already. Stale answers (the caller spoke again) are dropped.
    pub fn verdict(&mut self, probe: u64, probability: f32, now: Instant) -> Option<TurnEnd> {
        if probe != self.probe {
            return None;
        }
        self.probability = Some(probability);
        let reason = self.turn.verdict(probability)?;
        Some(self.end_turn(now, Some(probability), reason))
    }

    /// Probe `probe` could not be run (the model is saturated): this pause ends the turn
    /// after `fallback_silence_ms`, as a plain VAD would.
    pub fn unjudged(&mut self, probe: u64) {
        if probe == self.probe {
            self.turn.unjudged();
        }
    }

    /// The caller is speaking now: the VAD is in speech and the newest window is speech
    /// (not the hysteresis' hang-over after the last word).
    pub fn is_speaking(&self) -> bool {
        self.vad.is_speaking() && self.vad.window_is_speech()
    }

    /// Forgets the current turn: speech that was not the caller's turn (ignored echo).
    pub fn forget_turn(&mut self) {
        self.turn.reset();
        self.probability = None;
    }

    fn end_turn(
        &mut self,
        now: Instant,
        probability: Option<f32>,
        reason: TurnEndReason,
    ) -> TurnEnd {
        let end_of_speech = match self.vad.last_speech_ms() {
            Some(ms) => self.instant_of(ms),
            None => now,
        };
        self.forget_turn();
        TurnEnd {
            end_of_speech,
            decided: now,
            probability,
            reason: reason.as_str(),
        }
    }

    /// The wall time of stream position `ms`, from when the newest audio arrived.
    fn instant_of(&self, ms: u64) -> Instant {
        let behind = self.vad.received_ms().saturating_sub(ms);
        self.fed_at
            .checked_sub(Duration::from_millis(behind))
            .unwrap_or(self.fed_at)
    }
}

#[cfg(test)]
mod tests;
