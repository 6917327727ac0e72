//! A Piper voice's ONNX graph (providers.md §7.2): ids in, float audio out.
//!
//! `input` i64 [1, N], `input_lengths` i64 [1], `scales` f32 [3] = noise, length, noise_w,
//! and `sid` i64 [1] only when the graph has it (multi-speaker voices) → `output` f32
//! [1, 1, T] (some exports [1, T]: only the element count is used).

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{Tensor, TensorRef};

use crate::providers::ProviderError;

const INPUTS: [&str; 3] = ["input", "input_lengths", "scales"];
const SID: &str = "sid";

/// Longest id sequence fed at once. Sentences are short; this only stops a text without
/// punctuation from growing one inference (and its memory) without bound.
pub const MAX_IDS: usize = 4096;

pub struct PiperModel {
    // ort rc.15's `Session::run` takes `&mut self`. One session per voice: a sentence's
    // inference holds it (tens to hundreds of ms), and its intra-op threads split the work.
    session: Mutex<Session>,
    has_sid: bool,
}

impl PiperModel {
    /// Loads `path` with `threads` intra-op threads. Blocking (the file is tens of MB).
    pub fn load(
        env: &'static ort::environment::Environment,
        path: &Path,
        threads: usize,
    ) -> Result<Self, ProviderError> {
        let fail = |e: &dyn std::fmt::Display| {
            ProviderError::Config(format!("cannot load Piper model {}: {e}", path.display()))
        };
        let session = build_session(env, path, threads).map_err(|e| fail(&e))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if !INPUTS.iter().all(|want| inputs.contains(want)) || session.outputs().is_empty() {
            return Err(fail(&format!(
                "expected Piper inputs {INPUTS:?} (+ optional {SID:?}) and an output, found {inputs:?}"
            )));
        }
        let has_sid = inputs.contains(&SID);
        Ok(Self {
            session: Mutex::new(session),
            has_sid,
        })
    }

    /// Whether the graph takes a speaker id.
    pub fn has_sid(&self) -> bool {
        self.has_sid
    }

    /// Audio for one sentence's ids, in about [-1, 1]. Blocking: run it off the async
    /// runtime. `sid` is fed only when the graph has the input.
    pub fn infer(
        &self,
        ids: &[i64],
        scales: [f32; 3],
        sid: i64,
    ) -> Result<Vec<f32>, ProviderError> {
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(ProviderError::Protocol(format!(
                "{} phoneme ids for one sentence (1..={MAX_IDS})",
                ids.len()
            )));
        }
        let fail = |e: ort::Error| ProviderError::Unavailable(format!("Piper inference: {e}"));
        let input = TensorRef::from_array_view(([1usize, ids.len()], ids)).map_err(fail)?;
        let lengths = Tensor::from_array(([1usize], vec![ids.len() as i64])).map_err(fail)?;
        let scales = Tensor::from_array(([3usize], scales.to_vec())).map_err(fail)?;
        let mut inputs = ort::inputs![
            "input" => input,
            "input_lengths" => lengths,
            "scales" => scales,
        ];
        if self.has_sid {
            let sid = Tensor::from_array(([1usize], vec![sid])).map_err(fail)?;
            inputs.push((SID.into(), sid.into()));
        }
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(fail)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(fail)?;
        Ok(audio.to_vec())
    }
}

fn build_session(
    env: &'static ort::environment::Environment,
    path: &Path,
    threads: usize,
) -> Result<Session, ort::Error> {
    Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads.max(1))?
        // Idle pool threads sleep instead of spinning: the cores belong to the calls.
        .with_intra_op_spinning(false)?
        .with_inter_threads(1)?
        .commit_from_file(path)
}

/// Float audio → PCM16, the one rule used everywhere (piper1-gpl's): `x * 32767`,
/// clipped, rounded; no per-sentence normalization, so loudness does not jump between
/// sentences. NaN becomes 0.
pub fn to_pcm16(audio: &[f32]) -> Vec<i16> {
    audio
        .iter()
        .map(|&x| (x.clamp(-1.0, 1.0) * 32767.0).round() as i16)
        .collect()
}
