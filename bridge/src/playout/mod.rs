//! Agent audio back into the call: a paced queue of 20 ms frames, and the message formats
//! each FreeSWITCH build plays (reference/freeswitch.md §3).

pub mod encoder;
pub mod queue;

use serde::{Deserialize, Serialize};

use crate::stream::Dialect;

pub use queue::PlayoutQueue;

/// `playout.mode` as configured (or asked for in the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayoutModeSetting {
    Auto,
    Binary,
    StreamAudio,
    RawAudio,
    PlayAudio,
    File,
}

/// `playout.clear` as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClearSetting {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "clearAudio")]
    ClearAudio,
    #[serde(rename = "killAudio")]
    KillAudio,
    #[serde(rename = "speech_started")]
    SpeechStarted,
    #[serde(rename = "stopAudio")]
    StopAudio,
    #[serde(rename = "none")]
    None,
}

impl PlayoutModeSetting {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

impl ClearSetting {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// How this call's audio reaches the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayoutMode {
    /// Paced binary L16 frames (cloudfieldcz fork, VoiSmart, mod_audio_fork bidirectional).
    Binary,
    /// Paced `streamAudio` JSON with raw L16 (voxcom / julianotarga forks).
    StreamAudio,
    /// A `rawAudio` header once, then paced binary L16 (commercial mod_audio_stream).
    RawAudio,
    /// mod_audio_fork `playAudio`: FreeSWITCH writes files, we play them over ESL.
    PlayAudio,
    /// Stock mod_audio_stream: `streamAudio` chunks become files, played over ESL.
    File,
}

impl PlayoutMode {
    pub fn name(self) -> &'static str {
        match self {
            PlayoutMode::Binary => "binary",
            PlayoutMode::StreamAudio => "stream_audio",
            PlayoutMode::RawAudio => "raw_audio",
            PlayoutMode::PlayAudio => "play_audio",
            PlayoutMode::File => "file",
        }
    }

    /// File modes hand whole chunks to FreeSWITCH, which plays them via `uuid_broadcast`.
    pub fn uses_files(self) -> bool {
        matches!(self, PlayoutMode::PlayAudio | PlayoutMode::File)
    }
}

/// What the bridge does to stop audio already handed to FreeSWITCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearAction {
    /// Text message to send on the stream, if the build understands one.
    pub message: Option<&'static str>,
    /// Also run ESL `uuid_break <uuid> all` (file modes).
    pub esl_break: bool,
}

pub fn resolve(
    mode: PlayoutModeSetting,
    clear: ClearSetting,
    dialect: Dialect,
) -> (PlayoutMode, ClearAction) {
    let mode = match mode {
        PlayoutModeSetting::Auto | PlayoutModeSetting::Binary => PlayoutMode::Binary,
        PlayoutModeSetting::StreamAudio => PlayoutMode::StreamAudio,
        PlayoutModeSetting::RawAudio => PlayoutMode::RawAudio,
        PlayoutModeSetting::PlayAudio => PlayoutMode::PlayAudio,
        PlayoutModeSetting::File => PlayoutMode::File,
    };
    let message = match clear {
        ClearSetting::ClearAudio => Some(r#"{"type":"clearAudio"}"#),
        ClearSetting::KillAudio => Some(r#"{"type":"killAudio"}"#),
        ClearSetting::SpeechStarted => Some(r#"{"type":"input_audio_buffer.speech_started"}"#),
        ClearSetting::StopAudio => Some(r#"{"type":"stopAudio"}"#),
        ClearSetting::None => None,
        ClearSetting::Auto => match (mode, dialect) {
            (PlayoutMode::Binary, Dialect::AudioFork) | (PlayoutMode::PlayAudio, _) => {
                Some(r#"{"type":"killAudio"}"#)
            }
            (PlayoutMode::Binary, Dialect::AudioStream(_)) => Some(r#"{"type":"clearAudio"}"#),
            (PlayoutMode::StreamAudio, _) => Some(r#"{"type":"stopAudio"}"#),
            // The commercial build documents no clear message; stock builds have no buffer.
            (PlayoutMode::RawAudio, _) | (PlayoutMode::File, _) => None,
        },
    };
    (
        mode,
        ClearAction {
            message,
            esl_break: mode.uses_files(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamBuild;

    #[test]
    fn auto_clear_matches_the_build() {
        let stream = Dialect::AudioStream(StreamBuild::Libwsc);
        let (m, c) = resolve(PlayoutModeSetting::Auto, ClearSetting::Auto, stream);
        assert_eq!(
            (m, c.message),
            (PlayoutMode::Binary, Some(r#"{"type":"clearAudio"}"#))
        );
        let (_, c) = resolve(
            PlayoutModeSetting::Auto,
            ClearSetting::Auto,
            Dialect::AudioFork,
        );
        assert_eq!(c.message, Some(r#"{"type":"killAudio"}"#));
        let (_, c) = resolve(PlayoutModeSetting::StreamAudio, ClearSetting::Auto, stream);
        assert_eq!(c.message, Some(r#"{"type":"stopAudio"}"#));
        let (_, c) = resolve(PlayoutModeSetting::File, ClearSetting::Auto, stream);
        assert_eq!(
            c,
            ClearAction {
                message: None,
                esl_break: true
            }
        );
        let (_, c) = resolve(
            PlayoutModeSetting::Binary,
            ClearSetting::SpeechStarted,
            stream,
        );
        assert_eq!(
            c.message,
            Some(r#"{"type":"input_audio_buffer.speech_started"}"#)
        );
    }

    #[test]
    fn parses_setting_names() {
        assert_eq!(
            PlayoutModeSetting::parse("play_audio"),
            Some(PlayoutModeSetting::PlayAudio)
        );
        assert_eq!(
            ClearSetting::parse("killAudio"),
            Some(ClearSetting::KillAudio)
        );
        assert_eq!(PlayoutModeSetting::parse("loud"), None);
    }
}
