//! Audio on the shared filesystem: answers written as WAV under `audio.dir` (FreeSWITCH
//! plays them by path, or by URL through `GET /v1/audio/{file}`), and caller recordings
//! read only from the allowed folders.

use std::path::{Component, Path, PathBuf};

use axum::http::StatusCode;
use voice_core::audio::wav;

use super::error::{clip, ApiError};
use crate::config::{AudioSettings, ServerSettings};

pub struct AudioFiles {
    dir: PathBuf,
    public_url: String,
    /// As configured, and resolved (symlinks) when they exist.
    recordings: Vec<(PathBuf, Option<PathBuf>)>,
    max_recording_bytes: u64,
}

/// An answer file: where FreeSWITCH finds it, and its URL.
pub struct Written {
    pub path: String,
    pub url: String,
}

/// Whether `name` is a plain file name we could have written: letters, digits, `-`, `_`,
/// one `.wav` suffix. Nothing else reaches the filesystem.
pub fn safe_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".wav") else {
        return false;
    };
    !stem.is_empty()
        && stem.len() <= 100
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AudioFiles {
    /// Creates `audio.dir` if needed.
    pub fn new(audio: &AudioSettings, server: &ServerSettings) -> std::io::Result<Self> {
        std::fs::create_dir_all(&audio.dir)?;
        Ok(Self {
            dir: audio.dir.clone(),
            public_url: server.public_url.trim_end_matches('/').to_string(),
            recordings: audio
                .recordings_dirs
                .iter()
                .map(|d| (d.clone(), std::fs::canonicalize(d).ok()))
                .collect(),
            max_recording_bytes: audio.max_recording_bytes,
        })
    }

    /// Writes `samples` as `{name}.wav`, whole or not at all (a temporary file renamed), so
    /// FreeSWITCH never plays half a file.
    pub async fn write(&self, name: &str, rate: u32, samples: &[i16]) -> Result<Written, ApiError> {
        let file = format!("{name}.wav");
        if !safe_name(&file) {
            return Err(internal(format!("bad answer file name {file:?}")));
        }
        let path = self.dir.join(&file);
        let tmp = self.dir.join(format!(".{file}.tmp"));
        let bytes = wav::encode(rate, 1, samples);
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| internal(format!("cannot write {}: {e}", tmp.display())))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| internal(format!("cannot write {}: {e}", path.display())))?;
        Ok(Written {
            path: path.display().to_string(),
            url: format!("{}/v1/audio/{file}", self.public_url),
        })
    }

    /// An answer file's bytes, for `GET /v1/audio/{file}`.
    pub async fn read_answer(&self, file: &str) -> Result<Vec<u8>, ApiError> {
        if !safe_name(file) {
            return Err(ApiError::bad_request(
                "bad_file_name",
                format!(
                    "{:?} is not an audio file name (letters, digits, - and _, ending in .wav)",
                    clip(file)
                ),
            ));
        }
        tokio::fs::read(self.dir.join(file)).await.map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "audio_not_found",
                format!("no audio file {file:?}"),
            )
        })
    }

    /// Reads a caller recording FreeSWITCH wrote: mono samples and their rate. The path
    /// must be absolute, without `..`, inside an allowed folder both as written and once
    /// symlinks are resolved.
    pub async fn read_recording(&self, path: &str) -> Result<(Vec<i16>, u32), ApiError> {
        let p = Path::new(path);
        let lexically_inside = p.is_absolute()
            && !p.components().any(|c| matches!(c, Component::ParentDir))
            && self.recordings.iter().any(|(d, _)| p.starts_with(d));
        if !lexically_inside {
            return Err(not_allowed(path));
        }
        let real = tokio::fs::canonicalize(p)
            .await
            .map_err(|e| unreadable(format!("cannot open {:?}: {e}", clip(path))))?;
        let really_inside = self
            .recordings
            .iter()
            .any(|(d, real_dir)| real.starts_with(real_dir.as_deref().unwrap_or(d)));
        if !really_inside {
            return Err(not_allowed(path));
        }
        let meta = tokio::fs::metadata(&real)
            .await
            .map_err(|e| unreadable(format!("cannot open {:?}: {e}", clip(path))))?;
        if !meta.is_file() {
            return Err(unreadable(format!("{:?} is not a file", clip(path))));
        }
        if meta.len() > self.max_recording_bytes {
            return Err(unreadable(format!(
                "{:?} is {} bytes, over audio.max_recording_bytes ({})",
                clip(path),
                meta.len(),
                self.max_recording_bytes
            )));
        }
        let bytes = tokio::fs::read(&real)
            .await
            .map_err(|e| unreadable(format!("cannot read {:?}: {e}", clip(path))))?;
        decode_wav(&bytes)
    }
}

impl AudioFiles {
    /// Deletes answer files (and leftover temporary files) last written more than
    /// `older_than` ago; returns how many. Blocking: run it off the runtime.
    pub fn sweep(&self, older_than: std::time::Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = safe_name(&name)
                || (name.starts_with('.')
                    && name
                        .strip_suffix(".tmp")
                        .is_some_and(|n| safe_name(&n[1..])));
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > older_than);
            if ours && old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// A WAV body or file as mono samples (the first channel) and rate.
pub fn decode_wav(bytes: &[u8]) -> Result<(Vec<i16>, u32), ApiError> {
    let parsed = wav::parse(bytes).map_err(|e| unreadable(format!("not a 16-bit PCM WAV: {e}")))?;
    if !(8000..=48000).contains(&parsed.rate) || parsed.channels == 0 {
        return Err(unreadable(format!(
            "WAV with {} Hz and {} channels: expected 8000–48000 Hz, 1 or more channels",
            parsed.rate, parsed.channels
        )));
    }
    let samples = if parsed.channels == 1 {
        parsed.samples
    } else {
        parsed.channel(0)
    };
    Ok((samples, parsed.rate))
}

fn not_allowed(path: &str) -> ApiError {
    ApiError::bad_request(
        "audio_path_not_allowed",
        format!(
            "audio_path {:?} is not inside an allowed recordings folder (audio.recordings_dirs)",
            clip(path)
        ),
    )
}

fn unreadable(message: String) -> ApiError {
    ApiError::bad_request("unreadable_audio", message)
}

fn internal(message: String) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "audio_write_failed",
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_deletes_old_answer_files_only() {
        let dir = std::env::temp_dir().join(format!("turn-api-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let audio = AudioSettings {
            dir: dir.clone(),
            recordings_dirs: vec![],
            max_recording_bytes: 1,
            keep_secs: 60,
        };
        let server = ServerSettings {
            listen: String::new(),
            max_body_bytes: 1,
            public_url: String::new(),
        };
        let files = AudioFiles::new(&audio, &server).unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for name in ["old-1.wav", ".old-2.wav.tmp", "new-1.wav", "other.txt"] {
            let f = std::fs::File::create(dir.join(name)).unwrap();
            if name != "new-1.wav" {
                f.set_modified(two_hours_ago).unwrap();
            }
        }
        assert_eq!(files.sweep(std::time::Duration::from_secs(3600)), 2);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["new-1.wav", "other.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_plain_wav_names_are_safe() {
        assert!(safe_name("0123abcd-1.wav"));
        assert!(safe_name("a_b.wav"));
        for bad in [
            "../x.wav",
            ".wav",
            "a/b.wav",
            "a.wav.wav",
            "x.mp3",
            "..",
            "a b.wav",
            "%2e.wav",
        ] {
            assert!(!safe_name(bad), "{bad}");
        }
        assert!(!safe_name(&format!("{}.wav", "a".repeat(101))));
    }

    #[test]
    fn odd_wavs_are_refused_and_stereo_keeps_the_left_channel() {
        assert_eq!(decode_wav(b"nope").unwrap_err().code, "unreadable_audio");
        assert_eq!(
            decode_wav(&wav::encode(4000, 1, &[1])).unwrap_err().code,
            "unreadable_audio"
        );
        let (s, r) = decode_wav(&wav::encode(16000, 2, &[1, 2, 3, 4])).unwrap();
        assert_eq!((s, r), (vec![1, 3], 16000));
    }
}
