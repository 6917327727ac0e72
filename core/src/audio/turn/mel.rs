//! Whisper-style log-mel features, as Smart Turn v3 was trained on them (the spec is
//! pipecat's numpy `_whisper_features.py`, itself transformers' `WhisperFeatureExtractor`
//! with `chunk_length = 8`): waveform normalised to zero mean and unit variance, centred
//! STFT (reflect padding, periodic Hann window, n_fft 400, hop 160), power spectrum,
//! 80 Slaney mel bins, log10 floored at 1e-10, clamped to 8 below the maximum, scaled
//! by `(x + 4) / 4`. Computed in f64 like the reference.

use std::sync::{Arc, OnceLock};

use realfft::{RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE: u32 = 16_000;
/// The model sees exactly 8 s.
pub const WINDOW_SAMPLES: usize = 8 * SAMPLE_RATE as usize;
pub const N_MELS: usize = 80;
/// 10 ms frames over 8 s (the reference computes 801 and drops the last).
pub const N_FRAMES: usize = WINDOW_SAMPLES / HOP;

const N_FFT: usize = 400;
const HOP: usize = 160;
const N_BINS: usize = N_FFT / 2 + 1;
const MEL_FLOOR: f64 = 1e-10;
const VARIANCE_EPS: f64 = 1e-7;
/// Dynamic range kept below the loudest value, in log10 units (80 dB).
const DYNAMIC_RANGE: f64 = 8.0;

/// Log-mel features of one 8 s window of 16 kHz audio in [-1, 1], mel-major
/// (`N_MELS` rows of `N_FRAMES`), the layout of the model's `(1, 80, 800)` input.
/// Shorter input is zero-padded at the end and longer input truncated, as in the
/// reference; callers wanting the *last* 8 s use [`super::model_window`].
pub fn log_mel(audio_16k: &[f32]) -> Vec<f32> {
    let front_end = FrontEnd::shared();
    let signal = normalized(audio_16k);
    let mut log_spec = vec![0f64; N_MELS * N_FRAMES];
    let mut frame = front_end.fft.make_input_vec();
    let mut spectrum = front_end.fft.make_output_vec();
    let mut scratch = front_end.fft.make_scratch_vec();
    let mut power = [0f64; N_BINS];
    let pad = N_FFT / 2;
    for t in 0..N_FRAMES {
        for (n, (slot, w)) in frame.iter_mut().zip(&front_end.window).enumerate() {
            *slot = reflected(&signal, (t * HOP + n) as isize - pad as isize) * w;
        }
        // Lengths come from the plan itself, so this cannot fail.
        let _ = front_end
            .fft
            .process_with_scratch(&mut frame, &mut spectrum, &mut scratch);
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for (m, weights) in front_end.filters.chunks_exact(N_BINS).enumerate() {
            let energy: f64 = weights.iter().zip(&power).map(|(w, p)| w * p).sum();
            log_spec[m * N_FRAMES + t] = energy.max(MEL_FLOOR).log10();
        }
    }
    let floor = log_spec.iter().copied().fold(f64::NEG_INFINITY, f64::max) - DYNAMIC_RANGE;
    log_spec
        .iter()
        .map(|&v| ((v.max(floor) + 4.0) / 4.0) as f32)
        .collect()
}

/// The 8 s window, zero-mean and unit-variance, rounded to f32 as the reference does
/// before its f64 spectrogram.
fn normalized(audio: &[f32]) -> Vec<f64> {
    let mut x: Vec<f64> = audio
        .iter()
        .take(WINDOW_SAMPLES)
        .map(|&s| s as f64)
        .collect();
    x.resize(WINDOW_SAMPLES, 0.0);
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
    let scale = 1.0 / (var + VARIANCE_EPS).sqrt();
    x.iter()
        .map(|v| ((v - mean) * scale) as f32 as f64)
        .collect()
}

/// numpy's `reflect` padding (the edge sample is not repeated).
fn reflected(x: &[f64], i: isize) -> f64 {
    let last = x.len() as isize - 1;
    let j = if i < 0 {
        -i
    } else if i > last {
        2 * last - i
    } else {
        i
    };
    x.get(j as usize).copied().unwrap_or(0.0)
}

/// What does not depend on the audio: FFT plan, window and filterbank, built once.
struct FrontEnd {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    /// `N_MELS` rows of `N_BINS` weights.
    filters: Vec<f64>,
}

impl FrontEnd {
    fn shared() -> &'static FrontEnd {
        static FRONT_END: OnceLock<FrontEnd> = OnceLock::new();
        FRONT_END.get_or_init(|| FrontEnd {
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
            window: periodic_hann(N_FFT),
            filters: slaney_mel_filters(),
        })
    }
}

fn periodic_hann(len: usize) -> Vec<f64> {
    (0..len)
        .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / len as f64).cos())
        .collect()
}

/// Triangular filters evenly spaced on the Slaney mel scale from 0 Hz to Nyquist, each
/// scaled to unit area (Slaney normalisation), as `_build_mel_filterbank`.
fn slaney_mel_filters() -> Vec<f64> {
    let nyquist = SAMPLE_RATE as f64 / 2.0;
    let mel_max = hz_to_mel(nyquist);
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(mel_max * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let mut filters = vec![0f64; N_MELS * N_BINS];
    for (m, row) in filters.chunks_exact_mut(N_BINS).enumerate() {
        let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let area_norm = 2.0 / (hi - lo);
        for (k, w) in row.iter_mut().enumerate() {
            let f = nyquist * k as f64 / (N_BINS - 1) as f64;
            let rising = (f - lo) / (mid - lo);
            let falling = (hi - f) / (hi - mid);
            *w = rising.min(falling).max(0.0) * area_norm;
        }
    }
    filters
}

const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = 15.0;

/// Slaney scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() * 27.0 / 6.4f64.ln()
    } else {
        3.0 * hz / 200.0
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (6.4f64.ln() / 27.0 * (mel - MIN_LOG_MEL)).exp()
    } else {
        200.0 * mel / 3.0
    }
}
