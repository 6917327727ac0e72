//! Energy VAD over 20 ms windows, standing in for the provider's server_vad.
//!
//! Times are stream time: milliseconds of audio appended since the session began, as the
//! real `audio_start_ms` / `audio_end_ms` are, so results do not depend on how fast the
//! client sends.

use super::session_config::TurnDetection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VadEvent {
    /// Includes the prefix padding, like the real server.
    Started { audio_start_ms: u64 },
    /// The end of the trailing silence that closed the turn.
    Stopped { audio_end_ms: u64 },
}

pub(crate) struct EnergyVad {
    rms_threshold: f64,
    prefix_padding_ms: u64,
    silence_duration_ms: u64,
    rate: u32,
    window: Vec<i16>,
    /// Stream time in microseconds (rates change with the format; µs stay exact).
    stream_us: u64,
    /// Stream time (µs) at the end of the last loud window, while speaking.
    speaking_until: Option<u64>,
}

impl EnergyVad {
    /// `base_rms` is the RMS that counts as speech at the default threshold 0.5; the
    /// session's `threshold` scales it.
    pub fn new(td: &TurnDetection, base_rms: f64, rate: u32) -> Self {
        Self {
            rms_threshold: (base_rms * td.threshold / 0.5).max(1.0),
            prefix_padding_ms: td.prefix_padding_ms,
            silence_duration_ms: td.silence_duration_ms,
            rate: rate.max(1000),
            window: Vec::new(),
            stream_us: 0,
            speaking_until: None,
        }
    }

    /// New settings (a later `session.update`); the stream clock keeps running.
    pub fn reconfigure(&mut self, td: &TurnDetection, base_rms: f64, rate: u32) {
        let stream_us = self.stream_us;
        *self = Self::new(td, base_rms, rate);
        self.stream_us = stream_us;
    }

    /// Forgets the current utterance (`input_audio_buffer.clear`).
    pub fn reset(&mut self) {
        self.window.clear();
        self.speaking_until = None;
    }

    pub fn push(&mut self, samples: &[i16], out: &mut Vec<VadEvent>) {
        let window_len = (self.rate / 50) as usize;
        for &s in samples {
            self.window.push(s);
            if self.window.len() == window_len {
                self.close_window(out);
            }
        }
    }

    fn close_window(&mut self, out: &mut Vec<VadEvent>) {
        let start_us = self.stream_us;
        self.stream_us += self.window.len() as u64 * 1_000_000 / u64::from(self.rate);
        let loud = voice_core::audio::pcm::rms(&self.window) >= self.rms_threshold;
        self.window.clear();
        match (self.speaking_until, loud) {
            (None, true) => {
                let audio_start_ms = (start_us / 1000).saturating_sub(self.prefix_padding_ms);
                out.push(VadEvent::Started { audio_start_ms });
                self.speaking_until = Some(self.stream_us);
            }
            (Some(_), true) => self.speaking_until = Some(self.stream_us),
            (Some(last_loud), false)
                if self.stream_us - last_loud >= self.silence_duration_ms * 1000 =>
            {
                out.push(VadEvent::Stopped {
                    audio_end_ms: self.stream_us / 1000,
                });
                self.speaking_until = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TurnDetection {
        TurnDetection {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
        }
    }

    fn tone(ms: usize, amp: i16) -> Vec<i16> {
        (0..ms * 24)
            .map(|i| if i % 2 == 0 { amp } else { -amp })
            .collect()
    }

    #[test]
    fn detects_start_and_stop_in_stream_time() {
        let mut vad = EnergyVad::new(&td(), 500.0, 24_000);
        let mut ev = Vec::new();
        vad.push(&tone(1000, 0), &mut ev);
        assert!(ev.is_empty());
        vad.push(&tone(800, 3000), &mut ev);
        // A short pause inside speech does not end the turn.
        vad.push(&tone(200, 0), &mut ev);
        vad.push(&tone(400, 3000), &mut ev);
        vad.push(&tone(1000, 0), &mut ev);
        assert_eq!(
            ev,
            vec![
                VadEvent::Started {
                    audio_start_ms: 700
                },
                VadEvent::Stopped {
                    audio_end_ms: 2400 + 500
                }
            ]
        );
    }

    #[test]
    fn threshold_scales_the_energy_needed() {
        let strict = TurnDetection {
            threshold: 1.0,
            ..td()
        };
        let mut vad = EnergyVad::new(&strict, 500.0, 24_000);
        let mut ev = Vec::new();
        vad.push(&tone(200, 800), &mut ev);
        assert!(ev.is_empty(), "800 < 1000");
        vad.push(&tone(200, 1200), &mut ev);
        assert_eq!(ev.len(), 1);
    }
}
