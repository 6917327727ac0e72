//! Validation and decoding of what FreeSWITCH sends: binary L16 frames and text frames.

use voice_core::audio::pcm;

use super::Mix;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(
        "binary frame of {len} bytes is not a whole number of {channels}-channel 16-bit samples"
    )]
    OddLength { len: usize, channels: usize },
    #[error("binary frame of {len} bytes is over the {max}-byte limit")]
    Oversized { len: usize, max: usize },
    #[error("text frame is malformed JSON: {0}")]
    MalformedJson(String),
}

/// A binary frame, decoded.
#[derive(Debug, PartialEq)]
pub enum Audio {
    /// The caller's audio, mono, at the call rate.
    Caller(Vec<i16>),
    /// mod_audio_fork's zero-length frame: the stream is ending gracefully.
    End,
}

/// Decodes one binary frame: the caller's samples (left channel when stereo).
pub fn decode_audio(bytes: &[u8], mix: Mix, max: usize) -> Result<Audio, FrameError> {
    if bytes.is_empty() {
        return Ok(Audio::End);
    }
    if bytes.len() > max {
        return Err(FrameError::Oversized {
            len: bytes.len(),
            max,
        });
    }
    let channels = mix.channels();
    if !bytes.len().is_multiple_of(2 * channels) {
        return Err(FrameError::OddLength {
            len: bytes.len(),
            channels,
        });
    }
    Ok(Audio::Caller(match mix {
        Mix::Stereo => pcm::left_of_stereo_le(bytes),
        Mix::Mono | Mix::Mixed => pcm::from_le_bytes(bytes),
    }))
}

/// A text frame, classified.
#[derive(Debug, PartialEq)]
pub enum Text {
    /// A JSON object (metadata, or a message such as `{"type":"dtmf","digit":"5"}`).
    Json(serde_json::Map<String, serde_json::Value>),
    /// Free text (`send_text hello`, opaque metadata).
    Plain(String),
}

/// What a JSON text frame from FreeSWITCH asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Dtmf(char),
    Hangup,
    /// User text for the agent.
    Text(String),
    /// mod_audio_fork (jambonz) mark notifications and anything else we only log.
    Other,
}

pub fn classify_text(text: &str) -> Result<Text, FrameError> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return Ok(Text::Plain(text.to_string()));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(Text::Json(map)),
        Ok(_) => Err(FrameError::MalformedJson("expected a JSON object".into())),
        Err(e) => Err(FrameError::MalformedJson(e.to_string())),
    }
}

pub fn command(map: &serde_json::Map<String, serde_json::Value>) -> Command {
    let field = |k: &str| map.get(k).and_then(|v| v.as_str());
    match field("type").or_else(|| field("event")) {
        Some("dtmf") => field("digit")
            .or_else(|| field("dtmf"))
            .and_then(|d| d.chars().next())
            .filter(|c| c.is_ascii_digit() || "*#ABCD".contains(*c))
            .map_or(Command::Other, Command::Dtmf),
        Some("hangup") => Command::Hangup,
        Some("text") => field("text").map_or(Command::Other, |t| Command::Text(t.to_string())),
        _ => Command::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mono_and_stereo() {
        let mono = pcm::to_le_bytes(&[1, 2, 3]);
        assert_eq!(
            decode_audio(&mono, Mix::Mono, 100),
            Ok(Audio::Caller(vec![1, 2, 3]))
        );
        let stereo = pcm::to_le_bytes(&[1, 9, 2, 9]);
        assert_eq!(
            decode_audio(&stereo, Mix::Stereo, 100),
            Ok(Audio::Caller(vec![1, 2]))
        );
        assert_eq!(decode_audio(&[], Mix::Mono, 100), Ok(Audio::End));
    }

    #[test]
    fn rejects_bad_frames() {
        assert_eq!(
            decode_audio(&[1, 2, 3], Mix::Mono, 100),
            Err(FrameError::OddLength {
                len: 3,
                channels: 1
            })
        );
        assert_eq!(
            decode_audio(&[0; 6], Mix::Stereo, 100),
            Err(FrameError::OddLength {
                len: 6,
                channels: 2
            })
        );
        assert_eq!(
            decode_audio(&[0; 102], Mix::Mono, 100),
            Err(FrameError::Oversized { len: 102, max: 100 })
        );
    }

    #[test]
    fn classifies_text() {
        assert_eq!(
            classify_text("hello there"),
            Ok(Text::Plain("hello there".into()))
        );
        assert!(matches!(
            classify_text("{\"type\":\"dtmf\""),
            Err(FrameError::MalformedJson(_))
        ));
        assert!(matches!(
            classify_text("[1,2]"),
            Err(FrameError::MalformedJson(_))
        ));
        let Ok(Text::Json(m)) = classify_text(r#"{"type":"dtmf","digit":"5"}"#) else {
            panic!()
        };
        assert_eq!(command(&m), Command::Dtmf('5'));
        let Ok(Text::Json(m)) = classify_text(r#"{"type":"dtmf","digit":"x"}"#) else {
            panic!()
        };
        assert_eq!(command(&m), Command::Other);
        let Ok(Text::Json(m)) = classify_text(r#"{"type":"hangup"}"#) else {
            panic!()
        };
        assert_eq!(command(&m), Command::Hangup);
    }
}
