//! `POST /v1/audio/speech` (providers.md §6.2): JSON in, 24 kHz mono audio out as a
//! chunked body, raw s16le for `pcm` or a WAV for `wav`, the first bytes after
//! `speech_first_byte_ms` and the rest paced `speech_realtime_factor` times faster than
//! real time.
//!
//! Checked like the real service: a known `model` and `voice`, a non-empty `input` of at
//! most 4096 characters, `speed` within 0.25–4, no unknown fields. The fake renders only
//! `pcm` and `wav` (others get 400 saying so). The audio is espeak-ng speaking the input
//! ([`SpeechVoice::Espeak`], cached per text) or a cheap tone as long as the text would
//! take to say ([`SpeechVoice::Tone`], for load runs with many different texts).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use voice_core::audio::{pcm, wav};

use super::http_api::{self, bad_request, Invalid};
use super::{Fault, Shared, SpeechVoice};
use crate::fake_common::reply::{off_runtime, speak};

/// The rate of every speech answer.
pub const SPEECH_RATE: u32 = 24_000;

const MODELS: &[&str] = &["tts-1", "tts-1-hd", "gpt-4o-mini-tts"];
const VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
    "marin", "cedar",
];
const FIELDS: &[&str] = &[
    "model",
    "input",
    "voice",
    "response_format",
    "speed",
    "instructions",
    "stream_format",
];
const MAX_INPUT_CHARS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Pcm,
    Wav,
}

#[derive(Debug, PartialEq)]
struct SpeechRequest {
    input: String,
    format: Format,
    speed: f64,
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = shared.faults.next();
    if let Some(response) = http_api::before_request(&shared, &fault).await {
        return response;
    }
    if let Some(response) = http_api::refuse_unauthorized(&shared, &headers) {
        return response;
    }
    let mime = http_api::content_type(&headers);
    if mime.split(';').next().map(str::trim) != Some("application/json") {
        let invalid = Invalid::new(format!("expected a JSON body, got {mime:?}"), None);
        return bad_request(&shared, invalid);
    }
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&shared, Invalid::new(format!("invalid JSON: {e}"), None)),
    };
    let request = match validate(&json) {
        Ok(r) => r,
        Err(invalid) => return bad_request(&shared, invalid),
    };
    shared.stats.speech(json, request.input.clone());
    let samples = match render(&shared.cfg.speech_voice, &request).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "fake speech render failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if shared.cfg.speech_first_byte_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.cfg.speech_first_byte_ms)).await;
    }
    let drop_after = match fault {
        Fault::DropAfterChunks(n) => Some(n),
        _ => None,
    };
    let (mime, header_len, bytes) = match request.format {
        Format::Pcm => ("audio/pcm", 0, pcm::to_le_bytes(&samples)),
        Format::Wav => (
            "audio/wav",
            wav::HEADER_LEN,
            wav::encode(SPEECH_RATE, 1, &samples),
        ),
    };
    let body = paced(shared.clone(), Bytes::from(bytes), header_len, drop_after);
    (StatusCode::OK, [(header::CONTENT_TYPE, mime)], body).into_response()
}

/// The body in chunks of `speech_chunk_ms`, paced, cut after `drop_after` chunks.
fn paced(shared: Arc<Shared>, bytes: Bytes, header_len: usize, drop_after: Option<u32>) -> Body {
    let cfg = &shared.cfg;
    let chunk = (SPEECH_RATE as usize / 1000 * cfg.speech_chunk_ms as usize * 2).max(2);
    let gap = Duration::from_secs_f64(
        f64::from(cfg.speech_chunk_ms) / 1000.0 / f64::from(cfg.speech_realtime_factor),
    );
    let stream = futures_util::stream::unfold((0usize, 0u32), move |(pos, sent)| {
        let (shared, bytes) = (shared.clone(), bytes.clone());
        async move {
            if pos >= bytes.len() {
                return None;
            }
            if drop_after.is_some_and(|n| sent >= n) {
                // Let the chunks before the cut reach the client first.
                tokio::time::sleep(gap).await;
                let cut = std::io::Error::other("fault injection: speech dropped");
                return Some((Err(cut), (bytes.len(), sent)));
            }
            if sent > 0 {
                tokio::time::sleep(gap).await;
            }
            // The WAV header rides with the first chunk.
            let end = (pos + chunk + if pos == 0 { header_len } else { 0 }).min(bytes.len());
            let audio_bytes = end - pos.max(header_len).min(end);
            shared.stats.audio_sent(audio_bytes / 2, SPEECH_RATE);
            Some((Ok(bytes.slice(pos..end)), (end, sent + 1)))
        }
    });
    Body::from_stream(stream)
}

async fn render(voice: &SpeechVoice, request: &SpeechRequest) -> anyhow::Result<Vec<i16>> {
    match voice {
        SpeechVoice::Tone => Ok(tone(&request.input, request.speed)),
        SpeechVoice::Espeak => {
            let text = request.input.clone();
            let samples =
                off_runtime("speaking the input", move || speak(&text, SPEECH_RATE)).await?;
            Ok(samples.to_vec())
        }
    }
}

/// A voiced-sounding tone (180 Hz under a 4 Hz syllable swell) lasting about as long as
/// `text` takes to say: 65 ms a character at speed 1, within 0.2–30 s.
pub(crate) fn tone(text: &str, speed: f64) -> Vec<i16> {
    let chars = text.chars().count().max(1) as f64;
    let ms = (chars * 65.0 / speed.clamp(0.25, 4.0)).clamp(200.0, 30_000.0);
    let n = (f64::from(SPEECH_RATE) * ms / 1000.0) as usize;
    let rate = f64::from(SPEECH_RATE);
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let swell = 0.6 + 0.4 * (std::f64::consts::TAU * 4.0 * t).sin();
            (8000.0 * swell * (std::f64::consts::TAU * 180.0 * t).sin()) as i16
        })
        .collect()
}

fn validate(json: &Value) -> Result<SpeechRequest, Invalid> {
    let obj: &Map<String, Value> = json
        .as_object()
        .ok_or_else(|| Invalid::new("the body must be a JSON object", None))?;
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let message = format!("Unrecognized request argument supplied: {unknown}");
        return Err(Invalid::new(message, None));
    }
    let text = |name: &'static str| -> Result<Option<&str>, Invalid> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Invalid::new(format!("{name} must be a string"), Some(name))),
        }
    };
    let model = text("model")?.ok_or_else(|| Invalid::new("model is required", Some("model")))?;
    if !MODELS.contains(&model) {
        let message = format!("Invalid value for 'model' = {model}.");
        return Err(Invalid::new(message, Some("model")).code("invalid_value"));
    }
    let input = text("input")?.unwrap_or("");
    if input.trim().is_empty() {
        return Err(Invalid::new("input must not be empty", Some("input")));
    }
    if input.chars().count() > MAX_INPUT_CHARS {
        let message = format!("input is longer than {MAX_INPUT_CHARS} characters");
        return Err(Invalid::new(message, Some("input")).code("string_above_max_length"));
    }
    let voice = text("voice")?.ok_or_else(|| Invalid::new("voice is required", Some("voice")))?;
    if !VOICES.contains(&voice) {
        let message = format!("Invalid value for 'voice' = {voice}.");
        return Err(Invalid::new(message, Some("voice")).code("invalid_value"));
    }
    let format = match text("response_format")?.unwrap_or("mp3") {
        "pcm" => Format::Pcm,
        "wav" => Format::Wav,
        known @ ("mp3" | "opus" | "aac" | "flac") => {
            let message = format!("this fake renders only pcm and wav, not {known}");
            return Err(Invalid::new(message, Some("response_format")));
        }
        other => {
            let message = format!("Invalid value for 'response_format' = {other}.");
            return Err(Invalid::new(message, Some("response_format")).code("invalid_value"));
        }
    };
    if text("stream_format")?.is_some_and(|f| f != "audio") {
        return Err(Invalid::new(
            "this fake streams only raw audio",
            Some("stream_format"),
        ));
    }
    if text("stream_format")?.is_some() && model.starts_with("tts-1") {
        return Err(Invalid::new(
            "stream_format is not supported by tts-1",
            Some("stream_format"),
        ));
    }
    text("instructions")?;
    let speed = match obj.get("speed") {
        None | Some(Value::Null) => 1.0,
        Some(v) => v
            .as_f64()
            .filter(|s| (0.25..=4.0).contains(s))
            .ok_or_else(|| {
                Invalid::new("speed must be a number from 0.25 to 4.0", Some("speed"))
            })?,
    };
    Ok(SpeechRequest {
        input: input.to_string(),
        format,
        speed,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_are_checked_like_the_real_service() {
        let ok = json!({"model": "gpt-4o-mini-tts", "input": "Olá!", "voice": "marin",
            "response_format": "pcm", "speed": 1.0, "instructions": "calorosa"});
        let r = validate(&ok).unwrap();
        assert_eq!(
            (r.input.as_str(), r.format, r.speed),
            ("Olá!", Format::Pcm, 1.0)
        );
        let cases = [
            (
                json!({"input": "x", "voice": "marin", "response_format": "pcm"}),
                "model",
            ),
            (
                json!({"model": "tts-9", "input": "x", "voice": "marin"}),
                "model",
            ),
            (
                json!({"model": "tts-1", "input": " ", "voice": "marin"}),
                "input",
            ),
            (
                json!({"model": "tts-1", "input": "x".repeat(4097), "voice": "marin"}),
                "input",
            ),
            (
                json!({"model": "tts-1", "input": "x", "voice": "robot"}),
                "voice",
            ),
            (json!({"model": "tts-1", "input": "x"}), "voice"),
            (
                json!({"model": "tts-1", "input": "x", "voice": "nova"}),
                "response_format",
            ),
            (
                json!({"model": "tts-1", "input": "x", "voice": "nova", "response_format": "ogg"}),
                "response_format",
            ),
            (
                json!({"model": "tts-1", "input": "x", "voice": "nova", "response_format": "pcm",
                "speed": 9}),
                "speed",
            ),
            (
                json!({"model": "tts-1", "input": 5, "voice": "nova"}),
                "input",
            ),
        ];
        for (body, param) in cases {
            let err = validate(&body).unwrap_err();
            assert_eq!(err.param, Some(param), "{body}: {}", err.message);
        }
        let extra = json!({"model": "tts-1", "input": "x", "voice": "nova", "pitch": 2});
        assert!(validate(&extra).unwrap_err().message.contains("pitch"));
        assert!(validate(&json!([1])).is_err());
    }

    #[test]
    fn the_tone_lasts_as_long_as_the_text_and_is_loud() {
        let short = tone("Olá", 1.0);
        assert_eq!(short.len(), 24_000 / 5, "at least 200 ms");
        let long = tone(&"a".repeat(100), 1.0);
        assert_eq!(long.len(), 24_000 * 65 / 10);
        assert_eq!(tone(&"a".repeat(100), 2.0).len(), long.len() / 2);
        assert!(pcm::rms(&long) > 2000.0);
        assert_eq!(tone("abc", 1.0), tone("abc", 1.0), "deterministic");
    }
}
