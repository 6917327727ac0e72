//! `POST /v1/listen` (providers.md §4.2): a recording uploaded as WAV bytes or named by
//! `{"url": …}`, answered in one body.
//!
//! What the recording "says" comes from a script of [`RecordedUtterance`]s (speaker,
//! channel, span, text) when the test set one; otherwise a WAV's audio runs through the
//! live machine offline (utterances split at 500 ms of quiet, each the next line of
//! `utterances`, channel N of a multichannel file starting at line N), and a URL gets
//! the `utterances` lines two seconds each, speakers taking turns. The fake never fetches
//! a URL; it records it.
//!
//! Checks a client would otherwise learn about in production: the key, the content type,
//! a WAV that parses, a JSON body that is exactly `{"url": "http(s)://…"}`, known query
//! parameters only, `true`/`false` flags, no live-only options, no `callback`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use voice_core::audio::wav;

use super::http_api::{bad_request, gate, hang};
use super::messages::{self, Span};
use super::params::{self, ListenParams};
use super::prerecorded_body::{self, Said};
use super::stats::Count;
use super::stream::{Kind, ListenStream, Tuning};
use super::{Fault, Shared};

/// Quiet that splits two utterances of a recording.
const SPLIT_MS: u64 = 500;
/// Length of each line when a URL is answered without a recording script.
const LINE_MS: u64 = 2000;
/// Most channels a multichannel upload may have.
const MAX_CHANNELS: u16 = 8;

/// Parameters a pre-recorded request may carry (Deepgram has more; the fake refuses
/// the rest so a misspelt one shows up in tests).
const KNOWN_PARAMS: &[&str] = &[
    "model",
    "language",
    "diarize",
    "diarize_model",
    "utterances",
    "utt_split",
    "punctuate",
    "smart_format",
    "multichannel",
    "paragraphs",
    "numerals",
    "profanity_filter",
    "filler_words",
    "keyterm",
    "keywords",
    "tag",
    "mip_opt_out",
    "version",
];
/// Options that only mean something on a live stream.
const LIVE_ONLY: &[&str] = &[
    "interim_results",
    "endpointing",
    "utterance_end_ms",
    "vad_events",
    "channels",
];
/// Model families the fake knows (`nova-3`, `nova-2-phonecall`, …).
const MODEL_FAMILIES: &[&str] = &["nova-3", "nova-2", "nova", "enhanced", "base", "whisper"];

/// One utterance of a scripted recording, in recording time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedUtterance {
    /// The diarized speaker (shown only with `diarize=true`).
    pub speaker: u32,
    /// The audio channel it is on (shown as such only with `multichannel=true`).
    pub channel: u32,
    pub start_ms: u64,
    pub end_ms: u64,
    /// As spoken, with capitals and punctuation (shown bare without `smart_format` or
    /// `punctuate`).
    pub text: String,
}

impl RecordedUtterance {
    /// Speaker `speaker` on channel 0.
    pub fn new(speaker: u32, start_ms: u64, end_ms: u64, text: &str) -> Self {
        Self {
            speaker,
            channel: 0,
            start_ms,
            end_ms,
            text: text.to_string(),
        }
    }

    /// The same utterance on another channel.
    pub fn on_channel(mut self, channel: u32) -> Self {
        self.channel = channel;
        self
    }
}

/// Why a script cannot be used.
pub(crate) fn check_recording(script: &[RecordedUtterance]) -> anyhow::Result<()> {
    for (i, u) in script.iter().enumerate() {
        if u.text.trim().is_empty() || u.end_ms <= u.start_ms {
            anyhow::bail!("recorded utterance {i} needs text and end_ms after start_ms");
        }
        if u.channel >= u32::from(MAX_CHANNELS) {
            anyhow::bail!("recorded utterance {i} is on channel {}", u.channel);
        }
    }
    Ok(())
}

/// What a pre-recorded request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchOptions {
    pub listen: ListenParams,
    pub diarize: bool,
    pub multichannel: bool,
    pub paragraphs: bool,
}

pub(crate) fn options(query: &BTreeMap<String, String>) -> Result<BatchOptions, String> {
    if query.contains_key("callback") {
        return Err("this fake answers in the response; it never calls a callback".into());
    }
    if let Some(live) = LIVE_ONLY.iter().find(|p| query.contains_key(**p)) {
        return Err(format!("{live} is a live-streaming option"));
    }
    let listen = params::prerecorded(query)?;
    if let Some(unknown) = query.keys().find(|k| !KNOWN_PARAMS.contains(&k.as_str())) {
        return Err(format!("unknown parameter {unknown:?}"));
    }
    if let Some(model) = query.get("model") {
        let known = MODEL_FAMILIES
            .iter()
            .any(|f| model == f || model.starts_with(&format!("{f}-")));
        if !known {
            return Err(format!("no such model {model:?}"));
        }
    }
    let diarize_model = match query.get("diarize_model").map(String::as_str) {
        None => false,
        Some("latest" | "v1" | "v2") => true,
        Some(other) => {
            return Err(format!(
                "diarize_model must be latest, v1 or v2, not {other:?}"
            ))
        }
    };
    Ok(BatchOptions {
        listen,
        diarize: params::flag(query, "diarize")? || diarize_model,
        multichannel: params::flag(query, "multichannel")?,
        paragraphs: params::flag(query, "paragraphs")?,
    })
}

/// The recording as sent: audio, or where to find it.
enum Recording {
    Audio(wav::Wav),
    Url(String),
}

fn read_body(headers: &HeaderMap, body: &[u8]) -> Result<Recording, String> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json" => url_of(body).map(Recording::Url),
        "audio/wav" | "audio/wave" | "audio/x-wav" => {
            let audio =
                wav::parse(body).map_err(|e| format!("corrupt or unsupported data: {e}"))?;
            if audio.channels == 0 || audio.channels > MAX_CHANNELS {
                return Err(format!("unsupported channel count {}", audio.channels));
            }
            if !(8_000..=48_000).contains(&audio.rate) {
                return Err(format!("unsupported sample rate {}", audio.rate));
            }
            Ok(Recording::Audio(audio))
        }
        "" => Err("a Content-Type is required".into()),
        other => Err(format!(
            "this fake takes audio/wav or application/json, not {other:?}"
        )),
    }
}

/// `{"url": "http(s)://…"}` and nothing else.
fn url_of(body: &[u8]) -> Result<String, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("the body must be a JSON object with a url".into());
    };
    if let Some(other) = object.keys().find(|k| *k != "url") {
        return Err(format!("unexpected field {other:?}; only url is read"));
    }
    match object.get("url").and_then(Value::as_str) {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(url.to_string())
        }
        Some(_) => Err("url must be an http or https URL".into()),
        None => Err("url is required and must be a string".into()),
    }
}

pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let fault = shared.faults.next();
    if let Some(refusal) = gate(&shared, &headers, &fault).await {
        return refusal;
    }
    if fault == Fault::Hang {
        hang(&shared).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let opts = match options(&query) {
        Ok(o) => o,
        Err(message) => return bad_request(&shared, &message),
    };
    let recording = match read_body(&headers, &body) {
        Ok(r) => r,
        Err(message) => return bad_request(&shared, &message),
    };
    let answer = transcribe(&shared, &opts, &recording);
    shared.stats.query(query);
    shared.stats.add(Count::Prerecorded);
    match &recording {
        Recording::Url(url) => shared.stats.url(url.clone()),
        Recording::Audio(audio) => shared.stats.uploaded(
            audio.samples.len() / usize::from(audio.channels),
            audio.rate,
        ),
    }
    if shared.cfg.final_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.cfg.final_delay_ms)).await;
    }
    Json(answer).into_response()
}

/// The §4.2 body for `recording`.
fn transcribe(shared: &Shared, opts: &BatchOptions, recording: &Recording) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    let script = shared.recording();
    let (mut said, mut channels, duration_ms) = match recording {
        Recording::Audio(audio) => {
            let duration_ms = audio.samples.len() as u64 * 1000
                / u64::from(audio.rate)
                / u64::from(audio.channels);
            let said = if script.is_empty() {
                heard(shared, opts, audio)
            } else {
                scripted(&script, opts.listen.formatted)
            };
            (said, u32::from(audio.channels), duration_ms)
        }
        Recording::Url(_) => {
            let said = if script.is_empty() {
                lines(&shared.script, opts.listen.formatted)
            } else {
                scripted(&script, opts.listen.formatted)
            };
            let channels = said.iter().map(|s| s.channel + 1).max().unwrap_or(1);
            let end = said.iter().map(|s| s.span.end_ms).max().unwrap_or(0);
            (said, channels, end)
        }
    };
    if !opts.multichannel {
        // Without multichannel Deepgram mixes the channels into one.
        channels = 1;
        said.iter_mut().for_each(|s| s.channel = 0);
    }
    said.retain(|s| s.channel < channels);
    said.sort_by_key(|s| (s.span.start_ms, s.channel));
    prerecorded_body::build(&request_id, duration_ms, channels, &said, opts)
}

fn scripted(script: &[RecordedUtterance], formatted: bool) -> Vec<Said> {
    script
        .iter()
        .map(|u| Said {
            channel: u.channel,
            speaker: u.speaker,
            span: Span {
                start_ms: u.start_ms,
                end_ms: u.end_ms,
            },
            text: messages::shown(&u.text, formatted),
        })
        .collect()
}

/// The configured lines back to back, speakers 0 and 1 taking turns.
fn lines(script: &[String], formatted: bool) -> Vec<Said> {
    (0u64..)
        .zip(script)
        .map(|(i, text)| Said {
            channel: 0,
            speaker: (i % 2) as u32,
            span: Span {
                start_ms: i * LINE_MS,
                end_ms: (i + 1) * LINE_MS,
            },
            text: messages::shown(text, formatted),
        })
        .collect()
}

/// What the energy VAD hears in each channel (mixed down unless `multichannel`).
fn heard(shared: &Shared, opts: &BatchOptions, audio: &wav::Wav) -> Vec<Said> {
    let channels: Vec<Vec<i16>> = if opts.multichannel {
        (0..usize::from(audio.channels))
            .map(|c| audio.channel(c))
            .collect()
    } else {
        vec![mixed_down(audio)]
    };
    let mut said = Vec::new();
    for (index, samples) in (0u32..).zip(&channels) {
        let mut script: Vec<String> = shared.script.as_ref().clone();
        let turn = index as usize % script.len().max(1);
        script.rotate_left(turn);
        said.extend(
            finals(shared, opts, Arc::new(script), samples, audio.rate)
                .into_iter()
                .map(|(text, span)| Said {
                    channel: index,
                    speaker: 0,
                    span,
                    text,
                }),
        );
    }
    said
}

fn mixed_down(audio: &wav::Wav) -> Vec<i16> {
    let n = usize::from(audio.channels.max(1));
    audio
        .samples
        .chunks(n)
        .map(|frame| (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / n as i32) as i16)
        .collect()
}

/// The non-empty finals of one channel run through the live machine.
fn finals(
    shared: &Shared,
    opts: &BatchOptions,
    script: Arc<Vec<String>>,
    samples: &[i16],
    rate: u32,
) -> Vec<(String, Span)> {
    let mut params = opts.listen.clone();
    // Offline there is no live feedback to give: only the finals matter.
    params.interim_results = false;
    params.vad_events = false;
    params.utterance_end_ms = None;
    let tuning = Tuning {
        interim_every_ms: 1000,
        vad_threshold_rms: shared.cfg.vad_threshold_rms,
        repeat_final_on_finalize: false,
        settle_ms: Some(SPLIT_MS),
    };
    let mut stream = ListenStream::new(params, tuning, script, rate);
    stream.push(samples);
    stream.close_stream();
    stream
        .out
        .drain(..)
        .filter_map(|o| match o.kind {
            Kind::Final {
                transcript, span, ..
            } if !transcript.is_empty() => Some((transcript, span)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> BTreeMap<String, String> {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_documented_query_is_accepted() {
        let o = options(&query(
            "model=nova-3&language=pt-BR&diarize=true&utterances=true&smart_format=true\
             &punctuate=true&multichannel=false",
        ))
        .unwrap();
        assert!(o.diarize && o.listen.utterances && o.listen.formatted && !o.multichannel);
        let o = options(&query(
            "model=nova-2-phonecall&language=pt&diarize_model=v2",
        ))
        .unwrap();
        assert!(o.diarize && !o.listen.formatted);
    }

    #[test]
    fn what_a_batch_request_may_not_ask() {
        let bad = [
            "language=pt&diarize=yes",
            "language=pt&multichannel=1",
            "language=pt&diarise=true",
            "language=pt&interim_results=true",
            "language=pt&callback=https://x",
            "language=pt&model=gpt-4o",
            "language=pt&diarize_model=v9",
            "language=pt&encoding=linear16",
            "diarize=true",
        ];
        for q in bad {
            assert!(options(&query(q)).is_err(), "{q}");
        }
    }

    #[test]
    fn url_bodies() {
        assert_eq!(
            url_of(br#"{"url":"https://x/a.wav"}"#),
            Ok("https://x/a.wav".into())
        );
        for bad in [
            &br#"{"url":"ftp://x"}"#[..],
            br#"{"url":1}"#,
            br#"{}"#,
            br#"{"url":"https://x","extra":1}"#,
            br#"["https://x"]"#,
            b"not json",
        ] {
            assert!(url_of(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn scripts_are_checked() {
        assert!(check_recording(&[RecordedUtterance::new(0, 0, 10, "oi")]).is_ok());
        assert!(check_recording(&[RecordedUtterance::new(0, 10, 10, "oi")]).is_err());
        assert!(check_recording(&[RecordedUtterance::new(0, 0, 10, " ")]).is_err());
        assert!(check_recording(&[RecordedUtterance::new(0, 0, 10, "oi").on_channel(9)]).is_err());
    }
}
