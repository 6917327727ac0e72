//! The JSON frames of `stream-input` (providers.md §3.1): what we send, and reading what
//! comes back. Server frames are read leniently (unknown fields are skipped, alignment is
//! ignored) but the fields we use must have the documented types.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::config::ElevenLabsTtsConfig;
use crate::providers::ProviderError;

/// Longest piece of a service error message we keep.
const MAX_ERROR_TEXT: usize = 200;

/// Beginning of stream: a single space, with the voice and generation settings. The key
/// goes in the `xi-api-key` header, not here.
pub fn bos(cfg: &ElevenLabsTtsConfig) -> String {
    let mut msg = Map::new();
    msg.insert("text".into(), json!(" "));
    if let Some(settings) = &cfg.voice_settings {
        msg.insert("voice_settings".into(), json!(settings));
    }
    if !cfg.chunk_length_schedule.is_empty() {
        msg.insert(
            "generation_config".into(),
            json!({"chunk_length_schedule": cfg.chunk_length_schedule}),
        );
    }
    Value::Object(msg).to_string()
}

/// One text piece, spoken at once (`flush`). It must end with a space, or the service
/// holds the last word back waiting for the rest of it; `None` for a piece with nothing
/// to say (an empty text would end the stream).
pub fn piece(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    let text = if text.ends_with(' ') {
        text.to_string()
    } else {
        format!("{text} ")
    };
    Some(json!({"text": text, "flush": true}).to_string())
}

/// Keeps an idle socket open while the LLM thinks.
pub fn keep_alive() -> String {
    json!({"text": " "}).to_string()
}

/// End of stream: the service sends the rest of the audio, `isFinal` and closes.
pub fn eos() -> String {
    json!({"text": ""}).to_string()
}

/// What one server text frame says.
#[derive(Debug, PartialEq)]
pub enum ServerFrame {
    /// Audio bytes in the output format (maybe none), and whether this is the end.
    Audio { bytes: Vec<u8>, is_final: bool },
    /// An error body (`message` / `error`).
    Error(ProviderError),
}

pub fn parse(text: &str) -> Result<ServerFrame, ProviderError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProviderError::Protocol(format!("server frame is not JSON: {e}")))?;
    let Value::Object(msg) = value else {
        return Err(ProviderError::Protocol(
            "server frame is not a JSON object".into(),
        ));
    };
    let message = msg.get("message").filter(|v| !v.is_null());
    let error = msg.get("error").filter(|v| !v.is_null());
    if message.is_some() || error.is_some() {
        return Ok(ServerFrame::Error(service_error(error, message)));
    }
    let bytes = match msg.get("audio") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ProviderError::Protocol(format!("audio is not base64: {e}")))?,
        Some(_) => return Err(ProviderError::Protocol("audio is not a string".into())),
    };
    let is_final = match msg.get("isFinal") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ProviderError::Protocol("isFinal is not a boolean".into())),
    };
    Ok(ServerFrame::Audio { bytes, is_final })
}

/// A close with a code other than 1000, as an error.
pub fn close_error(code: u16, reason: &str) -> ProviderError {
    let reason = cut(reason);
    classify(
        &reason,
        format!("ElevenLabs closed the stream: {code} {reason}"),
    )
}

/// `{"message": …, "error": …}` as an error (the exact shape is unconfirmed: seen in the
/// wild as `{"message":"…","error":"invalid_input_message","code":1008}`).
fn service_error(error: Option<&Value>, message: Option<&Value>) -> ProviderError {
    let as_text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let (kind, message) = (cut(&as_text(error)), cut(&as_text(message)));
    let text = match (kind.is_empty(), message.is_empty()) {
        (false, false) => format!("{kind}: {message}"),
        (true, _) => message,
        (false, true) => kind,
    };
    classify(&text, format!("ElevenLabs error: {text}"))
}

/// Refused when the words point at our request (key, quota, voice, bad input), so a
/// retry cannot help; else Unavailable (its own trouble, rate limits, "something went
/// wrong"). The service uses close code 1008 for both kinds, so only the words tell.
fn classify(words: &str, message: String) -> ProviderError {
    let w = words.to_ascii_lowercase();
    let busy = [
        "rate",
        "concurren",
        "busy",
        "overload",
        "capacity",
        "timeout",
    ];
    let ours = [
        "api key",
        "api_key",
        "auth",
        "invalid",
        "quota",
        "permission",
        "forbidden",
        "not found",
        "not_found",
        "payment",
        "voice",
        "model",
    ];
    if busy.iter().any(|b| w.contains(b)) {
        ProviderError::Unavailable(message)
    } else if ours.iter().any(|o| w.contains(o)) {
        ProviderError::Refused(message)
    } else {
        ProviderError::Unavailable(message)
    }
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::tts::elevenlabs::config::VoiceSettings;

    #[test]
    fn client_frames_follow_the_protocol() {
        let plain = ElevenLabsTtsConfig::default();
        assert_eq!(bos(&plain), r#"{"text":" "}"#);
        let tuned = ElevenLabsTtsConfig {
            voice_settings: Some(VoiceSettings {
                stability: Some(0.5),
                use_speaker_boost: Some(true),
                ..Default::default()
            }),
            chunk_length_schedule: vec![50, 120],
            ..Default::default()
        };
        let v: Value = serde_json::from_str(&bos(&tuned)).unwrap();
        assert_eq!(
            v,
            json!({"text": " ", "voice_settings": {"stability": 0.5, "use_speaker_boost": true},
                   "generation_config": {"chunk_length_schedule": [50, 120]}})
        );
        let p: Value = serde_json::from_str(&piece("Olá, tudo bem?").unwrap()).unwrap();
        assert_eq!(p, json!({"text": "Olá, tudo bem? ", "flush": true}));
        let p: Value = serde_json::from_str(&piece("Sim. ").unwrap()).unwrap();
        assert_eq!(p["text"], "Sim. ");
        assert_eq!(piece(""), None);
        assert_eq!(piece("  \n"), None);
        assert_eq!(keep_alive(), r#"{"text":" "}"#);
        assert_eq!(eos(), r#"{"text":""}"#);
    }

    #[test]
    fn audio_and_final_frames_are_read() {
        let f = parse(r#"{"audio":"AQID","isFinal":null,"alignment":{"chars":["a"]}}"#).unwrap();
        assert_eq!(
            f,
            ServerFrame::Audio {
                bytes: vec![1, 2, 3],
                is_final: false
            }
        );
        let f = parse(r#"{"isFinal":true}"#).unwrap();
        assert_eq!(
            f,
            ServerFrame::Audio {
                bytes: vec![],
                is_final: true
            }
        );
        let f = parse(r#"{"audio":null,"normalizedAlignment":null,"unknown":1}"#).unwrap();
        assert_eq!(
            f,
            ServerFrame::Audio {
                bytes: vec![],
                is_final: false
            }
        );
    }

    #[test]
    fn bad_frames_are_protocol_errors() {
        for bad in [
            "not json",
            "[1,2]",
            r#"{"audio":"@@@"}"#,
            r#"{"audio":5}"#,
            r#"{"isFinal":"yes"}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ProviderError::Protocol(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_bodies_and_closes_are_classified() {
        let err = |t: &str| match parse(t).unwrap() {
            ServerFrame::Error(e) => e,
            other => panic!("{other:?}"),
        };
        let e = err(r#"{"message":"Invalid API key","error":"invalid_api_key","code":1008}"#);
        assert_eq!(
            e,
            ProviderError::Refused("ElevenLabs error: invalid_api_key: Invalid API key".into())
        );
        let e = err(r#"{"message":"We are sorry, something went wrong."}"#);
        assert!(matches!(e, ProviderError::Unavailable(_)), "{e}");
        let e = err(r#"{"error":"too_many_concurrent_requests"}"#);
        assert!(matches!(e, ProviderError::Unavailable(_)), "{e}");
        let e = err(&format!(r#"{{"message":"{}"}}"#, "x".repeat(1000)));
        assert!(e.to_string().len() < 300);
        let timeout = "Have not received a new text input within the timeout of 20 seconds.";
        assert!(matches!(
            close_error(1008, timeout),
            ProviderError::Unavailable(_)
        ));
        let e = close_error(1008, "voice_id does not exist");
        assert_eq!(
            e,
            ProviderError::Refused(
                "ElevenLabs closed the stream: 1008 voice_id does not exist".into()
            )
        );
        assert!(matches!(
            close_error(1011, ""),
            ProviderError::Unavailable(_)
        ));
    }
}
