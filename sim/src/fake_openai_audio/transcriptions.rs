//! `POST /v1/audio/transcriptions` (providers.md §6.1): a strict multipart upload of a
//! WAV, answered `{"text": …}` with the next scripted line (or "" for a silent file).
//!
//! Checked like the real service: `file` with a filename whose extension names a
//! supported format, `model` known, `language` in ISO-639-1, `response_format` one the
//! model supports (gpt-4o models: `json` only), no unknown fields, and at least 0.1 s of
//! audio. The fake decodes only WAV and answers only `json` and `text`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use voice_core::audio::wav;

use super::http_api::{self, bad_request, Invalid};
use super::multipart::{self, Part};
use super::stats::TranscriptionSeen;
use super::{Fault, Shared};
use crate::fake_common::energy_vad::Windows;

const MODELS: &[&str] = &[
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    // Groq
    "whisper-large-v3",
    "whisper-large-v3-turbo",
];
const FIELDS: &[&str] = &[
    "file",
    "model",
    "language",
    "prompt",
    "temperature",
    "response_format",
    "timestamp_granularities[]",
    "stream",
    "chunking_strategy",
    "include[]",
];
const EXTENSIONS: &[&str] = &[
    "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm",
];

/// An upload that passed every check.
struct Upload {
    seen: TranscriptionSeen,
    samples: Vec<i16>,
    rate: u32,
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
    let _in_flight = shared.stats.begin_transcription();
    let upload = match read(http_api::content_type(&headers), &body) {
        Ok(u) => u,
        Err(invalid) => return bad_request(&shared, invalid),
    };
    if shared.cfg.transcribe_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.cfg.transcribe_delay_ms)).await;
    }
    match fault {
        Fault::MalformedJson => {
            let broken = [(header::CONTENT_TYPE, "application/json")];
            return (StatusCode::OK, broken, "{\"text\": \"Olá, bo").into_response();
        }
        Fault::DropAfterChunks(_) => return cut_off(),
        _ => {}
    }
    let text = if silent(&upload.samples, upload.rate, shared.cfg.vad_threshold_rms) {
        String::new()
    } else {
        shared.next_transcript()
    };
    let format = upload.seen.response_format.clone();
    let seconds = upload.samples.len() as u64 / u64::from(upload.rate).max(1);
    let whisper = upload.seen.model.starts_with("whisper");
    shared
        .stats
        .transcription(upload.seen, upload.samples.len(), upload.rate);
    if format == "text" {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response();
    }
    let usage = if whisper {
        json!({"type": "duration", "seconds": seconds.max(1)})
    } else {
        let output = text.split_whitespace().count() as u64 * 2;
        json!({"type": "tokens", "input_tokens": seconds * 10 + 10,
            "output_tokens": output, "total_tokens": seconds * 10 + 10 + output})
    };
    Json(json!({"text": text, "usage": usage})).into_response()
}

/// A 200 whose body breaks off: the connection is cut before any of it arrives.
fn cut_off() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("fault injection: dropped"))
    });
    Body::from_stream(broken).into_response()
}

/// No 20 ms window as loud as `threshold`.
fn silent(samples: &[i16], rate: u32, threshold: f64) -> bool {
    let mut windows = Windows::new(rate, threshold);
    !samples
        .iter()
        .any(|&s| windows.push(s).is_some_and(|w| w.loud))
}

fn read(content_type: &str, body: &[u8]) -> Result<Upload, Invalid> {
    let boundary = multipart::boundary(content_type).map_err(|m| Invalid::new(m, None))?;
    let parts = multipart::parse(body, &boundary).map_err(|m| Invalid::new(m, None))?;
    if let Some(unknown) = parts.iter().find(|p| !FIELDS.contains(&p.name.as_str())) {
        let message = format!("Unrecognized request argument supplied: {}", unknown.name);
        return Err(Invalid::new(message, None));
    }
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let text = |name: &'static str| -> Result<Option<String>, Invalid> {
        match field(name) {
            None => Ok(None),
            Some(p) => String::from_utf8(p.data.clone())
                .map(Some)
                .map_err(|_| Invalid::new(format!("{name} is not UTF-8"), Some(name))),
        }
    };
    let model = text("model")?
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Invalid::new("you must provide a model parameter", Some("model")))?;
    if !MODELS.contains(&model.as_str()) {
        let message =
            format!("The model `{model}` does not exist or you do not have access to it.");
        return Err(Invalid::new(message, Some("model")).code("model_not_found"));
    }
    let response_format = text("response_format")?.unwrap_or_else(|| "json".into());
    check_format(&model, &response_format)?;
    let language = text("language")?;
    if let Some(l) = &language {
        let iso = l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase());
        if !iso {
            let message = format!(
                "Invalid language '{l}'. Language parameter must be specified in ISO-639-1 format."
            );
            return Err(Invalid::new(message, Some("language")).code("invalid_language_format"));
        }
    }
    let file = field("file").ok_or_else(|| Invalid::new("file is required", Some("file")))?;
    let (filename, samples, rate) = decode(file)?;
    if samples.len() < rate as usize / 10 {
        let message = "Audio file is too short. Minimum audio length is 0.1 seconds.";
        return Err(Invalid::new(message, Some("file")).code("audio_too_short"));
    }
    Ok(Upload {
        seen: TranscriptionSeen {
            model,
            language,
            response_format,
            filename,
        },
        samples,
        rate,
    })
}

fn check_format(model: &str, format: &str) -> Result<(), Invalid> {
    let known = [
        "json",
        "text",
        "srt",
        "verbose_json",
        "vtt",
        "diarized_json",
    ];
    if !known.contains(&format) {
        let message = format!("Invalid response_format {format:?}");
        return Err(Invalid::new(message, Some("response_format")));
    }
    if model.starts_with("gpt-4o") && format != "json" {
        let message = format!(
            "response_format '{format}' is not compatible with model '{model}'. Use 'json'."
        );
        return Err(Invalid::new(message, Some("response_format")).code("unsupported_value"));
    }
    if format != "json" && format != "text" {
        let message = format!("this fake answers only json and text, not {format}");
        return Err(Invalid::new(message, Some("response_format")));
    }
    Ok(())
}

/// The file part as (filename, channel 0 samples, rate).
fn decode(file: &Part) -> Result<(String, Vec<i16>, u32), Invalid> {
    let filename = file
        .filename
        .clone()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| Invalid::new("the file part needs a filename", Some("file")))?;
    let extension = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let formats = format!("Supported formats: {EXTENSIONS:?}");
    if !EXTENSIONS.contains(&extension.as_str()) {
        let message = format!("Invalid file format. {formats}");
        return Err(Invalid::new(message, Some("file")).code("invalid_value"));
    }
    if extension != "wav" {
        return Err(Invalid::new(
            "this fake decodes only WAV uploads",
            Some("file"),
        ));
    }
    let audio = wav::parse(&file.data).map_err(|e| {
        Invalid::new(
            format!("Invalid file format ({e}). {formats}"),
            Some("file"),
        )
        .code("invalid_value")
    })?;
    if audio.rate == 0 {
        return Err(Invalid::new(
            "Invalid file format: sample rate 0",
            Some("file"),
        ));
    }
    Ok((filename, audio.channel(0), audio.rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(fields: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, data) in fields {
            out.extend_from_slice(b"--B\r\nContent-Disposition: form-data; name=\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\"");
            if let Some(f) = filename {
                out.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
            }
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--B--\r\n");
        out
    }

    const CT: &str = "multipart/form-data; boundary=B";

    #[test]
    fn a_good_upload_and_each_refusal() {
        let audio = wav::encode(16_000, 1, &[0; 3200]);
        let ok = body(&[
            ("file", Some("a.wav"), &audio),
            ("model", None, b"gpt-4o-transcribe"),
            ("language", None, b"pt"),
            ("response_format", None, b"json"),
        ]);
        let upload = read(CT, &ok).unwrap();
        assert_eq!((upload.samples.len(), upload.rate), (3200, 16_000));
        assert_eq!(upload.seen.language.as_deref(), Some("pt"));
        let short = wav::encode(16_000, 1, &[0; 1000]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (body(&[("model", None, b"whisper-1")]), "file"),
            (body(&[("file", Some("a.wav"), &audio)]), "model"),
            (
                body(&[("file", Some("a.wav"), &audio), ("model", None, b"tiny")]),
                "model",
            ),
            (
                body(&[("file", None, &audio), ("model", None, b"whisper-1")]),
                "file",
            ),
            (
                body(&[
                    ("file", Some("a.txt"), &audio),
                    ("model", None, b"whisper-1"),
                ]),
                "file",
            ),
            (
                body(&[
                    ("file", Some("a.wav"), b"nope"),
                    ("model", None, b"whisper-1"),
                ]),
                "file",
            ),
            (
                body(&[
                    ("file", Some("a.wav"), &short),
                    ("model", None, b"whisper-1"),
                ]),
                "file",
            ),
            (
                body(&[
                    ("file", Some("a.wav"), &audio),
                    ("model", None, b"whisper-1"),
                    ("language", None, b"pt-BR"),
                ]),
                "language",
            ),
            (
                body(&[
                    ("file", Some("a.wav"), &audio),
                    ("model", None, b"gpt-4o-transcribe"),
                    ("response_format", None, b"text"),
                ]),
                "response_format",
            ),
        ];
        for (b, param) in cases {
            let err = read(CT, &b).err().expect("refused");
            assert_eq!(err.param, Some(param), "{}", err.message);
        }
        let extra = body(&[
            ("file", Some("a.wav"), &audio),
            ("model", None, b"whisper-1"),
            ("colour", None, b"blue"),
        ]);
        assert!(read(CT, &extra).err().unwrap().message.contains("colour"));
        assert!(read("application/json", &ok).is_err());
    }

    #[test]
    fn silence_is_told_apart_from_speech() {
        assert!(silent(&[0; 16_000], 16_000, 500.0));
        let loud: Vec<i16> = (0..16_000)
            .map(|i| if i % 2 == 0 { 3000 } else { -3000 })
            .collect();
        assert!(!silent(&loud, 16_000, 500.0));
    }
}
