//! Energy VAD over 20 ms windows of 16 kHz audio, standing in for Gemini's automatic
//! activity detection. It counts stream time, so results do not depend on how fast the
//! client sends.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VadEvent {
    Started,
    /// `silence_ms` of quiet followed the speech: the caller's turn is over.
    Stopped,
}

pub(crate) struct EnergyVad {
    rms_threshold: f64,
    silence_ms: u64,
    window_len: usize,
    window: Vec<i16>,
    speaking: bool,
    quiet_ms: u64,
}

/// Window length: 20 ms.
const WINDOW_MS: u64 = 20;

impl EnergyVad {
    pub fn new(rms_threshold: f64, silence_ms: u64, rate: u32) -> Self {
        let window_len = (rate as usize / 50).max(1);
        Self {
            rms_threshold: rms_threshold.max(1.0),
            silence_ms: silence_ms.max(WINDOW_MS),
            window_len,
            window: Vec::with_capacity(window_len),
            speaking: false,
            quiet_ms: 0,
        }
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Forgets the current utterance (its turn was ended some other way).
    pub fn reset(&mut self) {
        self.window.clear();
        self.speaking = false;
        self.quiet_ms = 0;
    }

    pub fn push(&mut self, samples: &[i16], out: &mut Vec<VadEvent>) {
        for &s in samples {
            self.window.push(s);
            if self.window.len() == self.window_len {
                self.close_window(out);
            }
        }
    }

    fn close_window(&mut self, out: &mut Vec<VadEvent>) {
        let loud = voice_core::audio::pcm::rms(&self.window) >= self.rms_threshold;
        self.window.clear();
        if loud {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amplitude: i16) -> Vec<i16> {
        (0..16 * ms)
            .map(|i| if i % 2 == 0 { amplitude } else { -amplitude })
            .collect()
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
}
