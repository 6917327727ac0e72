//! The pre-recorded endpoint over real sockets with raw HTTP requests: scripted diarized
//! recordings (WAV and URL bodies), multichannel files, what it refuses, and faults.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use voice_core::audio::wav;

use super::{FakeDeepgram, FakeDeepgramConfig, Fault, RecordedUtterance};
use crate::fake_common::test_support::square_wave;

const RATE: u32 = 16_000;
const FULL: &str = "model=nova-3&language=pt-BR&diarize=true&utterances=true&smart_format=true\
                    &punctuate=true";

async fn fake() -> FakeDeepgram {
    FakeDeepgram::start(FakeDeepgramConfig {
        final_delay_ms: 0,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A sales call: the agent (speaker 0) and the customer (speaker 1).
fn call_script() -> Vec<RecordedUtterance> {
    vec![
        RecordedUtterance::new(0, 400, 1900, "Olá, aqui é a Ana da Acme."),
        RecordedUtterance::new(1, 2100, 3500, "Oi Ana, tudo bem?"),
        RecordedUtterance::new(0, 3800, 6000, "Quero falar do plano anual."),
    ]
}

fn silent_wav(ms: usize, channels: u16) -> Vec<u8> {
    let samples = vec![0i16; ms * RATE as usize / 1000 * usize::from(channels)];
    wav::encode(RATE, channels, &samples)
}

struct Answer {
    status: u16,
    dg_error: Option<String>,
    body: Value,
}

async fn post(
    fake: &FakeDeepgram,
    auth: Option<String>,
    query: &str,
    mime: &str,
    body: Vec<u8>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}?{query}", fake.http_url()))
        .header("content-type", mime)
        .body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let dg_error = response
        .headers()
        .get("dg-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Answer {
        status,
        dg_error,
        body: response.json().await.unwrap(),
    }
}

fn token(fake: &FakeDeepgram) -> Option<String> {
    Some(format!("Token {}", fake.api_key()))
}

async fn post_wav(fake: &FakeDeepgram, query: &str, file: Vec<u8>) -> Answer {
    post(fake, token(fake), query, "audio/wav", file).await
}

async fn post_url(fake: &FakeDeepgram, query: &str, url: &str) -> Answer {
    let body = json!({ "url": url }).to_string().into_bytes();
    post(fake, token(fake), query, "application/json", body).await
}

#[tokio::test]
async fn a_diarized_recording_round_trips() {
    let fake = fake().await;
    fake.set_recording(call_script()).unwrap();
    let answer = post_wav(&fake, FULL, silent_wav(7000, 1)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.body;
    assert_eq!(body["metadata"]["duration"].as_f64(), Some(7.0));
    assert_eq!(body["metadata"]["channels"], 1);
    let utterances = body["results"]["utterances"].as_array().unwrap();
    let got: Vec<(u64, f64, f64, &str)> = utterances
        .iter()
        .map(|u| {
            (
                u["speaker"].as_u64().unwrap(),
                u["start"].as_f64().unwrap(),
                u["end"].as_f64().unwrap(),
                u["transcript"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 0.4, 1.9, "Olá, aqui é a Ana da Acme."),
            (1, 2.1, 3.5, "Oi Ana, tudo bem?"),
            (0, 3.8, 6.0, "Quero falar do plano anual."),
        ]
    );
    assert!(utterances
        .iter()
        .all(|u| u["channel"] == 0 && u["id"].is_string()));
    let customer_word = &utterances[1]["words"][0];
    assert_eq!(customer_word["speaker"], 1);
    assert_eq!(customer_word["word"], "oi");
    assert_eq!(customer_word["start"].as_f64(), Some(2.1));
    let best = &body["results"]["channels"][0]["alternatives"][0];
    assert_eq!(
        best["transcript"],
        "Olá, aqui é a Ana da Acme. Oi Ana, tudo bem? Quero falar do plano anual."
    );
    let speakers: Vec<u64> = best["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["speaker"].as_u64().unwrap())
        .collect();
    assert_eq!(speakers.len(), 7 + 4 + 5);
    assert_eq!(speakers[6..8], [0, 1]);
    assert!(best["paragraphs"]["transcript"]
        .as_str()
        .unwrap()
        .starts_with("\nSpeaker 0: Olá"));
    let stats = fake.stats();
    assert_eq!(stats.prerecorded_requests, 1);
    assert_eq!(stats.prerecorded_audio_ms, 7000);
    assert_eq!(
        stats.last_query.get("diarize").map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn a_url_is_recorded_and_answered_from_the_script() {
    let fake = fake().await;
    fake.set_recording(call_script()).unwrap();
    let url = "http://127.0.0.1:5090/calls/c1.wav?X-Amz-Signature=abc";
    // No diarization, no formatting, no utterances: bare words without speakers.
    let answer = post_url(&fake, "model=nova-3&language=pt-BR", url).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let best = &answer.body["results"]["channels"][0]["alternatives"][0];
    assert_eq!(
        best["transcript"],
        "olá aqui é a ana da acme oi ana tudo bem quero falar do plano anual"
    );
    assert!(best["words"][0].get("speaker").is_none());
    assert!(best.get("paragraphs").is_none());
    assert!(answer.body["results"].get("utterances").is_none());
    assert_eq!(answer.body["metadata"]["duration"].as_f64(), Some(6.0));
    assert_eq!(fake.stats().prerecorded_urls, [url]);
    assert_eq!(fake.stats().prerecorded_audio_ms, 0);
}

#[tokio::test]
async fn without_a_script_a_url_gets_the_lines_in_turns() {
    let fake = fake().await;
    let answer = post_url(&fake, FULL, "https://example.com/a.wav").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let lines = FakeDeepgramConfig::default().utterances;
    let utterances = answer.body["results"]["utterances"].as_array().unwrap();
    assert_eq!(utterances.len(), lines.len());
    for (i, (u, line)) in utterances.iter().zip(&lines).enumerate() {
        assert_eq!(u["transcript"], line.as_str());
        assert_eq!(u["speaker"].as_u64(), Some(i as u64 % 2));
        assert_eq!(u["start"].as_f64(), Some(2.0 * i as f64));
    }
}

/// Left: 300 ms of speech at the start; right: 300 ms from 1 s.
fn stereo_turns() -> Vec<u8> {
    let mut left = square_wave(RATE, 300, 3000);
    left.extend(vec![0; RATE as usize * 17 / 10]);
    let mut right = vec![0; RATE as usize];
    right.extend(square_wave(RATE, 300, 3000));
    right.extend(vec![0; RATE as usize * 7 / 10]);
    let interleaved: Vec<i16> = left
        .iter()
        .zip(&right)
        .flat_map(|(&l, &r)| [l, r])
        .collect();
    wav::encode(RATE, 2, &interleaved)
}

#[tokio::test]
async fn stereo_is_transcribed_per_channel_or_mixed() {
    let fake = fake().await;
    let lines = FakeDeepgramConfig::default().utterances;
    let q = "model=nova-3&language=pt-BR&utterances=true&smart_format=true";
    let answer = post_wav(&fake, &format!("{q}&multichannel=true"), stereo_turns()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = &answer.body;
    assert_eq!(body["metadata"]["channels"], 2);
    assert_eq!(body["metadata"]["duration"].as_f64(), Some(2.0));
    let channels = body["results"]["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2);
    assert_eq!(
        channels[0]["alternatives"][0]["transcript"],
        lines[0].as_str()
    );
    assert_eq!(
        channels[1]["alternatives"][0]["transcript"],
        lines[1].as_str()
    );
    let by_channel: Vec<(u64, Option<f64>)> = body["results"]["utterances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["channel"].as_u64().unwrap(), u["start"].as_f64()))
        .collect();
    assert_eq!(by_channel, [(0, Some(0.0)), (1, Some(1.0))]);
    let mixed = post_wav(&fake, q, stereo_turns()).await;
    assert_eq!(mixed.status, 200, "{}", mixed.body);
    assert_eq!(mixed.body["metadata"]["channels"], 1);
    let channels = mixed.body["results"]["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 1);
    let utterances = mixed.body["results"]["utterances"].as_array().unwrap();
    assert_eq!(utterances.len(), 2);
    assert!(utterances.iter().all(|u| u["channel"] == 0));
}

#[tokio::test]
async fn a_scripted_stereo_call_keeps_its_channels() {
    let fake = fake().await;
    fake.set_recording(vec![
        RecordedUtterance::new(0, 0, 1000, "Bom dia.").on_channel(1),
        RecordedUtterance::new(0, 1200, 2000, "Oi.").on_channel(0),
    ])
    .unwrap();
    let answer = post_wav(
        &fake,
        &format!("{FULL}&multichannel=true"),
        silent_wav(3000, 2),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let channels = &answer.body["results"]["channels"];
    assert_eq!(channels[0]["alternatives"][0]["transcript"], "Oi.");
    assert_eq!(channels[1]["alternatives"][0]["transcript"], "Bom dia.");
    let first = &answer.body["results"]["utterances"][0];
    assert_eq!(
        (first["channel"].as_u64(), first["speaker"].as_u64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn the_key_must_be_sent_as_a_token() {
    let fake = fake().await;
    let secret = fake.api_key();
    for auth in [
        None,
        Some("Token dg-wrong".to_string()),
        Some(format!("Bearer {secret}")),
        Some(secret.clone()),
    ] {
        let answer = post(&fake, auth.clone(), FULL, "audio/wav", silent_wav(100, 1)).await;
        assert_eq!(answer.status, 401, "{auth:?}");
        assert_eq!(answer.body["err_code"], "INVALID_AUTH");
        assert!(answer.body["request_id"].is_string());
        assert!(!answer.body.to_string().contains(&secret));
    }
    assert_eq!(fake.stats().refused, 4);
    assert_eq!(fake.stats().prerecorded_requests, 0);
}

#[tokio::test]
async fn bad_requests_are_refused_with_deepgrams_shape() {
    let fake = fake().await;
    let ok_wav = silent_wav(100, 1);
    let url = |u: &str| json!({ "url": u }).to_string().into_bytes();
    let bad: Vec<(&str, &str, Vec<u8>)> = vec![
        ("language=pt-BR&diarize=sim", "audio/wav", ok_wav.clone()),
        ("language=pt-BR&multichannel=2", "audio/wav", ok_wav.clone()),
        ("language=pt-BR&diarise=true", "audio/wav", ok_wav.clone()),
        ("language=pt-BR&model=gpt-4o", "audio/wav", ok_wav.clone()),
        (
            "language=pt-BR&interim_results=true",
            "audio/wav",
            ok_wav.clone(),
        ),
        (
            "language=pt-BR&callback=https://x/cb",
            "audio/wav",
            ok_wav.clone(),
        ),
        (
            "language=pt-BR&sample_rate=16000",
            "audio/wav",
            ok_wav.clone(),
        ),
        ("model=nova-3&diarize=true", "audio/wav", ok_wav.clone()),
        ("language=pt-BR", "audio/wav", b"RIFF....not a wav".to_vec()),
        ("language=pt-BR", "audio/mpeg", ok_wav.clone()),
        (
            "language=pt-BR",
            "application/json",
            url("s3://bucket/a.wav"),
        ),
        (
            "language=pt-BR",
            "application/json",
            b"{\"uri\":\"https://x\"}".to_vec(),
        ),
        (
            "language=pt-BR",
            "application/json",
            b"https://x/a.wav".to_vec(),
        ),
    ];
    for (query, mime, body) in bad {
        let answer = post(&fake, token(&fake), query, mime, body).await;
        assert_eq!(answer.status, 400, "{query} {mime}: {}", answer.body);
        assert_eq!(answer.body["err_code"], "Bad Request");
        let message = answer.body["err_msg"].as_str().unwrap().to_string();
        assert_eq!(answer.dg_error.as_deref(), Some(message.as_str()));
    }
    assert_eq!(fake.stats().prerecorded_requests, 0);
}

#[tokio::test]
async fn faults_refuse_delay_and_hang() {
    let fake = fake().await;
    fake.set_faults(
        vec![Fault::Refuse(429), Fault::Refuse(500), Fault::Refuse(400)],
        Fault::None,
    );
    for (status, code) in [
        (429, "TOO_MANY_REQUESTS"),
        (500, "INTERNAL_SERVER_ERROR"),
        (400, "Bad Request"),
    ] {
        let answer = post_wav(&fake, FULL, silent_wav(100, 1)).await;
        assert_eq!(
            (answer.status, answer.body["err_code"].as_str()),
            (status, Some(code))
        );
    }
    assert_eq!(post_wav(&fake, FULL, silent_wav(100, 1)).await.status, 200);

    fake.set_fault(Fault::Delay(300));
    let sent = Instant::now();
    assert_eq!(post_wav(&fake, FULL, silent_wav(100, 1)).await.status, 200);
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "{:?}",
        sent.elapsed()
    );

    fake.set_fault(Fault::Hang);
    let hung = reqwest::Client::new()
        .post(format!("{}?{FULL}", fake.http_url()))
        .header("authorization", format!("Token {}", fake.api_key()))
        .header("content-type", "audio/wav")
        .body(silent_wav(100, 1))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
    assert_eq!(fake.stats().prerecorded_requests, 2);
}

#[tokio::test]
async fn bad_scripts_are_refused() {
    let fake = fake().await;
    assert!(fake
        .set_recording(vec![RecordedUtterance::new(0, 500, 400, "oi")])
        .is_err());
    assert!(fake
        .set_recording(vec![RecordedUtterance::new(0, 0, 400, "")])
        .is_err());
    let bad = FakeDeepgramConfig {
        recording: vec![RecordedUtterance::new(0, 0, 400, "oi").on_channel(8)],
        ..Default::default()
    };
    assert!(FakeDeepgram::start(bad).await.is_err());
    // Clearing the script goes back to the VAD: a silent file says nothing.
    fake.set_recording(call_script()).unwrap();
    fake.set_recording(Vec::new()).unwrap();
    let answer = post_wav(&fake, FULL, silent_wav(1000, 1)).await;
    assert_eq!(answer.body["results"]["utterances"], json!([]));
}
