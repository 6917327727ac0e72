//! The timed answers over real sockets: `verbose_json` (segments, words), `diarized_json`
//! (speakers), scripted recordings round-tripping, and the model/format pairs refused.

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use voice_core::audio::wav;

use super::{FakeOpenAiAudio, FakeOpenAiAudioConfig, ScriptedSegment, SpeechVoice};
use crate::fake_common::test_support::square_wave;

const RATE: u32 = 16_000;

fn config(recording: Vec<ScriptedSegment>) -> FakeOpenAiAudioConfig {
    FakeOpenAiAudioConfig {
        recording,
        transcribe_delay_ms: 0,
        speech_first_byte_ms: 0,
        speech_voice: SpeechVoice::Tone,
        ..Default::default()
    }
}

fn call() -> Vec<ScriptedSegment> {
    vec![
        ScriptedSegment::new("A", 0, 1_800, "Bom dia, aqui é a Ana da clínica."),
        ScriptedSegment::new("B", 2_100, 3_500, "Oi, tudo bem?"),
        ScriptedSegment::new(
            "A",
            3_900,
            6_250,
            "Quero confirmar sua consulta de segunda.",
        ),
    ]
}

/// A WAV of `ms` of loud tone, with `model` and, when given, `response_format`.
fn upload_form(ms: usize, model: &str, format: Option<&str>) -> Form {
    let audio = square_wave(RATE, ms, 3000);
    let file = Part::bytes(wav::encode(RATE, 1, &audio)).file_name("call.wav");
    let form = Form::new()
        .part("file", file)
        .text("model", model.to_string())
        .text("language", "pt");
    match format {
        Some(f) => form.text("response_format", f.to_string()),
        None => form,
    }
}

async fn post_raw(fake: &FakeOpenAiAudio, form: Form) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(fake.transcriptions_url())
        .bearer_auth(fake.api_key())
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn post(fake: &FakeOpenAiAudio, form: Form) -> (u16, Value) {
    let (status, body) = post_raw(fake, form).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

#[tokio::test]
async fn verbose_json_has_language_duration_segments_and_words() {
    let fake = FakeOpenAiAudio::start(config(Vec::new())).await.unwrap();
    let form = upload_form(2_000, "whisper-1", Some("verbose_json"))
        .text("timestamp_granularities[]", "word")
        .text("timestamp_granularities[]", "segment");
    let (status, body) = post(&fake, form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "portuguese");
    assert_eq!(f(&body["duration"]), 2.0);
    assert_eq!(body["text"], "Olá, bom dia.");
    assert_eq!(body["usage"]["type"], "duration");
    let segments = body["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0]["id"], 0);
    assert_eq!(segments[0]["text"], " Olá, bom dia.");
    assert_eq!(
        (f(&segments[0]["start"]), f(&segments[0]["end"])),
        (0.0, 2.0)
    );
    assert_eq!(segments[0]["tokens"].as_array().unwrap().len(), 3);
    let words: Vec<&str> = body["words"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["word"].as_str())
        .collect();
    assert_eq!(words, ["Olá", "bom", "dia"]);
    let last = &body["words"][2];
    assert!(f(&last["start"]) > f(&body["words"][1]["start"]));
    assert_eq!(f(&last["end"]), 2.0);
    assert_eq!(fake.stats().response_formats, ["verbose_json"]);
}

#[tokio::test]
async fn verbose_json_granularities_choose_segments_or_words() {
    let fake = FakeOpenAiAudio::start(config(call())).await.unwrap();
    let (_, plain) = post(&fake, upload_form(1_000, "whisper-1", Some("verbose_json"))).await;
    assert_eq!(plain["segments"].as_array().map(Vec::len), Some(3));
    assert!(plain.get("words").is_none(), "{plain}");
    let words_only = upload_form(1_000, "whisper-1", Some("verbose_json"))
        .text("timestamp_granularities[]", "word");
    let (_, body) = post(&fake, words_only).await;
    assert!(body.get("segments").is_none(), "{body}");
    let words = body["words"].as_array().unwrap();
    assert_eq!(words[0]["word"], "Bom");
    assert_eq!(f(&words[0]["start"]), 0.0);
    assert_eq!(words.last().unwrap()["word"], "segunda");
    assert_eq!(f(&words.last().unwrap()["end"]), 6.25);
}

#[tokio::test]
async fn a_scripted_recording_round_trips_through_both_timed_formats() {
    let script = call();
    let fake = FakeOpenAiAudio::start(config(script.clone()))
        .await
        .unwrap();
    let (status, diarized) = post(
        &fake,
        upload_form(1_000, "gpt-4o-transcribe-diarize", Some("diarized_json")),
    )
    .await;
    assert_eq!(status, 200, "{diarized}");
    assert_eq!(diarized["task"], "transcribe");
    assert_eq!(f(&diarized["duration"]), 1.0);
    assert_eq!(diarized["usage"]["type"], "tokens");
    let back: Vec<ScriptedSegment> = diarized["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["type"], "transcript.text.segment");
            assert!(s["id"].is_string());
            ScriptedSegment::new(
                s["speaker"].as_str().unwrap(),
                (f(&s["start"]) * 1000.0).round() as u64,
                (f(&s["end"]) * 1000.0).round() as u64,
                s["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(back, script);
    let joined = script.iter().map(|s| s.text.as_str()).collect::<Vec<_>>();
    assert_eq!(diarized["text"], joined.join(" "));

    let (_, verbose) = post(&fake, upload_form(1_000, "whisper-1", Some("verbose_json"))).await;
    let spans: Vec<(f64, f64, &str)> = verbose["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (f(&s["start"]), f(&s["end"]), s["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        spans,
        [
            (0.0, 1.8, " Bom dia, aqui é a Ana da clínica."),
            (2.1, 3.5, " Oi, tudo bem?"),
            (3.9, 6.25, " Quero confirmar sua consulta de segunda."),
        ]
    );
    assert_eq!(verbose["text"], diarized["text"]);
    let (_, json) = post(&fake, upload_form(1_000, "gpt-4o-transcribe-diarize", None)).await;
    assert_eq!(json["text"], diarized["text"]);
    assert!(json.get("segments").is_none());
}

#[tokio::test]
async fn silence_without_a_script_has_no_segments() {
    let fake = FakeOpenAiAudio::start(config(Vec::new())).await.unwrap();
    let file = Part::bytes(wav::encode(RATE, 1, &[0; 16_000])).file_name("quiet.wav");
    let form = Form::new()
        .part("file", file)
        .text("model", "gpt-4o-transcribe-diarize")
        .text("response_format", "diarized_json");
    let (status, body) = post(&fake, form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"], "");
    assert_eq!(body["segments"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn model_and_format_pairs_outside_the_reference_are_refused() {
    let fake = FakeOpenAiAudio::start(config(call())).await.unwrap();
    let refused = [
        (
            upload_form(1_000, "whisper-1", Some("diarized_json")),
            "response_format",
        ),
        (
            upload_form(1_000, "gpt-4o-transcribe", Some("verbose_json")),
            "response_format",
        ),
        (
            upload_form(1_000, "gpt-4o-mini-transcribe", Some("diarized_json")),
            "response_format",
        ),
        (
            upload_form(1_000, "gpt-4o-transcribe-diarize", Some("verbose_json")),
            "response_format",
        ),
        (
            upload_form(1_000, "gpt-4o-transcribe-diarize", Some("yaml")),
            "response_format",
        ),
        (
            upload_form(1_000, "whisper-1", Some("json")).text("timestamp_granularities[]", "word"),
            "timestamp_granularities",
        ),
        (
            upload_form(1_000, "whisper-1", Some("verbose_json"))
                .text("timestamp_granularities[]", "sentence"),
            "timestamp_granularities",
        ),
        (
            upload_form(1_000, "gpt-4o-transcribe-diarize", Some("diarized_json"))
                .text("prompt", "Clínica"),
            "prompt",
        ),
        (
            upload_form(31_000, "gpt-4o-transcribe-diarize", Some("diarized_json")),
            "chunking_strategy",
        ),
    ];
    let count = refused.len() as u64;
    for (form, param) in refused {
        let (status, body) = post(&fake, form).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], param, "{body}");
    }
    let long_chunked = upload_form(31_000, "gpt-4o-transcribe-diarize", Some("diarized_json"))
        .text("chunking_strategy", "auto");
    let (status, body) = post(&fake, long_chunked).await;
    assert_eq!(status, 200, "{body}");
    let text_form = upload_form(1_000, "gpt-4o-transcribe-diarize", Some("text"));
    let (status, text) = post_raw(&fake, text_form).await;
    assert_eq!(
        (status, text.as_str()),
        (200, body["text"].as_str().unwrap())
    );
    let stats = fake.stats();
    assert_eq!((stats.refused, stats.transcriptions), (count, 2));
}
