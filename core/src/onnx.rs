//! ONNX Runtime, loaded at run time from the library `models/fetch` puts in
//! `models/lib/libonnxruntime.so` (ort's `load-dynamic`): nothing is downloaded at build
//! time, and a missing or broken library is one clear error at start, never a panic mid-call.

use ort::environment::Environment;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime library not found at {0} (run models/fetch, or set VOICE_MODELS_DIR)")]
    LibraryMissing(String),
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    Load { path: String, message: String },
    #[error("model file not found: {0} (run models/fetch, or set VOICE_MODELS_DIR)")]
    ModelMissing(String),
    #[error("cannot load model {path}: {message}")]
    Model { path: String, message: String },
}

/// Where models and the runtime live: `$VOICE_MODELS_DIR`, else `models/` under the
/// current directory, else `models/` beside the workspace (for tests run from a crate).
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VOICE_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("models");
    if local.join("SHA256SUMS").exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// Loads ONNX Runtime once per process from `dir/lib/libonnxruntime.so`. Later calls
/// return the first result.
pub fn init(dir: &Path) -> Result<(), OnnxError> {
    environment(dir).map(|_| ())
}

/// The process-wide ONNX Runtime environment (loaded by the first call, as [`init`]).
/// Sessions need it (`Session::builder(env)`), and ort keeps only a weak reference,
/// so it is held here for the life of the process.
pub fn environment(dir: &Path) -> Result<&'static Environment, OnnxError> {
    static RESULT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();
    RESULT
        .get_or_init(|| load(&dir.join("lib").join("libonnxruntime.so")))
        .as_ref()
        .map_err(Clone::clone)
}

fn load(lib: &Path) -> Result<Environment, OnnxError> {
    let shown = lib.display().to_string();
    if !lib.is_file() {
        return Err(OnnxError::LibraryMissing(shown));
    }
    let builder = ort::init_from(lib).map_err(|e| OnnxError::Load {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    builder
        .with_name("voice-ai")
        .build()
        .map_err(|e| OnnxError::Load {
            path: shown,
            message: e.to_string(),
        })
}

/// Path of a model file in `dir`, checked to exist.
pub fn model_path(dir: &Path, file: &str) -> Result<PathBuf, OnnxError> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(OnnxError::ModelMissing(path.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_a_clear_error() {
        let err = load(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(err.to_string().contains("run models/fetch"), "{err}");
        let err = model_path(Path::new("/nonexistent"), "silero_vad.onnx").unwrap_err();
        assert!(err.to_string().contains("silero_vad.onnx"), "{err}");
    }

    #[test]
    fn loads_the_fetched_runtime() {
        // scripts/test runs models/fetch first.
        init(&models_dir()).expect("ONNX Runtime from models/lib");
    }
}
