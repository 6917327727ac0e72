//! Audio primitives: L16 framing, G.711, resampling, WAV, VAD and end-of-turn detection.
//!
//! Everything on the call path is mono signed 16-bit PCM (`i16`) at a known rate.

pub mod g711;
pub mod pcm;
pub mod resample;
pub mod turn;
pub mod vad;
pub mod wav;

pub use resample::Resampler;

/// Duration of one FreeSWITCH media frame.
pub const FRAME_MS: u32 = 20;

/// Samples in one 20 ms frame at `rate`.
pub const fn frame_samples(rate: u32) -> usize {
    (rate / 1000 * FRAME_MS) as usize
}
