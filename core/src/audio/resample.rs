//! Streaming sample-rate conversion for mono L16, in lockstep with the input.
//!
//! A rational polyphase FIR (windowed sinc, Blackman): every output sample is computed as
//! soon as the newest input it needs has arrived, so a 20 ms frame in gives exactly a
//! 20 ms frame out and nothing is held back. Block resamplers (FFT, or sinc with
//! look-ahead) hold part of each chunk until the next one; at FreeSWITCH's 20 ms frame
//! rate that costs a whole frame of latency at every end of turn. Here the only delay is
//! the filter's group delay.
//!
//! The pass band runs to 70 % of the lower Nyquist frequency (5.6 kHz between 16 and
//! 24 kHz) and the stop band starts at it, in both directions, so downsampling does not
//! alias. About 1.2 ms of group delay at 16 kHz.

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample {from} Hz -> {to} Hz: {reason}")]
    Construction { from: u32, to: u32, reason: String },
}

/// Converts a mono stream from one rate to another; identity when the rates match.
pub struct Resampler {
    from: u32,
    to: u32,
    inner: Option<Polyphase>,
}

struct Polyphase {
    /// Upsampling factor L and downsampling factor M (ratio to/from = L/M, in lowest terms).
    up: u64,
    down: u64,
    taps: usize,
    /// `up` phases of `taps` coefficients, each reversed to run over ascending input.
    bank: Vec<f32>,
    /// Recent input; `buf[0]` is input sample number `base`.
    buf: Vec<f32>,
    base: i64,
    /// Input samples received so far.
    received: i64,
    /// The next output is at upsampled position `newest × L + phase`: it needs input
    /// samples up to `newest`, through filter phase `phase`.
    newest: i64,
    phase: u64,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        if from == to {
            return Ok(Self {
                from,
                to,
                inner: None,
            });
        }
        if from < 1000 || to < 1000 || from > 384_000 || to > 384_000 {
            return Err(ResampleError::Construction {
                from,
                to,
                reason: "rates must be between 1 kHz and 384 kHz".into(),
            });
        }
        let g = gcd(from as u64, to as u64);
        let (up, down) = (to as u64 / g, from as u64 / g);
        if up > 1024 || down > 1024 {
            return Err(ResampleError::Construction {
                from,
                to,
                reason: format!("ratio {up}/{down} is too fine for a polyphase filter"),
            });
        }
        Ok(Self {
            from,
            to,
            inner: Some(Polyphase::new(from, to, up, down)),
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `input`, appending the output to `out`: exactly `len × to / from`
    /// samples over time, without holding any input back.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match self.inner.as_mut() {
            Some(p) => p.process(input.iter().map(|&s| s as f32), out),
            None => out.extend_from_slice(input),
        }
    }

    /// Pushes out the filter's tail (its group delay of silence), at the end of a stream.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        if let Some(p) = self.inner.as_mut() {
            let tail = p.taps / 2;
            p.process(std::iter::repeat_n(0.0, tail), out);
        }
    }

    /// Forgets all state (after a barge-in), as if newly made.
    pub fn reset(&mut self) {
        if let Some(p) = self.inner.as_mut() {
            p.reset();
        }
    }
}

impl Polyphase {
    fn new(from: u32, to: u32, up: u64, down: u64) -> Self {
        let low = from.min(to) as f64;
        // Transition band: 15 % of the lower rate, ending at its Nyquist frequency. Phone
        // speech has little above 7 kHz at 16 kHz (3.4 kHz at 8 kHz), and a wider band
        // means fewer taps: this runs for every frame of every call.
        let transition = 0.15 * low;
        let cutoff = 0.5 * low - transition / 2.0;
        let taps = ((5.5 * from as f64 / transition).ceil() as usize).max(8);
        let len = taps * up as usize;
        let fs_up = from as f64 * up as f64;
        let wc = cutoff / fs_up; // cycles per upsampled sample
        let centre = (len - 1) as f64 / 2.0;
        let proto: Vec<f64> = (0..len)
            .map(|n| {
                let x = n as f64 - centre;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (2.0 * std::f64::consts::PI * wc * x).sin()
                        / (std::f64::consts::PI * x)
                        / (2.0 * wc)
                };
                let w = 2.0 * std::f64::consts::PI * n as f64 / (len - 1) as f64;
                let blackman = 0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos();
                2.0 * wc * sinc * blackman
            })
            .collect();
        // Unity gain per phase (zero-stuffing divides the level by L).
        let sum: f64 = proto.iter().sum();
        let gain = up as f64 / sum;
        let mut bank = vec![0.0f32; len];
        for p in 0..up as usize {
            for k in 0..taps {
                // Phase p, tap j = taps-1-k, runs over x[i-j]: reversed for ascending input.
                let j = taps - 1 - k;
                bank[p * taps + k] = (proto[p + j * up as usize] * gain) as f32;
            }
        }
        let mut me = Self {
            up,
            down,
            taps,
            bank,
            buf: Vec::new(),
            base: 0,
            received: 0,
            newest: 0,
            phase: 0,
        };
        me.reset();
        me
    }

    fn reset(&mut self) {
        // Silence before the stream starts.
        self.buf.clear();
        self.buf.resize(self.taps - 1, 0.0);
        self.base = -(self.taps as i64 - 1);
        self.received = 0;
        self.newest = 0;
        self.phase = 0;
    }

    fn process(&mut self, input: impl Iterator<Item = f32>, out: &mut Vec<i16>) {
        let before = self.buf.len();
        self.buf.extend(input);
        self.received += (self.buf.len() - before) as i64;
        while self.newest < self.received {
            let start = (self.newest - (self.taps as i64 - 1) - self.base) as usize;
            let phase = self.phase as usize;
            let coeffs = &self.bank[phase * self.taps..(phase + 1) * self.taps];
            let y = dot(coeffs, &self.buf[start..start + self.taps]);
            // `as` saturates to the i16 range; adding ±0.5 rounds to nearest.
            out.push((y + 0.5f32.copysign(y)) as i16);
            self.phase += self.down;
            while self.phase >= self.up {
                self.phase -= self.up;
                self.newest += 1;
            }
        }
        // Keep only what the next output still needs.
        let keep_from = self.newest - (self.taps as i64 - 1);
        let drop = (keep_from - self.base).clamp(0, self.buf.len() as i64) as usize;
        if drop > 4096 || drop * 2 > self.buf.capacity() {
            self.buf.drain(..drop);
            self.base += drop as i64;
        }
    }
}

/// Dot product of two equal-length slices: AVX2+FMA when the CPU has them (checked once),
/// otherwise eight lanes the compiler vectorises with SSE.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVX2: OnceLock<bool> = OnceLock::new();
        if *AVX2.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, ms: u32) -> Vec<i16> {
        let n = (rate * ms / 1000) as usize;
        (0..n)
            .map(|i| {
                ((i as f32 * hz * 2.0 * std::f32::consts::PI / rate as f32).sin() * 10000.0) as i16
            })
            .collect()
    }

    const PAIRS: [(u32, u32); 8] = [
        (8000, 24000),
        (16000, 24000),
        (24000, 8000),
        (24000, 16000),
        (8000, 16000),
        (16000, 8000),
        (48000, 16000),
        (22050, 16000),
    ];

    #[test]
    fn identity_when_rates_match() {
        let mut r = Resampler::new(16000, 16000).unwrap();
        let mut out = Vec::new();
        r.process(&[1, 2, 3], &mut out);
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn a_frame_in_is_a_frame_out_from_the_first_frame() {
        for (from, to) in PAIRS
            .into_iter()
            .filter(|(f, t)| f % 50 == 0 && t % 50 == 0)
        {
            let mut r = Resampler::new(from, to).unwrap();
            for frame in sine(from, 440.0, 200).chunks((from / 50) as usize) {
                let mut out = Vec::new();
                r.process(frame, &mut out);
                assert_eq!(out.len(), (to / 50) as usize, "{from}->{to}");
            }
        }
    }

    #[test]
    fn nothing_is_held_back() {
        // A burst at the very end of a frame must show up in that frame's output.
        let mut r = Resampler::new(16000, 24000).unwrap();
        let mut out = Vec::new();
        r.process(&[0; 320], &mut out);
        let mut frame = vec![0i16; 320];
        for s in &mut frame[280..] {
            *s = 20000;
        }
        out.clear();
        r.process(&frame, &mut out);
        let tail = &out[out.len() - 30..];
        assert!(
            crate::audio::pcm::rms(tail) > 5000.0,
            "the last 1.25 ms of input is missing from the output"
        );
    }

    #[test]
    fn length_and_level_are_kept() {
        for (from, to) in PAIRS {
            let input = sine(from, 440.0, 1000);
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            for piece in input.chunks(337) {
                r.process(piece, &mut out);
            }
            let expected = to as i64;
            assert!(
                (out.len() as i64 - expected).abs() <= 1,
                "{from}->{to}: {} samples",
                out.len()
            );
            let mid = &out[out.len() / 4..out.len() * 3 / 4];
            let level = crate::audio::pcm::rms(mid);
            assert!((level - 7071.0).abs() < 150.0, "{from}->{to}: rms {level}");
        }
    }

    #[test]
    fn downsampling_removes_content_above_nyquist() {
        // A 6 kHz tone at 24 kHz cannot exist at 8 kHz: it must be filtered, not aliased.
        for (from, to, hz) in [
            (24000, 8000, 6000.0),
            (24000, 16000, 9500.0),
            (48000, 16000, 12000.0),
        ] {
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            r.process(&sine(from, hz, 500), &mut out);
            let mid = &out[out.len() / 4..out.len() * 3 / 4];
            assert!(
                crate::audio::pcm::rms(mid) < 100.0,
                "{from}->{to} {hz} Hz: rms {}",
                crate::audio::pcm::rms(mid)
            );
        }
    }

    #[test]
    fn flush_and_reset() {
        let mut r = Resampler::new(24000, 8000).unwrap();
        let mut out = Vec::new();
        r.process(&sine(24000, 300.0, 100), &mut out);
        let before = out.len();
        r.flush(&mut out);
        assert!(out.len() > before);
        r.reset();
        let mut again = Vec::new();
        r.process(&[0; 480], &mut again);
        assert_eq!(again.len(), 160);
        assert!(
            again.iter().all(|&s| s == 0),
            "reset must forget the old audio"
        );
    }

    #[test]
    fn refuses_silly_rates() {
        assert!(Resampler::new(0, 16000).is_err());
        assert!(Resampler::new(16000, 44_101 * 7).is_err());
    }
}
