//! WebRTC VAD (libfvad via the `webrtc-vad` crate) on 20 ms frames.
//!
//! About 3 µs per frame, but it is a level/spectrum GMM: steady loud noise counts as voice
//! (pink noise at 0.3 of full scale starts "speech" at once and never ends it, while at
//! 0.05 it stays quiet; see the tests). Prefer Silero where callers are in noise.

use webrtc_vad::{SampleRate, Vad as Fvad, VadMode};

use super::{SpeechModel, VadError};

/// `webrtc_vad::Vad` holds a raw `*mut Fvad` and so is not `Send`, which would stop a call
/// task holding it across an `.await` from being spawned on tokio's multi-thread runtime.
struct SendFvad(Fvad);

// SAFETY: libfvad's state is plain heap memory allocated by `fvad_new` with no thread-local
// or thread-affine parts; it is only reached through `&mut self` here (one thread at a
// time), so moving it between threads is sound. It is deliberately not `Sync`.
unsafe impl Send for SendFvad {}

/// Decides 20 ms frames at 8 or 16 kHz; probability is 1.0 (voice) or 0.0.
pub struct WebrtcModel {
    vad: SendFvad,
    rate: u32,
    mode: u8,
    frame: usize,
}

impl WebrtcModel {
    /// `mode` 0 (quality) … 3 (very aggressive).
    pub fn new(rate: u32, mode: u8) -> Result<Self, VadError> {
        let frame = match rate {
            8000 | 16000 => rate as usize / 50,
            other => return Err(VadError::Rate(other)),
        };
        if mode > 3 {
            return Err(VadError::Settings(format!(
                "webrtc_mode {mode} must be 0..=3"
            )));
        }
        Ok(Self {
            vad: SendFvad(make(rate, mode)),
            rate,
            mode,
            frame,
        })
    }
}

fn make(rate: u32, mode: u8) -> Fvad {
    let rate = if rate == 8000 {
        SampleRate::Rate8kHz
    } else {
        SampleRate::Rate16kHz
    };
    let mode = match mode {
        0 => VadMode::Quality,
        1 => VadMode::LowBitrate,
        2 => VadMode::Aggressive,
        _ => VadMode::VeryAggressive,
    };
    Fvad::new_with_rate_and_mode(rate, mode)
}

impl SpeechModel for WebrtcModel {
    fn window_samples(&self) -> usize {
        self.frame
    }

    fn speech_probability(&mut self, window: &[i16]) -> Result<f32, VadError> {
        // The crate indexes `window[0]`; an empty or odd-sized frame must not reach it.
        if window.len() != self.frame {
            return Err(VadError::Frame(window.len()));
        }
        match self.vad.0.is_voice_segment(window) {
            Ok(true) => Ok(1.0),
            Ok(false) => Ok(0.0),
            Err(()) => Err(VadError::Frame(window.len())),
        }
    }

    fn reset(&mut self) {
        // fvad_reset would also forget rate and mode; a fresh instance is as cheap.
        self.vad = SendFvad(make(self.rate, self.mode));
    }
}
