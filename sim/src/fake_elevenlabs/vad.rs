//! Energy VAD over 20 ms windows, standing in for the service's turn detection.
//!
//! It works in stream time (audio received), so results do not depend on how fast the
//! client sends: speech starts at the first loud window and the turn ends after
//! `silence_ms` of quiet windows.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VadEvent {
    Started,
    /// The caller's turn is over.
    Stopped,
}

pub(crate) struct EnergyVad {
    threshold_rms: f64,
    silence_ms: u64,
    window_len: usize,
    window: Vec<i16>,
    speaking: bool,
    quiet_ms: u64,
}

/// Window length in ms.
const WINDOW_MS: u64 = 20;

impl EnergyVad {
    pub fn new(threshold_rms: f64, silence_ms: u64, rate: u32) -> Self {
        let window_len = (rate as usize / 50).max(1);
        Self {
            threshold_rms: threshold_rms.max(1.0),
            silence_ms,
            window_len,
            window: Vec::with_capacity(window_len),
            speaking: false,
            quiet_ms: 0,
        }
    }

    pub fn push(&mut self, samples: &[i16], out: &mut Vec<VadEvent>) {
        for &s in samples {
            self.window.push(s);
            if self.window.len() == self.window_len {
                let loud = voice_core::audio::pcm::rms(&self.window) >= self.threshold_rms;
                self.window.clear();
                match (loud, self.speaking) {
                    (true, false) => {
                        self.speaking = true;
                        self.quiet_ms = 0;
                        out.push(VadEvent::Started);
                    }
                    (true, true) => self.quiet_ms = 0,
                    (false, true) => {
                        self.quiet_ms += WINDOW_MS;
                        if self.quiet_ms >= self.silence_ms {
                            self.speaking = false;
                            out.push(VadEvent::Stopped);
                        }
                    }
                    (false, false) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amp: i16) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| if i % 2 == 0 { amp } else { -amp })
            .collect()
    }

    #[test]
    fn speech_then_silence_is_one_turn() {
        let mut vad = EnergyVad::new(500.0, 500, 16_000);
        let mut ev = Vec::new();
        vad.push(&tone(300, 0), &mut ev);
        assert!(ev.is_empty());
        vad.push(&tone(400, 3000), &mut ev);
        vad.push(&tone(300, 0), &mut ev); // a pause inside the turn
        vad.push(&tone(200, 3000), &mut ev);
        assert_eq!(ev, vec![VadEvent::Started]);
        vad.push(&tone(480, 0), &mut ev);
        assert_eq!(ev.len(), 1);
        vad.push(&tone(20, 0), &mut ev);
        assert_eq!(ev, vec![VadEvent::Started, VadEvent::Stopped]);
        vad.push(&tone(100, 400), &mut ev);
        assert_eq!(ev.len(), 2, "below the threshold");
    }
}
