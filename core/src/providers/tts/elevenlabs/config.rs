//! `[providers.elevenlabs_tts]` settings, and the checks that need no network.

use serde::{Deserialize, Serialize};

use super::format::OutputFormat;
use crate::config::Secret;
use crate::providers::ProviderError;

/// A premade voice every account has, so the defaults work as they are.
pub const DEFAULT_VOICE_ID: &str = "21m00Tcm4TlvDq8ikWAM";

/// Streaming text to speech over ElevenLabs' `stream-input` WebSocket.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElevenLabsTtsConfig {
    /// Base of the socket URL; `/{voice_id}/stream-input` is added. `ws://` for fakes.
    pub url: String,
    /// The voice to speak with (required).
    pub voice_id: String,
    pub model_id: String,
    /// `pcm_16000`, `pcm_22050`, `pcm_24000`, `pcm_44100` or `ulaw_8000` (decoded to
    /// 8 kHz PCM16: the call's own rate, no resampling for 8 kHz calls).
    pub output_format: String,
    /// ISO 639-1 language the model must speak (flash/turbo v2.5); empty: not sent.
    pub language_code: String,
    /// Empty: use `ELEVENLABS_API_KEY`. Sent as the `xi-api-key` header.
    pub api_key: Secret,
    /// Not set: the voice's own settings.
    pub voice_settings: Option<VoiceSettings>,
    /// Characters buffered before the service starts generating, per generation (each
    /// 50–500). Every text piece is flushed anyway, so this only matters for long
    /// pieces. Empty: the service default `[120, 160, 250, 290]`.
    pub chunk_length_schedule: Vec<u32>,
    /// The service closes the socket after this many seconds without text (1–180, its
    /// default 20). While the LLM is slow, a single space is sent every half of it.
    pub inactivity_timeout_s: u32,
    /// Budget for TCP/TLS + upgrade.
    pub connect_timeout_ms: u64,
    /// The first audio must come this long after the first text piece at most; after the
    /// text is closed, the service may not go quiet for longer than this before its end.
    pub first_audio_timeout_ms: u64,
}

/// `voice_settings` of the first message; unset fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceSettings {
    /// 0.0–1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stability: Option<f64>,
    /// 0.0–1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity_boost: Option<f64>,
    /// 0.0–1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_speaker_boost: Option<bool>,
    /// 0.7–1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

impl Default for ElevenLabsTtsConfig {
    fn default() -> Self {
        Self {
            url: "wss://api.elevenlabs.io/v1/text-to-speech".into(),
            // "Rachel", one of ElevenLabs' premade voices (every account has them); the
            // multilingual models speak Portuguese with it. Pick a pt-BR voice for production.
            voice_id: DEFAULT_VOICE_ID.into(),
            model_id: "eleven_flash_v2_5".into(),
            output_format: "pcm_16000".into(),
            language_code: "pt".into(),
            api_key: Secret::default(),
            voice_settings: None,
            chunk_length_schedule: Vec::new(),
            inactivity_timeout_s: 20,
            connect_timeout_ms: 3000,
            first_audio_timeout_ms: 3000,
        }
    }
}

impl ElevenLabsTtsConfig {
    /// The output format, or a `Config` error naming the bad setting.
    pub(super) fn format(&self) -> Result<OutputFormat, ProviderError> {
        OutputFormat::parse(&self.output_format).ok_or_else(|| {
            ProviderError::Config(format!(
                "elevenlabs_tts.output_format must be pcm_16000, pcm_22050, pcm_24000, \
                 pcm_44100 or ulaw_8000, got {:?}",
                self.output_format
            ))
        })
    }

    /// Everything that can be wrong before any network traffic.
    pub(super) fn check(&self) -> Result<(), ProviderError> {
        let bad = |m: String| Err(ProviderError::Config(format!("elevenlabs_tts.{m}")));
        if !(self.url.starts_with("wss://") || self.url.starts_with("ws://")) {
            return bad(format!(
                "url must start with wss:// or ws://, got {:?}",
                self.url
            ));
        }
        if self.voice_id.is_empty() || !is_token(&self.voice_id) {
            return bad(format!(
                "voice_id is required (letters, digits, - and _), got {:?}",
                self.voice_id
            ));
        }
        if self.model_id.is_empty() || !is_token(&self.model_id) {
            return bad(format!("model_id is invalid: {:?}", self.model_id));
        }
        self.format()?;
        let lang = &self.language_code;
        let iso_639_1 = lang.len() == 2 && lang.bytes().all(|b| b.is_ascii_lowercase());
        if !lang.is_empty() && !iso_639_1 {
            return bad(format!(
                "language_code must be ISO 639-1 (\"pt\"), got {lang:?}"
            ));
        }
        if let Some(v) = self
            .chunk_length_schedule
            .iter()
            .find(|v| !(50..=500).contains(*v))
        {
            return bad(format!(
                "chunk_length_schedule items must be 50–500, got {v}"
            ));
        }
        if !(1..=180).contains(&self.inactivity_timeout_s) {
            return bad(format!(
                "inactivity_timeout_s must be 1–180, got {}",
                self.inactivity_timeout_s
            ));
        }
        if self.connect_timeout_ms == 0 || self.first_audio_timeout_ms == 0 {
            return bad("connect_timeout_ms and first_audio_timeout_ms must be positive".into());
        }
        if let Some(s) = &self.voice_settings {
            s.check()?;
        }
        Ok(())
    }

    /// The configured key, else `ELEVENLABS_API_KEY`; neither is a `Config` error.
    pub(super) fn key(&self) -> Result<Secret, ProviderError> {
        if !self.api_key.is_empty() {
            return Ok(self.api_key.clone());
        }
        match std::env::var("ELEVENLABS_API_KEY") {
            Ok(k) if !k.trim().is_empty() => Ok(Secret::new(k.trim())),
            _ => Err(ProviderError::Config(
                "elevenlabs_tts needs an API key (api_key or ELEVENLABS_API_KEY)".into(),
            )),
        }
    }
}

impl VoiceSettings {
    fn check(&self) -> Result<(), ProviderError> {
        let unit = [
            ("stability", self.stability),
            ("similarity_boost", self.similarity_boost),
            ("style", self.style),
        ];
        for (name, value) in unit {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(ProviderError::Config(format!(
                    "elevenlabs_tts.voice_settings.{name} must be 0.0–1.0"
                )));
            }
        }
        if self.speed.is_some_and(|v| !(0.7..=1.2).contains(&v)) {
            return Err(ProviderError::Config(
                "elevenlabs_tts.voice_settings.speed must be 0.7–1.2".into(),
            ));
        }
        Ok(())
    }
}

/// Safe in a URL path or query without escaping.
fn is_token(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ElevenLabsTtsConfig {
        ElevenLabsTtsConfig {
            voice_id: "voice_1".into(),
            api_key: Secret::new("xi-secret"),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c: ElevenLabsTtsConfig = toml::from_str("").unwrap();
        assert_eq!(c.url, "wss://api.elevenlabs.io/v1/text-to-speech");
        assert_eq!(
            (c.model_id.as_str(), c.output_format.as_str()),
            ("eleven_flash_v2_5", "pcm_16000")
        );
        assert_eq!(c.language_code, "pt");
        assert_eq!(c.inactivity_timeout_s, 20);
        assert_eq!(
            (c.connect_timeout_ms, c.first_audio_timeout_ms),
            (3000, 3000)
        );
        assert!(c.voice_id == DEFAULT_VOICE_ID && c.api_key.is_empty());
        assert!(c.voice_settings.is_none() && c.chunk_length_schedule.is_empty());
    }

    #[test]
    fn parses_voice_settings_hides_the_key_and_rejects_unknown_keys() {
        let c: ElevenLabsTtsConfig = toml::from_str(
            "voice_id = \"v\"\napi_key = \"xi-secret\"\n\
             [voice_settings]\nstability = 0.5\nspeed = 1.1\n",
        )
        .unwrap();
        let vs = c.voice_settings.clone().unwrap();
        assert_eq!(
            (vs.stability, vs.speed, vs.style),
            (Some(0.5), Some(1.1), None)
        );
        assert!(!format!("{c:?}").contains("xi-secret"));
        assert!(toml::from_str::<ElevenLabsTtsConfig>("voiceid = \"v\"").is_err());
        assert!(toml::from_str::<ElevenLabsTtsConfig>("[voice_settings]\npitch = 1").is_err());
    }

    #[test]
    fn bad_settings_are_config_errors() {
        assert!(cfg().check().is_ok());
        let bad = [
            ElevenLabsTtsConfig {
                voice_id: String::new(),
                ..cfg()
            },
            ElevenLabsTtsConfig {
                voice_id: "a/b?c".into(),
                ..cfg()
            },
            ElevenLabsTtsConfig {
                url: "https://api.elevenlabs.io".into(),
                ..cfg()
            },
            ElevenLabsTtsConfig {
                output_format: "mp3_44100_128".into(),
                ..cfg()
            },
            ElevenLabsTtsConfig {
                language_code: "pt-BR".into(),
                ..cfg()
            },
            ElevenLabsTtsConfig {
                chunk_length_schedule: vec![120, 40],
                ..cfg()
            },
            ElevenLabsTtsConfig {
                inactivity_timeout_s: 0,
                ..cfg()
            },
            ElevenLabsTtsConfig {
                first_audio_timeout_ms: 0,
                ..cfg()
            },
            ElevenLabsTtsConfig {
                voice_settings: Some(VoiceSettings {
                    speed: Some(2.0),
                    ..Default::default()
                }),
                ..cfg()
            },
            ElevenLabsTtsConfig {
                voice_settings: Some(VoiceSettings {
                    stability: Some(-0.1),
                    ..Default::default()
                }),
                ..cfg()
            },
        ];
        for c in bad {
            let err = c.check().unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if !m.contains("xi-secret")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_configured_key_wins() {
        assert_eq!(cfg().key().unwrap().expose(), "xi-secret");
    }
}
