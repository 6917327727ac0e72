//! What the simulated caller says: a cycle of pt-BR utterances, rendered once per rate with
//! espeak-ng, pre-encoded as L16 and shared by every call (a load test renders each once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;

use super::profile::frame_samples;
use crate::speech;

/// One caller turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallerTurn {
    /// What the caller says (pt-BR, spoken by espeak-ng).
    pub text: String,
    /// Start this utterance this many ms into the previous answer (a barge-in) instead of
    /// waiting for the answer to finish.
    pub barge_in_after_ms: Option<u32>,
}

impl CallerTurn {
    /// A turn spoken after the previous answer has finished.
    pub fn new(text: impl Into<String>) -> Self {
        CallerTurn {
            text: text.into(),
            barge_in_after_ms: None,
        }
    }

    /// A turn that interrupts the previous answer `after_ms` into it.
    pub fn barging_in(text: impl Into<String>, after_ms: u32) -> Self {
        CallerTurn {
            text: text.into(),
            barge_in_after_ms: Some(after_ms),
        }
    }
}

/// A few ordinary things a caller to a Brazilian business says.
pub fn default_script() -> Vec<CallerTurn> {
    [
        "Olá, eu gostaria de marcar uma consulta para a próxima semana.",
        "Pode ser na terça-feira de manhã?",
        "Meu nome é Ana Souza e meu telefone é nove nove oito sete seis.",
        "Obrigada, era só isso.",
    ]
    .into_iter()
    .map(CallerTurn::new)
    .collect()
}

/// An utterance as the caller's frames: L16 LE, padded with silence to whole 20 ms frames.
#[derive(Debug)]
pub struct Utterance {
    /// What is said.
    pub text: String,
    /// Samples of speech before the padding (the last one marks the end of speech).
    pub speech_samples: usize,
    /// Whole 20 ms frames.
    pub frames: usize,
    frame_bytes: usize,
    bytes: Bytes,
}

impl Utterance {
    /// Builds the frames from mono samples at `rate`.
    ///
    /// Leading silence is added so the speech ends in the middle of its last frame. A
    /// frame-clocked VAD (the fake provider's, like the real ones) sees the end of speech
    /// one frame later if it falls in the last instant of a frame; placing it mid-frame
    /// keeps that ±1 frame quantisation out of the latency the load tool reports.
    pub fn from_samples(text: &str, samples: &[i16], rate: u32) -> Self {
        let frame = frame_samples(rate);
        let lead = (frame / 2 + frame - samples.len() % frame) % frame;
        let speech_samples = lead + samples.len();
        let frames = speech_samples.div_ceil(frame).max(1);
        let mut padded = vec![0u8; lead * 2];
        padded.reserve(frames * frame * 2);
        voice_core::audio::pcm::write_le(samples, &mut padded);
        padded.resize(frames * frame * 2, 0);
        Utterance {
            text: text.to_string(),
            speech_samples,
            frames,
            frame_bytes: frame * 2,
            bytes: Bytes::from(padded),
        }
    }

    /// Frame `i` (a zero-copy slice); silence past the end.
    pub fn frame(&self, i: usize) -> Bytes {
        if i >= self.frames {
            return silence(self.frame_bytes);
        }
        self.bytes
            .slice(i * self.frame_bytes..(i + 1) * self.frame_bytes)
    }

    /// Length of the speech in ms.
    pub fn speech_ms(&self, rate: u32) -> f64 {
        self.speech_samples as f64 * 1000.0 / f64::from(rate)
    }
}

/// 20 ms of mono silence at the rate whose frame is `frame_bytes` long.
pub fn silence(frame_bytes: usize) -> Bytes {
    static ZEROS: [u8; 1920] = [0; 1920]; // 20 ms mono at 48 kHz
    if frame_bytes <= ZEROS.len() {
        Bytes::from_static(&ZEROS[..frame_bytes])
    } else {
        Bytes::from(vec![0; frame_bytes])
    }
}

type Cache = Mutex<HashMap<(String, u32), Arc<Utterance>>>;

/// `text` spoken at `rate`, rendered once per process. Blocks (runs espeak-ng) on a miss.
pub fn render(text: &str, rate: u32) -> anyhow::Result<Arc<Utterance>> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (text.to_string(), rate);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let samples = speech::synthesize(text, speech::PT_BR, rate)
        .with_context(|| format!("speaking {text:?}"))?;
    let utterance = Arc::new(Utterance::from_samples(text, &samples, rate));
    if let Ok(mut c) = cache.lock() {
        c.insert(key, utterance.clone());
    }
    Ok(utterance)
}

/// Renders every turn of `script` at `rate` off the async runtime.
pub async fn render_script(
    script: &[CallerTurn],
    rate: u32,
) -> anyhow::Result<Vec<Arc<Utterance>>> {
    let texts: Vec<String> = script.iter().map(|t| t.text.clone()).collect();
    tokio::task::spawn_blocking(move || texts.iter().map(|t| render(t, rate)).collect())
        .await
        .context("rendering the caller's speech")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_whole_frames_ending_speech_mid_frame() {
        let u = Utterance::from_samples("x", &[1i16; 500], 16000);
        // 300 samples of lead-in silence put the end of speech at the middle of frame 2.
        assert_eq!((u.frames, u.speech_samples), (3, 800));
        assert_eq!(u.frame(0).len(), 640);
        let first = voice_core::audio::pcm::from_le_bytes(&u.frame(0));
        assert!(first[..300].iter().all(|&s| s == 0));
        assert_eq!(first[300..], [1; 20]);
        let last = voice_core::audio::pcm::from_le_bytes(&u.frame(2));
        assert_eq!(last[..160], [1; 160]);
        assert!(last[160..].iter().all(|&s| s == 0));
        assert!(u.frame(3).iter().all(|&b| b == 0));
        assert_eq!(silence(640).len(), 640);
        assert_eq!(silence(4000).len(), 4000);
    }
}
