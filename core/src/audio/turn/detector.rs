//! One call's end-of-turn state: the caller's recent audio and how long they have been
//! silent. Mirrors pipecat's `BaseSmartTurn`: before speech only `pre_speech_ms` is kept;
//! once speech starts, up to the model's 8 s window.

use std::collections::VecDeque;
use std::sync::Arc;

use super::mel::{SAMPLE_RATE, WINDOW_SAMPLES};
use super::{SmartTurnModel, TurnError, TurnSettings};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TurnState {
    /// No speech yet, or the caller may go on.
    Incomplete,
    /// The caller has finished: by the model, or by `max_silence_ms` of silence.
    Complete,
}

pub struct TurnDetector {
    model: Arc<SmartTurnModel>,
    settings: TurnSettings,
    audio: VecDeque<i16>,
    speech_seen: bool,
    silence_samples: u64,
}

impl TurnDetector {
    pub fn new(model: Arc<SmartTurnModel>, settings: TurnSettings) -> Result<Self, TurnError> {
        settings.validate()?;
        Ok(Self {
            model,
            settings,
            audio: VecDeque::with_capacity(WINDOW_SAMPLES),
            speech_seen: false,
            silence_samples: 0,
        })
    }

    /// Adds caller audio (mono 16 kHz) with the VAD's verdict for it. Returns `Complete`
    /// (and resets) once silence after speech reaches `max_silence_ms`.
    pub fn push(&mut self, audio_16k: &[i16], is_speech: bool) -> TurnState {
        self.audio.extend(audio_16k);
        if is_speech {
            self.speech_seen = true;
            self.silence_samples = 0;
        } else if self.speech_seen {
            self.silence_samples += audio_16k.len() as u64;
        }
        let keep = if self.speech_seen {
            WINDOW_SAMPLES
        } else {
            self.settings.pre_speech_ms as usize * SAMPLE_RATE as usize / 1000
        };
        let excess = self.audio.len().saturating_sub(keep);
        self.audio.drain(..excess);
        if self.speech_seen
            && self.silence_samples * 1000
                >= u64::from(self.settings.max_silence_ms) * u64::from(SAMPLE_RATE)
        {
            self.reset();
            return TurnState::Complete;
        }
        TurnState::Incomplete
    }

    /// Asks the model, typically when the VAD reports the caller stopped. Returns the
    /// state and the probability; `Complete` resets for the next turn. Blocking (tens of
    /// ms): call from `spawn_blocking`.
    pub fn analyze(&mut self) -> Result<(TurnState, Option<f32>), TurnError> {
        if !self.speech_seen {
            return Ok((TurnState::Incomplete, None));
        }
        let audio: Vec<i16> = self.audio.iter().copied().collect();
        let probability = self.model.predict(&audio)?;
        if probability > self.settings.threshold {
            self.reset();
            return Ok((TurnState::Complete, Some(probability)));
        }
        Ok((TurnState::Incomplete, Some(probability)))
    }

    /// Forgets the turn (e.g. after barge-in handling or when the agent takes over).
    pub fn reset(&mut self) {
        self.audio.clear();
        self.speech_seen = false;
        self.silence_samples = 0;
    }
}
