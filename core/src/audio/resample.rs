//! Streaming sample-rate conversion for mono L16.
//!
//! Wraps rubato's synchronous FFT resampler with fixed 20 ms chunks on both sides
//! (e.g. 160 → 480 samples for 8 kHz → 24 kHz): a few µs per frame, with proper
//! anti-aliasing in both directions. Input of any length is buffered until a whole
//! chunk is there, so callers can push provider deltas of arbitrary size.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample {from} Hz -> {to} Hz: {reason}")]
    Construction { from: u32, to: u32, reason: String },
}

/// Converts a mono stream from one rate to another; identity when the rates match.
pub struct Resampler {
    from: u32,
    to: u32,
    inner: Option<Inner>,
}

struct Inner {
    fft: Fft<f32>,
    /// Input samples not yet processed (less than one chunk).
    pending: Vec<f32>,
    chunk_in: Vec<f32>,
    chunk_out: Vec<f32>,
    /// Output samples still to drop: the resampler's start-up delay.
    skip: usize,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        if from == to {
            return Ok(Self { from, to, inner: None });
        }
        let err = |reason: String| ResampleError::Construction { from, to, reason };
        if from == 0 || to == 0 {
            return Err(err("rates must be positive".into()));
        }
        let chunk = super::frame_samples(from).max(1);
        let fft = Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Both)
            .map_err(|e| err(e.to_string()))?;
        let chunk_in = vec![0.0; fft.input_frames_max()];
        let chunk_out = vec![0.0; fft.output_frames_max()];
        let skip = fft.output_delay();
        Ok(Self {
            from,
            to,
            inner: Some(Inner {
                fft,
                pending: Vec::with_capacity(chunk * 2),
                chunk_in,
                chunk_out,
                skip,
            }),
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `input`, appending every whole chunk's output to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        inner
            .pending
            .extend(input.iter().map(|&s| s as f32 / 32768.0));
        inner.drain(out, false);
    }

    /// Pushes out what is buffered (padded with silence), e.g. at the end of an answer.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        if let Some(inner) = self.inner.as_mut() {
            inner.drain(out, true);
        }
    }

    /// Forgets buffered audio (after a barge-in), keeping the filter state cheap to rebuild.
    pub fn reset(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            inner.pending.clear();
            inner.fft.reset();
            inner.skip = inner.fft.output_delay();
        }
    }
}

impl Inner {
    fn drain(&mut self, out: &mut Vec<i16>, flush: bool) {
        loop {
            let need = self.fft.input_frames_next();
            let have = self.pending.len();
            if have == 0 || (have < need && !flush) {
                return;
            }
            let take = have.min(need);
            self.chunk_in[..take].copy_from_slice(&self.pending[..take]);
            self.chunk_in[take..need].fill(0.0);
            self.pending.drain(..take);
            let out_cap = self.chunk_out.len();
            let (Ok(input), Ok(mut output)) = (
                InterleavedSlice::new(&self.chunk_in[..need], 1, need),
                InterleavedSlice::new_mut(&mut self.chunk_out[..], 1, out_cap),
            ) else {
                return;
            };
            let Ok((_, written)) = self.fft.process_into_buffer(&input, &mut output, None) else {
                return;
            };
            // On a flushed partial chunk keep only the share that carries real input.
            let keep = if take < need { written * take / need } else { written };
            let produced = &self.chunk_out[..keep];
            let start = self.skip.min(produced.len());
            self.skip -= start;
            out.extend(
                produced[start..]
                    .iter()
                    .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, ms: u32) -> Vec<i16> {
        let n = (rate * ms / 1000) as usize;
        (0..n)
            .map(|i| ((i as f32 * hz * 2.0 * std::f32::consts::PI / rate as f32).sin() * 10000.0) as i16)
            .collect()
    }

    #[test]
    fn identity_when_rates_match() {
        let mut r = Resampler::new(16000, 16000).unwrap();
        let mut out = Vec::new();
        r.process(&[1, 2, 3], &mut out);
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn length_and_level_are_kept_for_common_rate_pairs() {
        for (from, to) in [(8000, 24000), (16000, 24000), (24000, 8000), (24000, 16000), (8000, 16000), (48000, 16000)] {
            let input = sine(from, 440.0, 1000);
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            // Push in odd-sized pieces, as provider deltas arrive.
            for piece in input.chunks(337) {
                r.process(piece, &mut out);
            }
            r.flush(&mut out);
            let expected = (to as usize) * 1000 / 1000;
            let diff = (out.len() as i64 - expected as i64).abs();
            assert!(diff <= (to / 50) as i64, "{from}->{to}: {} samples, want ~{expected}", out.len());
            // Ignore the edges; the level of a 440 Hz tone is preserved.
            let mid = &out[out.len() / 4..out.len() * 3 / 4];
            let level = crate::audio::pcm::rms(mid);
            assert!((level - 7071.0).abs() < 400.0, "{from}->{to}: rms {level}");
        }
    }

    #[test]
    fn downsampling_removes_content_above_nyquist() {
        // A 6 kHz tone at 24 kHz cannot exist at 8 kHz: it must be filtered, not aliased.
        let input = sine(24000, 6000.0, 500);
        let mut r = Resampler::new(24000, 8000).unwrap();
        let mut out = Vec::new();
        r.process(&input, &mut out);
        let mid = &out[out.len() / 4..out.len() * 3 / 4];
        assert!(crate::audio::pcm::rms(mid) < 300.0);
    }
}
