//! `POST /v1/audio/transcriptions` (providers.md §6.1): a strict multipart upload of a
//! WAV, answered `{"text": …}` with the next scripted line (or "" for a silent file),
//! or with timed segments (`formats.rs`).
//!
//! Checked like the real service: `file` with a filename whose extension names a
//! supported format, `model` known, `language` in ISO-639-1, `response_format` one the
//! model supports (gpt-4o-(mini-)transcribe: `json` only; gpt-4o-transcribe-diarize:
//! `json`, `text`, `diarized_json`; `verbose_json` only from Whisper),
//! `timestamp_granularities[]` only with `verbose_json`, no `prompt` for the diarize
//! model and its `chunking_strategy` for uploads over 30 s, no unknown fields, and at
//! least 0.1 s of audio. The fake decodes only WAV and does not answer `srt` or `vtt`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use voice_core::audio::wav;

use super::formats::{self, Granularities, ScriptedSegment};
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
const DIARIZE_MODEL: &str = "gpt-4o-transcribe-diarize";
/// Longest upload the diarize model takes without a `chunking_strategy`.
const DIARIZE_UNCHUNKED_MS: u64 = 30_000;
const EXTENSIONS: &[&str] = &[
    "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm",
];

/// An upload that passed every check.
struct Upload {
    seen: TranscriptionSeen,
    samples: Vec<i16>,
    rate: u32,
    granularities: Granularities,
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
    let duration_ms = duration_ms(upload.samples.len(), upload.rate);
    let segments = said(&shared, &upload, duration_ms);
    let text = formats::full_text(&segments);
    let format = upload.seen.response_format.clone();
    let language = upload.seen.language.clone();
    let seconds = duration_ms / 1000;
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
    let body = match format.as_str() {
        "verbose_json" => formats::verbose_json(
            &segments,
            language.as_deref(),
            duration_ms,
            upload.granularities,
            usage,
        ),
        "diarized_json" => formats::diarized_json(&segments, duration_ms, usage),
        _ => json!({"text": text, "usage": usage}),
    };
    Json(body).into_response()
}

fn duration_ms(samples: usize, rate: u32) -> u64 {
    samples as u64 * 1000 / u64::from(rate).max(1)
}

/// What the upload says: the scripted recording, else the next transcript line over
/// the whole upload (nothing for a silent one).
fn said(shared: &Shared, upload: &Upload, duration_ms: u64) -> Vec<ScriptedSegment> {
    if !shared.cfg.recording.is_empty() {
        return shared.cfg.recording.clone();
    }
    if silent(&upload.samples, upload.rate, shared.cfg.vad_threshold_rms) {
        return Vec::new();
    }
    let line = shared.next_transcript();
    if line.trim().is_empty() {
        return Vec::new();
    }
    vec![ScriptedSegment::new("A", 0, duration_ms.max(1), &line)]
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
    let granularities = granularities(&parts, &response_format)?;
    if model == DIARIZE_MODEL && field("prompt").is_some() {
        let message = format!("prompt is not supported with model '{model}'.");
        return Err(Invalid::new(message, Some("prompt")).code("unsupported_parameter"));
    }
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
    let long = duration_ms(samples.len(), rate) > DIARIZE_UNCHUNKED_MS;
    if model == DIARIZE_MODEL && long && field("chunking_strategy").is_none() {
        let message = "chunking_strategy is required for audio longer than 30 seconds \
                       with gpt-4o-transcribe-diarize.";
        return Err(
            Invalid::new(message, Some("chunking_strategy")).code("missing_required_parameter")
        );
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
        granularities,
    })
}

/// Every `timestamp_granularities[]` part: `word` or `segment`, with `verbose_json` only.
fn granularities(parts: &[Part], format: &str) -> Result<Granularities, Invalid> {
    const PARAM: &str = "timestamp_granularities";
    let mut asked = Vec::new();
    for part in parts
        .iter()
        .filter(|p| p.name == "timestamp_granularities[]")
    {
        let value = String::from_utf8_lossy(&part.data).into_owned();
        if value != "word" && value != "segment" {
            let message = format!("Invalid timestamp granularity {value:?}: use word or segment.");
            return Err(Invalid::new(message, Some(PARAM)).code("invalid_value"));
        }
        asked.push(value);
    }
    if !asked.is_empty() && format != "verbose_json" {
        let message = "timestamp_granularities requires response_format 'verbose_json'.";
        return Err(Invalid::new(message, Some(PARAM)).code("unsupported_value"));
    }
    Ok(Granularities::from_asked(&asked))
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
    let allowed = formats_for(model);
    if !allowed.contains(&format) {
        let message = format!(
            "response_format '{format}' is not compatible with model '{model}'. Use one of: {}.",
            allowed.join(", ")
        );
        return Err(Invalid::new(message, Some("response_format")).code("unsupported_value"));
    }
    if format == "srt" || format == "vtt" {
        let message = format!("this fake does not answer {format}");
        return Err(Invalid::new(message, Some("response_format")));
    }
    Ok(())
}

/// The response formats a model supports (§6.1; Groq's Whisper models as whisper-1).
fn formats_for(model: &str) -> &'static [&'static str] {
    match model {
        DIARIZE_MODEL => &["json", "text", "diarized_json"],
        m if m.starts_with("gpt-4o") => &["json"],
        _ => &["json", "text", "srt", "verbose_json", "vtt"],
    }
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
