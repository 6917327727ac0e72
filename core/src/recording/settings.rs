//! `[recording]` settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::RecordingError;

/// How a call's stereo audio is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFormat {
    /// 16-bit PCM WAV: no CPU cost, 4 bytes per frame (64 kB/s at 16 kHz).
    #[default]
    Wav,
    /// Opus in Ogg: about 3 kB/s at the default bitrate, some CPU per 20 ms frame.
    Opus,
}

impl RecordingFormat {
    pub fn extension(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "wav",
            RecordingFormat::Opus => "opus",
        }
    }
}

/// Opus complexity used when none is set: 1, so Opus recording fits hundreds of calls
/// (the figures behind it are in the module doc of `recording`).
pub const DEFAULT_OPUS_COMPLEXITY: u8 = 1;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingSettings {
    /// Record calls at all.
    pub enabled: bool,
    pub format: RecordingFormat,
    /// Root folder: files go to `{dir}/{tenant}/{YYYY-MM-DD}/{call_id}.*`.
    pub dir: PathBuf,
    /// Opus target bitrate for the stereo stream, bits per second.
    pub opus_bitrate: u32,
    /// Opus encoder complexity, 0 (cheapest) to 10 (best); 1 by default, for capacity
    /// (figures in the `recording` module doc).
    pub opus_complexity: u8,
    /// Audio is written out (and the WAV header rewritten) every `flush_ms` of audio: the
    /// most audio a crash of the process can lose.
    pub flush_ms: u32,
    /// `[recording.upload]`: finished calls sent to call-insights (off when `url` is empty).
    pub upload: super::upload::UploadSettings,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            format: RecordingFormat::Wav,
            dir: PathBuf::from("recordings"),
            opus_bitrate: 24_000,
            opus_complexity: DEFAULT_OPUS_COMPLEXITY,
            flush_ms: 1000,
            upload: Default::default(),
        }
    }
}

impl RecordingSettings {
    pub fn validate(&self) -> Result<(), RecordingError> {
        let invalid = |m: String| Err(RecordingError::InvalidSettings(m));
        if self.dir.as_os_str().is_empty() {
            return invalid("dir is empty".into());
        }
        // libopus accepts 500..=512000; below 6 kbit/s stereo speech is unintelligible.
        if !(6_000..=510_000).contains(&self.opus_bitrate) {
            return invalid(format!(
                "opus_bitrate {} is outside 6000..=510000",
                self.opus_bitrate
            ));
        }
        if self.opus_complexity > 10 {
            return invalid(format!(
                "opus_complexity {} is above 10",
                self.opus_complexity
            ));
        }
        // One Opus frame at least; at most a minute, so a crash cannot lose more.
        if !(20..=60_000).contains(&self.flush_ms) {
            return invalid(format!("flush_ms {} is outside 20..=60000", self.flush_ms));
        }
        self.upload
            .validate()
            .map_err(RecordingError::InvalidSettings)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_lowercase_format() {
        let s: RecordingSettings = toml::from_str("").expect("empty table");
        assert_eq!(s, RecordingSettings::default());
        assert!(!s.enabled);
        assert_eq!(s.format, RecordingFormat::Wav);
        assert_eq!(s.flush_ms, 1000);
        s.validate().expect("defaults are valid");
        let s: RecordingSettings =
            toml::from_str("enabled = true\nformat = \"opus\"\ndir = \"/x\"").expect("opus");
        assert_eq!(s.format, RecordingFormat::Opus);
        assert!(toml::from_str::<RecordingSettings>("format = \"mp3\"").is_err());
        assert!(toml::from_str::<RecordingSettings>("flushms = 5").is_err());
    }

    #[test]
    fn validate_rejects_out_of_range_values() {
        let bad = [
            RecordingSettings {
                opus_complexity: 11,
                ..Default::default()
            },
            RecordingSettings {
                opus_bitrate: 100,
                ..Default::default()
            },
            RecordingSettings {
                flush_ms: 0,
                ..Default::default()
            },
            RecordingSettings {
                dir: PathBuf::new(),
                ..Default::default()
            },
        ];
        for s in bad {
            assert!(
                matches!(s.validate(), Err(RecordingError::InvalidSettings(_))),
                "{s:?}"
            );
        }
    }
}
