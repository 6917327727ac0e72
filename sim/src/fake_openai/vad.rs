//! Energy VAD over 20 ms windows, standing in for the provider's server_vad.
//!
//! Times are stream time: milliseconds of audio appended since the session began, as the
//! real `audio_start_ms` / `audio_end_ms` are, so results do not depend on how fast the
//! client sends.
//!
//! With turn detection off (the client commits), the same detector only follows the speech
//! so the fake can tell how much silence trailed the caller's last word at each commit.
//!
//! The 20 ms windows are the ones every fake judges speech by
//! ([`crate::fake_common::energy_vad::Windows`]); what is OpenAI's own is placing the end
//! of speech at the last audible sample, the prefix padding and the stream clock.

use super::session_config::TurnDetection;
use crate::fake_common::energy_vad::Windows;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VadEvent {
    /// Includes the prefix padding, like the real server.
    Started { audio_start_ms: u64 },
    /// The end of the trailing silence that closed the turn.
    Stopped { audio_end_ms: u64 },
}

pub(crate) struct EnergyVad {
    /// Speech starts at the first loud window.
    windows: Windows,
    /// A single sample this loud counts as speech once speech has started: the end of a
    /// turn is placed at the caller's last audible sample, not at a window boundary, so
    /// the silence window is measured as exactly as the real service would.
    sample_threshold: i32,
    prefix_padding_ms: u64,
    /// `None`: never ends a turn (turn detection off; the detector only follows speech).
    silence_duration_ms: Option<u64>,
    rate: u32,
    /// Stream time in microseconds (rates change with the format; µs stay exact).
    stream_us: u64,
    /// Stream time (µs) when the current rate took effect.
    base_us: u64,
    /// Samples appended at the current rate.
    samples: u64,
    /// While speaking: sample number of the last audible sample.
    last_loud: Option<u64>,
}

/// The server_vad threshold the fake's energy scale is calibrated at.
const DEFAULT_THRESHOLD: f64 = 0.5;

impl EnergyVad {
    /// `base_rms` is the RMS that counts as speech at the default threshold 0.5; the
    /// session's `threshold` scales it. With `td` = `None` (turn detection off) speech is
    /// judged at the default threshold and no turn ever ends.
    pub fn new(td: Option<&TurnDetection>, base_rms: f64, rate: u32) -> Self {
        let threshold = td.map_or(DEFAULT_THRESHOLD, |t| t.threshold);
        let rms_threshold = (base_rms * threshold / DEFAULT_THRESHOLD).max(1.0);
        let rate = rate.max(1000);
        Self {
            windows: Windows::new(rate, rms_threshold),
            sample_threshold: (rms_threshold * 0.6) as i32,
            prefix_padding_ms: td.map_or(0, |t| t.prefix_padding_ms),
            silence_duration_ms: td.map(|t| t.silence_duration_ms),
            rate,
            stream_us: 0,
            base_us: 0,
            samples: 0,
            last_loud: None,
        }
    }

    /// New settings (a later `session.update`); the stream clock keeps running.
    /// Sample numbers restart at the current stream time, since the rate may change.
    pub fn reconfigure(&mut self, td: Option<&TurnDetection>, base_rms: f64, rate: u32) {
        let stream_us = self.stream_us;
        *self = Self::new(td, base_rms, rate);
        self.stream_us = stream_us;
        self.base_us = stream_us;
    }

    /// Forgets the current utterance (`input_audio_buffer.clear`).
    pub fn reset(&mut self) {
        self.windows.clear();
        self.last_loud = None;
    }

    /// Stream time from the last audible sample of the current utterance to the end of the
    /// audio appended so far, rounded to the ms; `None` when no speech started since the
    /// last reset (or the last turn end).
    pub fn trailing_silence_ms(&self) -> Option<u64> {
        let last = self.last_loud?;
        Some((self.stream_us.saturating_sub(self.us_at(last)) + 500) / 1000)
    }

    fn us_at(&self, sample: u64) -> u64 {
        self.base_us + sample * 1_000_000 / u64::from(self.rate)
    }

    pub fn push(&mut self, samples: &[i16], out: &mut Vec<VadEvent>) {
        for &s in samples {
            self.samples += 1;
            self.stream_us = self.us_at(self.samples);
            if let Some(last) = self.last_loud {
                let silent_us = self.stream_us - self.us_at(last);
                if i32::from(s).abs() >= self.sample_threshold {
                    self.last_loud = Some(self.samples);
                } else if self
                    .silence_duration_ms
                    .is_some_and(|window_ms| silent_us >= window_ms.saturating_mul(1000))
                {
                    out.push(VadEvent::Stopped {
                        audio_end_ms: self.stream_us / 1000,
                    });
                    self.last_loud = None;
                }
            }
            let Some(window) = self.windows.push(s) else {
                continue;
            };
            if window.loud && self.last_loud.is_none() {
                let len = window.samples.len() as u64;
                let last = window
                    .samples
                    .iter()
                    .rposition(|&s| i32::from(s).abs() >= self.sample_threshold);
                let start_us = self.stream_us - len * 1_000_000 / u64::from(self.rate);
                let audio_start_ms = (start_us / 1000).saturating_sub(self.prefix_padding_ms);
                out.push(VadEvent::Started { audio_start_ms });
                let first_in_window = self.samples - len;
                self.last_loud = Some(first_in_window + last.map_or(len, |i| i as u64 + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_common::test_support::square_wave;

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
        tone_at(24_000, ms, amp)
    }

    fn tone_at(rate: u32, ms: usize, amp: i16) -> Vec<i16> {
        square_wave(rate, ms, amp)
    }

    /// A 200 Hz sine: quiet samples at every zero crossing, like voiced speech.
    fn sine_at(rate: u32, ms: usize, amp: f64) -> Vec<i16> {
        (0..ms * rate as usize / 1000)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amp * (2.0 * std::f64::consts::PI * 200.0 * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn detects_start_and_stop_in_stream_time() {
        let mut vad = EnergyVad::new(Some(&td()), 500.0, 24_000);
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
    fn without_turn_detection_measures_the_silence_after_the_last_speech() {
        for rate in [8_000, 16_000, 24_000] {
            for silence_ms in [0, 10, 35, 480, 3000] {
                let mut vad = EnergyVad::new(None, 500.0, rate);
                let mut ev = Vec::new();
                vad.push(&tone_at(rate, 400, 0), &mut ev);
                assert_eq!(vad.trailing_silence_ms(), None, "no speech yet");
                vad.push(&tone_at(rate, 700, 3000), &mut ev);
                vad.push(&tone_at(rate, silence_ms, 0), &mut ev);
                assert_eq!(
                    vad.trailing_silence_ms(),
                    Some(silence_ms as u64),
                    "{rate} Hz, {silence_ms} ms"
                );
                // Speech starts, but no turn ever ends.
                assert_eq!(
                    ev,
                    vec![VadEvent::Started {
                        audio_start_ms: 400
                    }]
                );
            }
        }
    }

    #[test]
    fn trailing_silence_of_voiced_audio_is_within_a_few_ms() {
        let rate = 16_000;
        let mut vad = EnergyVad::new(None, 500.0, rate);
        let mut ev = Vec::new();
        vad.push(&sine_at(rate, 613, 4000.0), &mut ev);
        // A pause inside the utterance, then more speech: only the last silence counts.
        vad.push(&tone_at(rate, 300, 0), &mut ev);
        vad.push(&sine_at(rate, 251, 4000.0), &mut ev);
        vad.push(&tone_at(rate, 520, 0), &mut ev);
        let trailing = vad.trailing_silence_ms().unwrap();
        // The last loud sample is at most a half period (2.5 ms) before the end.
        assert!((520..=523).contains(&trailing), "{trailing}");
        // Quiet noise under the sample threshold (300) is still silence.
        let hiss: Vec<i16> = (0..rate as usize / 10)
            .map(|i| if i % 3 == 0 { 250 } else { -120 })
            .collect();
        vad.push(&hiss, &mut ev);
        assert!((620..=623).contains(&vad.trailing_silence_ms().unwrap()));
        vad.reset();
        assert_eq!(vad.trailing_silence_ms(), None, "a commit starts afresh");
    }

    #[test]
    fn the_stream_clock_survives_a_rate_change() {
        let mut vad = EnergyVad::new(Some(&td()), 500.0, 24_000);
        let mut ev = Vec::new();
        vad.push(&tone(1000, 0), &mut ev);
        vad.reconfigure(None, 500.0, 8_000);
        vad.push(&tone_at(8_000, 500, 3000), &mut ev);
        vad.push(&tone_at(8_000, 200, 0), &mut ev);
        assert_eq!(vad.trailing_silence_ms(), Some(200));
        vad.reconfigure(Some(&td()), 500.0, 24_000);
        vad.push(&tone(400, 3000), &mut ev);
        vad.push(&tone(600, 0), &mut ev);
        assert_eq!(
            ev,
            vec![
                VadEvent::Started {
                    audio_start_ms: 1000
                },
                VadEvent::Started {
                    audio_start_ms: 1700 - 300
                },
                VadEvent::Stopped {
                    audio_end_ms: 2100 + 500
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
        let mut vad = EnergyVad::new(Some(&strict), 500.0, 24_000);
        let mut ev = Vec::new();
        vad.push(&tone(200, 800), &mut ev);
        assert!(ev.is_empty(), "800 < 1000");
        vad.push(&tone(200, 1200), &mut ev);
        assert_eq!(ev.len(), 1);
    }
}
