//! The transcription client of voice-core against the fake (both shapes, over real
//! sockets), and the fake's strictness and speech route with raw HTTP requests.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use voice_core::audio::wav;
use voice_core::config::Secret;
use voice_core::providers::stt::openai_transcribe::{OpenAiTranscribe, OpenAiTranscribeConfig};
use voice_core::providers::stt::{
    SpeechToText, SttEvent, SttInput, SttOptions, SttStream, Transcriber,
};
use voice_core::providers::ProviderError;

use super::speech::tone;
use super::{FakeOpenAiAudio, FakeOpenAiAudioConfig, Fault, SpeechVoice, SPEECH_RATE};
use crate::fake_common::test_support::{spoken, square_wave};

const RATE: u32 = 16_000;
const WAIT: Duration = Duration::from_secs(5);
const FIRST: &str = "Olá, bom dia.";
const SECOND: &str = "Eu gostaria de marcar uma consulta.";

/// The fake's settings for these tests: short delays, the cheap tone voice.
fn quick() -> FakeOpenAiAudioConfig {
    FakeOpenAiAudioConfig {
        transcribe_delay_ms: 20,
        speech_first_byte_ms: 0,
        speech_voice: SpeechVoice::Tone,
        ..Default::default()
    }
}

async fn fake(cfg: FakeOpenAiAudioConfig) -> FakeOpenAiAudio {
    FakeOpenAiAudio::start(cfg).await.unwrap()
}

fn client(fake: &FakeOpenAiAudio) -> OpenAiTranscribeConfig {
    OpenAiTranscribeConfig {
        url: fake.transcriptions_url(),
        api_key: Secret::new(fake.api_key()),
        timeout_ms: 2000,
        recording_timeout_ms: 2000,
        ..Default::default()
    }
}

fn speech() -> Vec<i16> {
    spoken("Olá bom dia tudo bem", RATE)
}

async fn open(cfg: OpenAiTranscribeConfig) -> SttStream {
    let options = SttOptions {
        sample_rate: RATE,
        language: "pt-BR".into(),
    };
    OpenAiTranscribe::new(cfg).open(options).await.unwrap()
}

async fn send(stream: &SttStream, audio: Vec<i16>) {
    stream.input.send(SttInput::Audio(audio)).await.unwrap();
}

async fn next(events: &mut mpsc::Receiver<SttEvent>) -> Option<SttEvent> {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event or the end")
}

fn speech_final(text: &str) -> Option<SttEvent> {
    Some(SttEvent::Final {
        text: text.into(),
        speech_final: true,
    })
}

/// The stream's next event is a fatal error, and the last.
async fn expect_fatal(events: &mut mpsc::Receiver<SttEvent>) -> ProviderError {
    let Some(SttEvent::Error { error, fatal: true }) = next(events).await else {
        panic!("expected a fatal error");
    };
    assert_eq!(next(events).await, None);
    error
}

async fn transcribe_error(cfg: OpenAiTranscribeConfig) -> ProviderError {
    let t = OpenAiTranscribe::new(cfg);
    t.transcribe(speech(), RATE, "pt-BR".into())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn the_transcriber_uploads_a_wav_and_reads_the_text() {
    let fake = fake(quick()).await;
    let t = OpenAiTranscribe::new(client(&fake));
    assert_eq!(Transcriber::name(&t), "openai_transcribe");
    let transcript = t.transcribe(speech(), RATE, "pt-BR".into()).await.unwrap();
    assert_eq!(transcript.text, FIRST);
    let stats = fake.stats();
    assert_eq!(stats.models, ["gpt-4o-transcribe"]);
    assert_eq!(stats.languages, [Some("pt".to_string())]);
    assert_eq!(stats.response_formats, ["json"]);
    assert_eq!(stats.filenames, ["audio.wav"]);
    let expected_ms = speech().len() as u64 * 1000 / u64::from(RATE);
    assert_eq!(stats.audio_ms_received, expected_ms);
}

#[tokio::test]
async fn a_stream_posts_one_segment_per_finalize_one_at_a_time_in_order() {
    let fake = fake(FakeOpenAiAudioConfig {
        transcribe_delay_ms: 200,
        ..quick()
    })
    .await;
    let mut stream = open(client(&fake)).await;
    send(&stream, speech()).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    send(&stream, speech()).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    // Too short, then silent: answered without a request, still in order.
    send(&stream, square_wave(RATE, 60, 3000)).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    send(&stream, vec![0; RATE as usize]).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    assert_eq!(next(&mut stream.events).await, speech_final(FIRST));
    assert_eq!(next(&mut stream.events).await, speech_final(SECOND));
    assert_eq!(next(&mut stream.events).await, speech_final(""));
    assert_eq!(next(&mut stream.events).await, speech_final(""));
    let stats = fake.stats();
    assert_eq!(stats.transcriptions, 2);
    assert_eq!(stats.max_in_flight_transcriptions, 1);
}

#[tokio::test]
async fn dropping_the_input_posts_what_is_buffered_then_ends() {
    let fake = fake(quick()).await;
    let mut stream = open(client(&fake)).await;
    send(&stream, speech()).await;
    drop(stream.input);
    assert_eq!(next(&mut stream.events).await, speech_final(FIRST));
    assert_eq!(next(&mut stream.events).await, None);
}

#[tokio::test]
async fn a_wrong_key_is_refused_without_showing_it() {
    let fake = fake(quick()).await;
    let cfg = OpenAiTranscribeConfig {
        api_key: Secret::new("sk-wrong-secret"),
        ..client(&fake)
    };
    let err = transcribe_error(cfg.clone()).await;
    assert!(
        matches!(&err, ProviderError::Refused(m) if m.contains("401") && !m.contains("sk-wrong")),
        "{err}"
    );
    let mut stream = open(cfg).await;
    send(&stream, speech()).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    let err = expect_fatal(&mut stream.events).await;
    assert!(matches!(err, ProviderError::Refused(_)), "{err}");
    assert_eq!(fake.stats().auth_failures, 2);
}

#[tokio::test]
async fn server_errors_and_overload_are_unavailable() {
    let fake = fake(quick()).await;
    fake.set_faults(
        vec![Fault::Refuse(500), Fault::Refuse(429)],
        Fault::Refuse(503),
    );
    for status in ["500", "429"] {
        let err = transcribe_error(client(&fake)).await;
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m.contains(status)),
            "{err}"
        );
    }
    // A failure mid-stream ends the stream after the finals before it.
    fake.set_faults(vec![Fault::None], Fault::Refuse(503));
    let mut stream = open(client(&fake)).await;
    for _ in 0..2 {
        send(&stream, speech()).await;
        stream.input.send(SttInput::Finalize).await.unwrap();
    }
    assert_eq!(next(&mut stream.events).await, speech_final(FIRST));
    let err = expect_fatal(&mut stream.events).await;
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn a_hung_service_is_a_timeout() {
    let fake = fake(FakeOpenAiAudioConfig {
        fault: Fault::Hang,
        ..quick()
    })
    .await;
    let cfg = OpenAiTranscribeConfig {
        timeout_ms: 300,
        recording_timeout_ms: 300,
        ..client(&fake)
    };
    let started = Instant::now();
    assert_eq!(transcribe_error(cfg.clone()).await, ProviderError::Timeout);
    let mut stream = open(cfg).await;
    send(&stream, speech()).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    assert_eq!(
        expect_fatal(&mut stream.events).await,
        ProviderError::Timeout
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn bad_json_is_a_protocol_error_and_a_cut_answer_unavailable() {
    let fake = fake(quick()).await;
    fake.set_faults(
        vec![Fault::MalformedJson, Fault::DropAfterChunks(0)],
        Fault::None,
    );
    let err = transcribe_error(client(&fake)).await;
    assert!(matches!(err, ProviderError::Protocol(_)), "{err}");
    let err = transcribe_error(client(&fake)).await;
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn a_groq_style_endpoint_and_model() {
    let fake = fake(quick()).await;
    let cfg = OpenAiTranscribeConfig {
        url: fake.groq_transcriptions_url(),
        model: "whisper-large-v3-turbo".into(),
        api_key: Secret::default(),
        api_key_env: "VOICE_SIM_TEST_UNSET_GROQ_KEY".into(),
        ..client(&fake)
    };
    // The key comes from the configured variable only.
    let err = transcribe_error(cfg.clone()).await;
    assert!(
        matches!(&err, ProviderError::Config(m) if m.contains("VOICE_SIM_TEST_UNSET_GROQ_KEY")),
        "{err}"
    );
    let cfg = OpenAiTranscribeConfig {
        api_key: Secret::new(fake.api_key()),
        ..cfg
    };
    let t = OpenAiTranscribe::new(cfg);
    let transcript = t.transcribe(speech(), RATE, "pt-BR".into()).await.unwrap();
    assert_eq!(transcript.text, FIRST);
    assert_eq!(fake.stats().models, ["whisper-large-v3-turbo"]);
}

/// A multipart upload built by hand (what a careless client might send).
async fn upload(
    fake: &FakeOpenAiAudio,
    key: Option<&str>,
    form: reqwest::multipart::Form,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(fake.transcriptions_url())
        .multipart(form);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn form(samples: &[i16], language: &str) -> reqwest::multipart::Form {
    let file = reqwest::multipart::Part::bytes(wav::encode(RATE, 1, samples)).file_name("a.wav");
    reqwest::multipart::Form::new()
        .part("file", file)
        .text("model", "whisper-1")
        .text("language", language.to_string())
}

#[tokio::test]
async fn uploads_are_checked_with_openai_errors() {
    let fake = fake(quick()).await;
    let audio = square_wave(RATE, 300, 3000);
    let (status, body) = upload(&fake, None, form(&audio, "pt")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, body) = upload(&fake, Some("sk-wrong-secret"), form(&audio, "pt")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert!(!body.to_string().contains("sk-wrong"), "{body}");
    let key = fake.api_key();
    let (status, body) = upload(&fake, Some(&key), form(&audio, "pt-BR")).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("language"))
    );
    let (status, body) = upload(&fake, Some(&key), form(&audio[..800], "pt")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("audio_too_short"))
    );
    let (status, body) = upload(&fake, Some(&key), form(&vec![0; 8000], "pt")).await;
    assert_eq!(
        (status, body["text"].as_str()),
        (200, Some("")),
        "silence says nothing"
    );
    let stats = fake.stats();
    assert_eq!((stats.refused, stats.transcriptions), (4, 1));
}

async fn speak(fake: &FakeOpenAiAudio, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(fake.speech_url())
        .bearer_auth(fake.api_key())
        .json(&body)
        .send()
        .await
        .unwrap()
}

const LINE: &str = "Claro, posso ajudar com isso. Qual é o seu nome?";

#[tokio::test]
async fn speech_streams_pcm_in_chunks_after_the_first_byte_delay() {
    let fake = fake(FakeOpenAiAudioConfig {
        speech_first_byte_ms: 300,
        ..quick()
    })
    .await;
    let started = Instant::now();
    let body = json!({"model": "gpt-4o-mini-tts", "input": LINE, "voice": "marin",
        "response_format": "pcm", "instructions": "Fale de forma calorosa"});
    let mut response = speak(&fake, body.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/pcm");
    let mut bytes = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        if chunks == 0 {
            assert!(started.elapsed() >= Duration::from_millis(290));
        }
        chunks += 1;
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(bytes.len(), tone(LINE, 1.0).len() * 2);
    assert!(chunks > 5, "{chunks} chunks");
    let stats = fake.stats();
    assert_eq!(stats.speech_texts, [LINE]);
    assert_eq!(stats.last_speech_request, Some(body));
    assert_eq!(
        stats.audio_ms_sent,
        tone(LINE, 1.0).len() as u64 * 1000 / u64::from(SPEECH_RATE)
    );
}

#[tokio::test]
async fn speech_as_wav_and_spoken_by_espeak() {
    let fake = FakeOpenAiAudio::start(FakeOpenAiAudioConfig {
        speech_first_byte_ms: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let body = json!({"model": "tts-1", "input": "Olá!", "voice": "alloy",
        "response_format": "wav", "speed": 1.25});
    let response = speak(&fake, body).await;
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let file = wav::parse(&response.bytes().await.unwrap()).unwrap();
    assert_eq!((file.rate, file.channels), (SPEECH_RATE, 1));
    assert_eq!(file.samples, *spoken("Olá!", SPEECH_RATE));
}

#[tokio::test]
async fn speech_requests_are_checked_and_faults_injected() {
    let fake = fake(quick()).await;
    let ok = json!({"model": "tts-1", "input": LINE, "voice": "nova", "response_format": "pcm"});
    let unauthorized = reqwest::Client::new()
        .post(fake.speech_url())
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let mp3 = json!({"model": "tts-1", "input": "x", "voice": "nova"});
    let answer = speak(&fake, mp3).await;
    assert_eq!(answer.status(), 400);
    let error: Value = answer.json().await.unwrap();
    assert_eq!(error["error"]["param"], "response_format");
    fake.set_faults(
        vec![Fault::DropAfterChunks(2), Fault::Refuse(503)],
        Fault::None,
    );
    let mut cut = speak(&fake, ok.clone()).await;
    assert_eq!(cut.status(), 200);
    let mut got = 0;
    let broke = loop {
        match cut.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(broke, "the body should break off");
    assert_eq!(got, 2 * 4800, "two 100 ms chunks");
    assert_eq!(speak(&fake, ok).await.status(), 503);
}
