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
    /// A single sample this loud counts as speech once speech has started: the end of a
    /// turn is placed at the caller's last audible sample, not at a window boundary, so
    /// the silence window is measured as exactly as the real service would.
    sample_threshold: i32,
    prefix_padding_ms: u64,
    silence_duration_ms: u64,
    rate: u32,
    window: Vec<i16>,
    /// Stream time in microseconds (rates change with the format; µs stay exact).
    stream_us: u64,
    /// Samples appended since the session began.
    samples: u64,
    /// While speaking: sample number of the last audible sample.
    last_loud: Option<u64>,
}

impl EnergyVad {
    /// `base_rms` is the RMS that counts as speech at the default threshold 0.5; the
    /// session's `threshold` scales it.
    pub fn new(td: &TurnDetection, base_rms: f64, rate: u32) -> Self {
        let rms_threshold = (base_rms * td.threshold / 0.5).max(1.0);
        Self {
            rms_threshold,
            sample_threshold: (rms_threshold * 0.6) as i32,
            prefix_padding_ms: td.prefix_padding_ms,
            silence_duration_ms: td.silence_duration_ms,
            rate: rate.max(1000),
            window: Vec::new(),
            stream_us: 0,
            samples: 0,
            last_loud: None,
        }
    }

    /// New settings (a later `session.update`); the stream clock keeps running.
    pub fn reconfigure(&mut self, td: &TurnDetection, base_rms: f64, rate: u32) {
        let (stream_us, samples) = (self.stream_us, self.samples);
        *self = Self::new(td, base_rms, rate);
        self.stream_us = stream_us;
        self.samples = samples;
    }

    /// Forgets the current utterance (`input_audio_buffer.clear`).
    pub fn reset(&mut self) {
        self.window.clear();
        self.last_loud = None;
    }

    fn us_at(&self, sample: u64) -> u64 {
        self.stream_us_base() + sample * 1_000_000 / u64::from(self.rate)
    }

    /// Stream time (µs) at sample 0 of the current rate (the rate can change mid-stream).
    fn stream_us_base(&self) -> u64 {
        self.stream_us
            .saturating_sub(self.samples * 1_000_000 / u64::from(self.rate))
    }

    pub fn push(&mut self, samples: &[i16], out: &mut Vec<VadEvent>) {
        let window_len = (self.rate / 50) as usize;
        for &s in samples {
            self.window.push(s);
            self.samples += 1;
            self.stream_us = self.us_at(self.samples);
            if let Some(last) = self.last_loud {
                if i32::from(s).abs() >= self.sample_threshold {
                    self.last_loud = Some(self.samples);
                } else if self.stream_us - self.us_at(last) >= self.silence_duration_ms * 1000 {
                    out.push(VadEvent::Stopped {
                        audio_end_ms: self.stream_us / 1000,
                    });
                    self.last_loud = None;
                }
            }
            if self.window.len() == window_len {
                self.close_window(out);
            }
        }
    }

    fn close_window(&mut self, out: &mut Vec<VadEvent>) {
        let start_us = self.stream_us - self.window.len() as u64 * 1_000_000 / u64::from(self.rate);
        let loud = voice_core::audio::pcm::rms(&self.window) >= self.rms_threshold;
        if loud && self.last_loud.is_none() {
            let audio_start_ms = (start_us / 1000).saturating_sub(self.prefix_padding_ms);
            out.push(VadEvent::Started { audio_start_ms });
            let last = self
                .window
                .iter()
                .rposition(|&s| i32::from(s).abs() >= self.sample_threshold);
            let first_in_window = self.samples - self.window.len() as u64;
            self.last_loud =
                Some(first_in_window + last.map_or(self.window.len() as u64, |i| i as u64 + 1));
        }
        self.window.clear();
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
