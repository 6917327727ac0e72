//! Silero VAD v5 over ONNX Runtime: one shared session, per-call streaming state.
//!
//! I/O (read from the model, checked at load): `input` f32 [B, context + window],
//! `state` f32 [2, B, 128], `sr` i64 scalar → `output` f32 [B, 1], `stateN` [2, B, 128].
//! Windows are 512 samples at 16 kHz and 256 at 8 kHz (32 ms), each preceded by the last
//! 64 / 32 samples of the previous input: without that context accuracy silently drops.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::{Tensor, TensorRef};

use super::{SpeechModel, VadError};
use crate::onnx;

pub const MODEL_FILE: &str = "silero_vad.onnx";
const STATE_WIDTH: usize = 128;
/// One stream's state: the two [1, 128] halves of [2, 1, 128].
const STATE_LEN: usize = 2 * STATE_WIDTH;
const INPUTS: [&str; 3] = ["input", "state", "sr"];
const OUTPUTS: [&str; 2] = ["output", "stateN"];

/// Samples per window and of context at `rate`.
fn geometry(rate: u32) -> Result<(usize, usize), VadError> {
    match rate {
        16000 => Ok((512, 64)),
        8000 => Ok((256, 32)),
        other => Err(VadError::Rate(other)),
    }
}

/// The loaded model, shared by every call.
///
/// ort 2.0.0-rc.15's `Session::run` takes `&mut self`, so the session sits behind a
/// `Mutex`: one inference (~0.1 ms for B = 1) holds it, which is short enough for the call
/// tasks to share one session instead of paying ~2 MB and a load per call. Batching many
/// calls' windows into one run ([`SileroModel::run_batch`]) also takes the lock once.
pub struct SileroModel {
    session: Mutex<Session>,
}

impl SileroModel {
    /// Loads ONNX Runtime and `silero_vad.onnx` from `models_dir`, with one intra-op thread
    /// (calls run in parallel on their own tasks; the model is too small to split).
    pub fn load(models_dir: &Path) -> Result<Self, VadError> {
        let env = onnx::environment(models_dir)?;
        let path = onnx::model_path(models_dir, MODEL_FILE)?;
        let model_err = |e: ort::Error| onnx::OnnxError::Model {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let session = Session::builder(env)
            .map_err(model_err)?
            .with_intra_threads(1)
            .map_err(|e| model_err(e.into()))?
            .with_inter_threads(1)
            .map_err(|e| model_err(e.into()))?
            .commit_from_file(&path)
            .map_err(model_err)?;
        check_io(&session)?;
        Ok(Self {
            session: Mutex::new(session),
        })
    }

    /// Runs `batch` windows in one inference. `input` holds `batch` rows of
    /// context + window samples in [-1, 1]; `state` is [2, batch, 128], replaced by the
    /// new state. Returns one probability per row.
    pub fn infer(
        &self,
        input: &[f32],
        state: &mut [f32],
        batch: usize,
        rate: u32,
    ) -> Result<Vec<f32>, VadError> {
        let (window, context) = geometry(rate)?;
        let width = window + context;
        if batch == 0 || input.len() != batch * width || state.len() != batch * STATE_LEN {
            return Err(VadError::Inference(format!(
                "batch {batch}: input {} / state {} values do not match",
                input.len(),
                state.len()
            )));
        }
        let fail = |e: ort::Error| VadError::Inference(e.to_string());
        let input_t = TensorRef::from_array_view(([batch, width], input)).map_err(fail)?;
        let state_t =
            TensorRef::from_array_view(([2, batch, STATE_WIDTH], &*state)).map_err(fail)?;
        let sr_t = Tensor::from_array(((), vec![i64::from(rate)])).map_err(fail)?;
        // A panic elsewhere while holding the lock leaves the session itself intact.
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session
            .run(ort::inputs!["input" => input_t, "state" => state_t, "sr" => sr_t])
            .map_err(fail)?;
        let (_, probs) = outputs["output"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        let (_, new_state) = outputs["stateN"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        if probs.len() != batch || new_state.len() != state.len() {
            return Err(VadError::Inference(format!(
                "model returned {} probabilities / {} state values for batch {batch}",
                probs.len(),
                new_state.len()
            )));
        }
        state.copy_from_slice(new_state);
        Ok(probs.to_vec())
    }

    /// One inference over one window from each stream (all at the same rate), for a
    /// scheduler that collects windows of many calls. Returns each stream's probability.
    pub fn run_batch(
        &self,
        streams: &mut [&mut SileroStream],
        windows: &[&[i16]],
    ) -> Result<Vec<f32>, VadError> {
        let Some(first) = streams.first() else {
            return Ok(Vec::new());
        };
        let rate = first.rate;
        if windows.len() != streams.len() || streams.iter().any(|s| s.rate != rate) {
            return Err(VadError::Inference(
                "a batch needs one window per stream, all at one rate".into(),
            ));
        }
        let batch = streams.len();
        let mut input = Vec::with_capacity(batch * (first.window + first.context.len()));
        for (stream, window) in streams.iter().zip(windows) {
            if window.len() != stream.window {
                return Err(VadError::Inference(format!(
                    "window of {} samples, expected {}",
                    window.len(),
                    stream.window
                )));
            }
            input.extend_from_slice(&stream.context);
            input.extend(window.iter().map(|&s| to_unit(s)));
        }
        // [2, B, 128]: half k of stream b lives at (k * B + b) * 128.
        let mut state = vec![0.0; batch * STATE_LEN];
        for (b, stream) in streams.iter().enumerate() {
            for k in 0..2 {
                let at = (k * batch + b) * STATE_WIDTH;
                state[at..at + STATE_WIDTH]
                    .copy_from_slice(&stream.state[k * STATE_WIDTH..(k + 1) * STATE_WIDTH]);
            }
        }
        let probs = self.infer(&input, &mut state, batch, rate)?;
        let width = first.window + first.context.len();
        for (b, stream) in streams.iter_mut().enumerate() {
            for k in 0..2 {
                let at = (k * batch + b) * STATE_WIDTH;
                stream.state[k * STATE_WIDTH..(k + 1) * STATE_WIDTH]
                    .copy_from_slice(&state[at..at + STATE_WIDTH]);
            }
            let row = &input[b * width..(b + 1) * width];
            let keep = stream.context.len();
            stream.context.copy_from_slice(&row[width - keep..]);
        }
        Ok(probs)
    }
}

/// Rejects a model whose I/O is not v5's (v4 had `h`/`c` instead of `state`).
fn check_io(session: &Session) -> Result<(), VadError> {
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let has_all = |have: &[&str], want: &[&str]| want.iter().all(|w| have.contains(w));
    if has_all(&inputs, &INPUTS) && has_all(&outputs, &OUTPUTS) {
        Ok(())
    } else {
        Err(VadError::Model(format!(
            "expected Silero v5 I/O {INPUTS:?} -> {OUTPUTS:?}, found {inputs:?} -> {outputs:?}"
        )))
    }
}

fn to_unit(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

/// One call's Silero state: recurrent state and the context carried between windows.
pub struct SileroStream {
    model: Arc<SileroModel>,
    rate: u32,
    window: usize,
    context: Vec<f32>,
    state: Vec<f32>,
    input: Vec<f32>,
}

impl SileroStream {
    pub fn new(model: Arc<SileroModel>, rate: u32) -> Result<Self, VadError> {
        let (window, context) = geometry(rate)?;
        Ok(Self {
            model,
            rate,
            window,
            context: vec![0.0; context],
            state: vec![0.0; STATE_LEN],
            input: Vec::with_capacity(window + context),
        })
    }
}

impl SpeechModel for SileroStream {
    fn window_samples(&self) -> usize {
        self.window
    }

    fn speech_probability(&mut self, window: &[i16]) -> Result<f32, VadError> {
        if window.len() != self.window {
            return Err(VadError::Inference(format!(
                "window of {} samples, expected {}",
                window.len(),
                self.window
            )));
        }
        self.input.clear();
        self.input.extend_from_slice(&self.context);
        self.input.extend(window.iter().map(|&s| to_unit(s)));
        let probs = self
            .model
            .infer(&self.input, &mut self.state, 1, self.rate)?;
        let keep = self.context.len();
        self.context
            .copy_from_slice(&self.input[self.input.len() - keep..]);
        probs
            .first()
            .copied()
            .ok_or_else(|| VadError::Inference("no probability returned".into()))
    }

    fn reset(&mut self) {
        self.context.fill(0.0);
        self.state.fill(0.0);
    }
}
