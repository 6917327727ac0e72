//! Tests that write real files in a temporary folder and read them back.

mod alignment;
mod crash;
mod files;
mod read_back;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{CallFacts, RecordingFormat, RecordingSettings};

/// A folder under the system temp dir, removed when dropped.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "voice-core-recording-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn settings(dir: &Path, format: RecordingFormat, flush_ms: u32) -> RecordingSettings {
    RecordingSettings {
        enabled: true,
        format,
        dir: dir.to_path_buf(),
        flush_ms,
        ..Default::default()
    }
}

/// 2023-11-14T22:13:20Z: a fixed start, so a test knows the folder.
pub(super) fn started_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub(super) fn call(call_id: &str, rate: u32) -> CallFacts {
    CallFacts {
        call_id: call_id.into(),
        tenant: "acme".into(),
        caller: Some("+15550001".into()),
        callee: Some("+15550002".into()),
        rate,
        started_at: started_at(),
        consent: None,
    }
}

/// `n` samples of a sine at `freq` Hz, starting at sample `from` of the tone.
pub(super) fn tone(rate: u32, freq: f32, from: usize, n: usize, amplitude: f32) -> Vec<i16> {
    (from..from + n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            ((t * freq * std::f32::consts::TAU).sin() * amplitude) as i16
        })
        .collect()
}

pub(super) fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

pub(super) fn split(stereo: &[i16]) -> (Vec<i16>, Vec<i16>) {
    let left = stereo.iter().step_by(2).copied().collect();
    let right = stereo.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

#[test]
fn recorders_are_shared_and_call_recorders_move_to_call_tasks() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    fn movable<T: Send + 'static>() {}
    shared::<super::Recorders>();
    movable::<super::CallRecorder>();
}
