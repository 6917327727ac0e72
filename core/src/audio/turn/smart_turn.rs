//! The Smart Turn v3.2 ONNX model: 8 s of 16 kHz audio in, the probability that the
//! speaker has finished their turn out. A few sessions, one per core, are shared by all
//! calls.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use super::mel::{log_mel, N_FRAMES, N_MELS, WINDOW_SAMPLES};
use super::TurnError;
use crate::onnx;

/// File name under the models directory (fetched by `models/fetch`).
pub const MODEL_FILE: &str = "smart-turn-v3.2-cpu.onnx";
const INPUT: &str = "input_features";

pub struct SmartTurnModel {
    // `Session::run` needs `&mut`; an inference (~100 ms) holds one session. One session
    // per core lets turn ends of different calls run in parallel.
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl SmartTurnModel {
    /// Loads the model from `models_dir` (see [`onnx::models_dir`]), loading ONNX Runtime
    /// first if needed: one session per two cores (at most 8), each inference on two
    /// threads. The turn decision waits for the inference, so splitting it halves that
    /// wait; two cores per session keep the same throughput as one session per core.
    pub fn load(models_dir: &Path) -> Result<Arc<Self>, TurnError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.clamp(1, 2);
        Self::load_sessions(models_dir, (cores / threads).clamp(1, 8), threads)
    }

    /// Loads `count` parallel sessions (at least one) of `threads` intra-op threads each.
    pub fn load_sessions(
        models_dir: &Path,
        count: usize,
        threads: usize,
    ) -> Result<Arc<Self>, TurnError> {
        let path = onnx::model_path(models_dir, MODEL_FILE)?;
        let env = onnx::environment(models_dir)?;
        let model_error = |message: String| onnx::OnnxError::Model {
            path: path.display().to_string(),
            message,
        };
        let fail = |e: &dyn std::fmt::Display| model_error(e.to_string());
        // ONNX Runtime's pool threads are created with the session and inherit the creating
        // thread's priority: create them on a thread that has lowered its own.
        let built = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    lower_this_thread_priority();
                    build_sessions(env, &path, count, threads)
                })
                .join()
        });
        let sessions = match built {
            Ok(result) => result.map_err(|e| fail(&e))?,
            Err(_) => return Err(fail(&"session builder thread panicked").into()),
        };
        Ok(Arc::new(Self {
            sessions,
            next: AtomicUsize::new(0),
        }))
    }
}

/// Inference yields to the audio path: a turn decision ~10 ms later is harmless, a call's
/// playout running dry is not. Linux keeps a nice value per thread.
fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id; failure only leaves the
    // priority unchanged.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, INFERENCE_NICE);
    }
}

/// Nice value of inference threads (0 is normal, 19 the lowest).
const INFERENCE_NICE: libc::c_int = 10;

fn build_sessions(
    env: &'static ort::environment::Environment,
    path: &Path,
    count: usize,
    threads: usize,
) -> Result<Vec<Mutex<Session>>, ort::Error> {
    let mut sessions = Vec::new();
    for _ in 0..count.max(1) {
        let session = Session::builder(env)?
            .with_optimization_level(GraphOptimizationLevel::Level3)?
            .with_intra_threads(threads.max(1))?
            // Idle pool threads sleep instead of spinning: the cores belong to the calls.
            .with_intra_op_spinning(false)?
            .with_inter_threads(1)?
            .commit_from_file(path)?;
        sessions.push(Mutex::new(session));
    }
    Ok(sessions)
}

impl SmartTurnModel {
    /// How many inferences can run at once.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Probability (0..1) that the turn is complete, from mono 16 kHz audio ending now.
    /// Only the last 8 s count. Blocking (tens of ms): call from `spawn_blocking`.
    pub fn predict(&self, audio_16k: &[i16]) -> Result<f32, TurnError> {
        self.predict_features(&log_mel(&model_window(audio_16k)))
    }

    /// Same, from features already computed by [`log_mel`].
    pub fn predict_features(&self, features: &[f32]) -> Result<f32, TurnError> {
        if features.len() != N_MELS * N_FRAMES {
            return Err(TurnError::FeatureShape(features.len()));
        }
        lower_this_thread_priority();
        let inference = |e: ort::Error| TurnError::Inference(e.to_string());
        let input = TensorRef::from_array_view(([1usize, N_MELS, N_FRAMES], features))
            .map_err(inference)?;
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let mut session = self.sessions[turn]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![INPUT => input])
            .map_err(inference)?;
        let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(inference)?;
        // The graph ends in a sigmoid, despite the output's name ("logits").
        match values.first() {
            Some(&p) if (0.0..=1.0).contains(&p) => Ok(p),
            other => Err(TurnError::Inference(format!(
                "expected one probability, got {other:?}"
            ))),
        }
    }
}

/// The last 8 s as f32 in [-1, 1), zero-padded at the beginning when shorter (so the
/// speech always ends at the right edge, where the model looks).
pub fn model_window(audio_16k: &[i16]) -> Vec<f32> {
    let tail = &audio_16k[audio_16k.len().saturating_sub(WINDOW_SAMPLES)..];
    let mut window = vec![0f32; WINDOW_SAMPLES - tail.len()];
    window.extend(tail.iter().map(|&s| s as f32 / 32768.0));
    window
}
