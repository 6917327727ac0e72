//! What can go wrong: [`RecordingError`] is returned at start-up and when a call starts;
//! [`WriteError`] is what the writer threads log and count while a call runs.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("invalid [recording] settings: {0}")]
    InvalidSettings(String),
    #[error("recording folder {path} is not usable: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start a recording writer thread: {0}")]
    Spawn(std::io::Error),
    #[error("recording is disabled")]
    Disabled,
    #[error("cannot record a call at {rate} Hz as {format}")]
    UnsupportedRate { rate: u32, format: &'static str },
    #[error("the recording writer thread has stopped")]
    WriterGone,
}

/// A failure while writing one call's files (logged and counted, never returned to the call).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("opus: {0}")]
    Opus(#[from] audiopus::Error),
    #[error(transparent)]
    Resample(#[from] crate::audio::resample::ResampleError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}
