//! One call's end-of-turn state: the caller's recent audio and how long they have been
//! silent. Mirrors pipecat's `BaseSmartTurn`: before speech only `pre_speech_ms` is kept;
//! once speech starts, up to the model's 8 s window.
//!
//! The detector never runs the model itself on the audio path: [`TurnDetector::push`]
//! says when to ask it ([`TurnSignal::Probe`]), the caller runs [`SmartTurnModel::predict`]
//! on [`TurnDetector::snapshot`] off the audio path, and hands the probability back to
//! [`TurnDetector::verdict`].

use std::collections::VecDeque;

use super::mel::{SAMPLE_RATE, WINDOW_SAMPLES};
use super::{SmartTurnModel, TurnError, TurnSettings};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TurnState {
    /// No speech yet, or the caller may go on.
    Incomplete,
    /// The caller has finished: by the model, or by `max_silence_ms` of silence.
    Complete,
}

/// What [`TurnDetector::push`] asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnSignal {
    /// Nothing to do.
    Wait,
    /// The caller has been silent `probe_ms` after speech: ask the model now (once per
    /// pause) and hand its answer to [`TurnDetector::verdict`].
    Probe,
    /// Without Smart Turn: the caller has been silent `probe_ms` after speech (once per
    /// pause). Nothing to ask; the turn ends at `min_silence_ms` unless they go on.
    Pause,
    /// The turn is over.
    End(TurnEndReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEndReason {
    /// Smart Turn said complete and the pause reached `min_silence_ms`.
    SmartTurn,
    /// No model (or no verdict in time): the pause reached `min_silence_ms` (or
    /// `fallback_silence_ms`).
    Silence,
    /// The pause reached `max_silence_ms`, whatever the model said.
    MaxSilence,
}

impl TurnEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SmartTurn => "smart_turn",
            Self::Silence => "silence",
            Self::MaxSilence => "max_silence",
        }
    }
}

pub struct TurnDetector {
    settings: TurnSettings,
    audio: VecDeque<i16>,
    speech_seen: bool,
    silence_samples: u64,
    /// Silence at which the model is asked next in this pause.
    next_probe_ms: u64,
    /// The model said this pause ends the turn; it will once it reaches `min_silence_ms`.
    complete: bool,
    /// The model could not be asked (saturated): this pause ends like a plain VAD's, at
    /// `fallback_silence_ms`.
    unjudged: bool,
    /// Without Smart Turn: this pause was reported ([`TurnSignal::Pause`]).
    pause_told: bool,
}

impl TurnDetector {
    pub fn new(settings: TurnSettings) -> Result<Self, TurnError> {
        settings.validate()?;
        Ok(Self {
            next_probe_ms: u64::from(settings.probe_ms),
            settings,
            audio: VecDeque::with_capacity(WINDOW_SAMPLES),
            speech_seen: false,
            silence_samples: 0,
            complete: false,
            unjudged: false,
            pause_told: false,
        })
    }

    /// Adds caller audio (mono 16 kHz) with the VAD's verdict for it.
    pub fn push(&mut self, audio_16k: &[i16], is_speech: bool) -> TurnSignal {
        self.audio.extend(audio_16k);
        if is_speech {
            self.speech_seen = true;
            self.silence_samples = 0;
            self.next_probe_ms = u64::from(self.settings.probe_ms);
            self.complete = false;
            self.unjudged = false;
            self.pause_told = false;
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
        if !self.speech_seen {
            return TurnSignal::Wait;
        }
        let silence = self.silence_ms();
        if silence >= u64::from(self.settings.max_silence_ms) {
            return TurnSignal::End(TurnEndReason::MaxSilence);
        }
        if silence >= u64::from(self.settings.min_silence_ms) {
            if !self.settings.smart_turn {
                return TurnSignal::End(TurnEndReason::Silence);
            }
            if self.complete {
                return TurnSignal::End(TurnEndReason::SmartTurn);
            }
            if self.unjudged && silence >= u64::from(self.settings.fallback_silence_ms) {
                return TurnSignal::End(TurnEndReason::Silence);
            }
        }
        // Asked again every `reprobe_ms` while it says "incomplete": a sentence it misjudged
        // at 64 ms of silence ends at the next probe instead of at `max_silence_ms`.
        if self.settings.smart_turn && !self.complete && silence >= self.next_probe_ms {
            self.next_probe_ms = silence + u64::from(self.settings.reprobe_ms);
            return TurnSignal::Probe;
        }
        if !self.settings.smart_turn
            && !self.pause_told
            && silence >= u64::from(self.settings.probe_ms)
        {
            self.pause_told = true;
            return TurnSignal::Pause;
        }
        TurnSignal::Wait
    }

    /// Milliseconds of silence since the caller last spoke.
    pub fn silence_ms(&self) -> u64 {
        self.silence_samples * 1000 / u64::from(SAMPLE_RATE)
    }

    /// The audio the model should judge: up to the last 8 s.
    pub fn snapshot(&self) -> Vec<i16> {
        self.audio.iter().copied().collect()
    }

    /// The model's answer for the last [`TurnSignal::Probe`] of this pause. Returns the
    /// end of the turn when the pause is already `min_silence_ms` long; otherwise a
    /// "complete" waits for it in [`TurnDetector::push`] (and is forgotten if the caller
    /// speaks again: a short pause is never the end of a turn).
    pub fn verdict(&mut self, probability: f32) -> Option<TurnEndReason> {
        if !self.probed() || self.judge(probability) == TurnState::Incomplete {
            return None;
        }
        self.complete = true;
        (self.silence_ms() >= u64::from(self.settings.min_silence_ms))
            .then_some(TurnEndReason::SmartTurn)
    }

    /// The last probe could not be run (the model is saturated): without a verdict, this
    /// pause ends the turn at `fallback_silence_ms`.
    pub fn unjudged(&mut self) {
        self.unjudged = true;
    }

    /// The model has been asked in this pause (each probe moves the next one past the first).
    fn probed(&self) -> bool {
        self.next_probe_ms > u64::from(self.settings.probe_ms)
    }

    fn judge(&self, probability: f32) -> TurnState {
        if probability > self.settings.threshold {
            TurnState::Complete
        } else {
            TurnState::Incomplete
        }
    }

    /// Probes and judges at once. Blocking (~100 ms): tests and tools, not the audio path.
    pub fn analyze(&self, model: &SmartTurnModel) -> Result<(TurnState, Option<f32>), TurnError> {
        if !self.speech_seen {
            return Ok((TurnState::Incomplete, None));
        }
        let probability = model.predict(&self.snapshot())?;
        Ok((self.judge(probability), Some(probability)))
    }

    /// Starts the next turn.
    pub fn reset(&mut self) {
        self.audio.clear();
        self.speech_seen = false;
        self.silence_samples = 0;
        self.next_probe_ms = u64::from(self.settings.probe_ms);
        self.complete = false;
        self.unjudged = false;
    }
}
