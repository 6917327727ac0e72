//! Local Piper TTS: espeak-ng phonemes → a VITS voice over ONNX Runtime (providers.md
//! §7.1–7.3).
//!
//! [`PiperTts::load`] does every check up front (voice files, espeak-ng and its voice,
//! the ONNX Runtime library, the graph's inputs), so a misconfiguration is one
//! [`ProviderError::Config`] at start. A stream renders its text pieces in order, sentence
//! by sentence on tokio's blocking pool, and sends each sentence's audio as soon as it is
//! ready; once the audio receiver is dropped, it stops after the sentence in hand.

mod config;
mod espeak;
mod ids;
mod model;
mod phonemize;
mod stream;
mod synth;
mod voice;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub use config::PiperConfig;
pub use ids::IdMap;
pub use model::to_pcm16;
pub use phonemize::{split_clauses, Clause};
pub use voice::{PhonemeType, Voice};

use super::{TextToSpeech, TtsStream};
use crate::onnx;
use crate::providers::ProviderError;
use espeak::Espeak;
use model::PiperModel;
use synth::Engine;

/// Text pieces queued per stream before `send` waits.
const TEXT_QUEUE: usize = 32;
/// Sentences of audio queued before rendering waits for the reader.
const AUDIO_QUEUE: usize = 8;

/// A loaded Piper voice, shared by every stream (one ONNX session per voice).
#[derive(Clone)]
pub struct PiperTts {
    engine: Arc<Engine>,
}

impl PiperTts {
    /// Loads the voice with the runtime and relative paths from [`onnx::models_dir`].
    /// Blocking (reads a model of tens of MB): call at start-up or in `spawn_blocking`.
    pub fn new(config: &PiperConfig) -> Result<Self, ProviderError> {
        Self::load(config, &onnx::models_dir())
    }

    /// Same, with ONNX Runtime (`lib/`) and relative voice paths under `models_dir`.
    pub fn load(config: &PiperConfig, models_dir: &Path) -> Result<Self, ProviderError> {
        if config.model.as_os_str().is_empty() {
            return Err(ProviderError::Config(
                "piper: `model` is not set (path of a voice's .onnx)".into(),
            ));
        }
        let (model_path, json_path) = config.paths(models_dir);
        if !model_path.is_file() {
            return Err(ProviderError::Config(format!(
                "Piper model not found: {} (run models/fetch for the test voice, or set `model`)",
                model_path.display()
            )));
        }
        if !json_path.is_file() {
            return Err(ProviderError::Config(format!(
                "Piper voice config not found: {} (the .onnx.json beside the model, or set `config`)",
                json_path.display()
            )));
        }
        let voice = Voice::load(&json_path).map_err(ProviderError::Config)?;
        let scales = [
            config.noise_scale.unwrap_or(voice.noise_scale),
            config.length_scale.unwrap_or(voice.length_scale),
            config.noise_w.unwrap_or(voice.noise_w),
        ];
        voice::check_scales(scales[0], scales[1], scales[2])
            .map_err(|e| ProviderError::Config(format!("piper: {e}")))?;
        let sid = voice
            .speaker_id(config.speaker.as_deref())
            .map_err(|e| ProviderError::Config(format!("piper: {e}")))?;
        let espeak = match voice.phoneme_type {
            PhonemeType::Espeak => {
                let espeak = Espeak::get(config.espeak_data_dir.as_deref())
                    .map_err(ProviderError::Config)?;
                espeak
                    .check_voice(&voice.espeak_voice)
                    .map_err(ProviderError::Config)?;
                Some(espeak)
            }
            PhonemeType::Text => None,
        };
        let env =
            onnx::environment(models_dir).map_err(|e| ProviderError::Config(e.to_string()))?;
        let model = PiperModel::load(env, &model_path, config.threads)?;
        if voice.num_speakers > 1 && !model.has_sid() {
            tracing::warn!(
                model = %model_path.display(),
                speakers = voice.num_speakers,
                "Piper voice lists several speakers but its graph has no `sid` input"
            );
        }
        let silence =
            (u64::from(config.sentence_silence_ms) * u64::from(voice.sample_rate) / 1000) as usize;
        Ok(Self {
            engine: Arc::new(Engine {
                voice,
                model,
                espeak,
                scales,
                sid,
                silence,
                reported: Mutex::new(HashSet::new()),
                rendered: AtomicU64::new(0),
            }),
        })
    }

    /// The voice as loaded (sample rate, maps, default scales).
    pub fn voice(&self) -> &Voice {
        &self.engine.voice
    }

    /// Ids of each sentence of `text`, as they would be synthesized. Blocking (espeak-ng,
    /// well under a millisecond per sentence).
    pub fn sentence_ids(&self, text: &str) -> Result<Vec<Vec<i64>>, ProviderError> {
        self.engine.sentence_ids(text)
    }

    /// Sentences synthesized by this voice since it was loaded.
    pub fn sentences_rendered(&self) -> u64 {
        self.engine.rendered.load(Ordering::Relaxed)
    }
}

impl TextToSpeech for PiperTts {
    fn name(&self) -> &'static str {
        "piper"
    }

    fn sample_rate(&self) -> u32 {
        self.engine.voice.sample_rate
    }

    /// Must be awaited inside a tokio runtime (the stream is a spawned task).
    fn open(&self) -> BoxFuture<'static, Result<TtsStream, ProviderError>> {
        let engine = self.engine.clone();
        Box::pin(async move {
            let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
            let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
            tokio::spawn(stream::speak(engine, text_rx, audio_tx));
            Ok(TtsStream {
                text: text_tx,
                audio: audio_rx,
            })
        })
    }
}
