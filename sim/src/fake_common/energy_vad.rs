//! The fakes' stand-in for a provider's voice activity detection: audio cut into 20 ms
//! windows, each judged loud or quiet by its RMS. Everything counts stream time (audio
//! received), so results do not depend on how fast the client sends.
//!
//! [`Windows`] is the shared judge; [`EnergyVad`] adds the simple turn rule Gemini and
//! ElevenLabs use (a turn ends after enough quiet windows). The OpenAI fake builds its
//! own sample-exact rule on [`Windows`].

use voice_core::audio::pcm;

/// Window length: 20 ms.
pub(crate) const WINDOW_MS: u64 = 20;

/// Cuts a sample stream into 20 ms windows and judges each one by its RMS.
pub(crate) struct Windows {
    len: usize,
    rms_threshold: f64,
    buf: Vec<i16>,
}

/// A window just completed.
pub(crate) struct Window<'a> {
    pub samples: &'a [i16],
    /// Its RMS reached the threshold.
    pub loud: bool,
}

impl Windows {
    /// `rms_threshold` (PCM16 RMS) counts as speech; it is at least 1.
    pub fn new(rate: u32, rms_threshold: f64) -> Self {
        let len = (rate as usize / 50).max(1);
        Self {
            len,
            rms_threshold: rms_threshold.max(1.0),
            buf: Vec::with_capacity(len),
        }
    }

    /// Adds one sample; returns the window it completes, if it does.
    pub fn push(&mut self, sample: i16) -> Option<Window<'_>> {
        if self.buf.len() == self.len {
            self.buf.clear();
        }
        self.buf.push(sample);
        if self.buf.len() < self.len {
            return None;
        }
        Some(Window {
            loud: pcm::rms(&self.buf) >= self.rms_threshold,
            samples: &self.buf,
        })
    }

    /// Drops the window being filled.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VadEvent {
    Started,
    /// `silence_ms` of quiet followed the speech: the caller's turn is over.
    Stopped,
}

/// Speech starts at the first loud window; the turn ends after `silence_ms` of quiet
/// windows.
pub(crate) struct EnergyVad {
    windows: Windows,
    silence_ms: u64,
    speaking: bool,
    quiet_ms: u64,
}

impl EnergyVad {
    pub fn new(rms_threshold: f64, silence_ms: u64, rate: u32) -> Self {
        Self {
            windows: Windows::new(rate, rms_threshold),
            silence_ms,
            speaking: false,
            quiet_ms: 0,
        }
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Forgets the current utterance (its turn was ended some other way).
    pub fn reset(&mut self) {
        self.windows.clear();
        self.speaking = false;
        self.quiet_ms = 0;
    }

    pub fn push(&mut self, samples: &[i16], out: &mut Vec<VadEvent>) {
        for &s in samples {
            let Some(window) = self.windows.push(s) else {
                continue;
            };
            if window.loud {
                self.quiet_ms = 0;
                if !self.speaking {
                    self.speaking = true;
                    out.push(VadEvent::Started);
                }
            } else if self.speaking {
                self.quiet_ms += WINDOW_MS;
                if self.quiet_ms >= self.silence_ms {
                    self.speaking = false;
                    self.quiet_ms = 0;
                    out.push(VadEvent::Stopped);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_common::test_support::square_wave;

    fn tone(ms: usize, amplitude: i16) -> Vec<i16> {
        square_wave(16_000, ms, amplitude)
    }

    #[test]
    fn speech_then_enough_silence_is_one_turn() {
        let mut vad = EnergyVad::new(500.0, 500, 16_000);
        let mut ev = Vec::new();
        vad.push(&tone(300, 0), &mut ev);
        assert!(ev.is_empty());
        vad.push(&tone(400, 3000), &mut ev);
        assert_eq!(ev, vec![VadEvent::Started]);
        assert!(vad.is_speaking());
        // A pause shorter than the silence window does not end the turn.
        vad.push(&tone(300, 0), &mut ev);
        vad.push(&tone(200, 3000), &mut ev);
        vad.push(&tone(480, 0), &mut ev);
        assert_eq!(ev.len(), 1);
        vad.push(&tone(20, 0), &mut ev);
        assert_eq!(ev, vec![VadEvent::Started, VadEvent::Stopped]);
        assert!(!vad.is_speaking());
        vad.push(&tone(100, 400), &mut ev);
        assert_eq!(ev.len(), 2, "below the threshold");
    }

    #[test]
    fn quiet_audio_and_reset() {
        let mut vad = EnergyVad::new(500.0, 500, 16_000);
        let mut ev = Vec::new();
        vad.push(&tone(1000, 300), &mut ev);
        assert!(ev.is_empty(), "below the threshold");
        vad.push(&tone(100, 3000), &mut ev);
        vad.reset();
        vad.push(&tone(1000, 0), &mut ev);
        assert_eq!(ev, vec![VadEvent::Started], "no turn end after a reset");
    }

    #[test]
    fn windows_are_20_ms_and_a_partial_one_can_be_dropped() {
        let mut w = Windows::new(8_000, 500.0);
        let loud = square_wave(8_000, 20, 3000);
        assert!(loud[..159].iter().all(|&s| w.push(s).is_none()));
        let closed = w.push(loud[159]).map(|c| (c.samples.len(), c.loud));
        assert_eq!(closed, Some((160, true)));
        for &s in &loud[..100] {
            assert!(w.push(s).is_none());
        }
        w.clear();
        let quiet = square_wave(8_000, 20, 0);
        let closed: Vec<bool> = quiet
            .iter()
            .filter_map(|&s| w.push(s).map(|c| c.loud))
            .collect();
        assert_eq!(closed, [false], "one whole window after the clear");
    }
}
