//! What the fake refuses or enforces, driven by raw clients: auth and query checks on
//! the upgrade and the upload, control messages, odd frames, the idle close, the polite
//! close after `CloseStream`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use voice_core::audio::{pcm, wav};

use super::{FakeDeepgram, FakeDeepgramConfig};
use crate::fake_common::test_support::{square_wave, RawWs};

const QUERY: &str = "model=nova-3&language=pt-BR&encoding=linear16&sample_rate=16000&channels=1\
                     &interim_results=true&endpointing=300&vad_events=true&smart_format=true";
const WAIT: Duration = Duration::from_secs(5);

async fn fake() -> FakeDeepgram {
    FakeDeepgram::start(FakeDeepgramConfig {
        final_delay_ms: 0,
        idle_timeout_ms: 400,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Upgrades with `auth` (if any) and `query`; the HTTP status when refused.
async fn connect(fake: &FakeDeepgram, auth: Option<&str>, query: &str) -> Result<RawWs, u16> {
    let mut request = format!("{}?{query}", fake.url())
        .into_client_request()
        .unwrap();
    if let Some(auth) = auth {
        request
            .headers_mut()
            .insert("authorization", auth.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn open(fake: &FakeDeepgram) -> RawWs {
    let auth = format!("Token {}", fake.api_key());
    connect(fake, Some(&auth), QUERY).await.unwrap()
}

async fn next(ws: &mut RawWs) -> Message {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return msg;
        }
    }
}

fn json_of(msg: &Message) -> Value {
    match msg {
        Message::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn close_code(msg: &Message) -> (CloseCode, String) {
    match msg {
        Message::Close(Some(f)) => (f.code, f.reason.to_string()),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_upgrade_wants_the_token_and_the_query() {
    let fake = fake().await;
    let key = fake.api_key();
    let token = format!("Token {key}");
    assert_eq!(connect(&fake, None, QUERY).await.err(), Some(401));
    assert_eq!(
        connect(&fake, Some(&format!("Bearer {key}")), QUERY)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        connect(&fake, Some("Token nope"), QUERY).await.err(),
        Some(401)
    );
    let bad_queries = [
        "language=pt-BR&sample_rate=16000",
        "language=pt-BR&encoding=linear16",
        "encoding=linear16&sample_rate=16000",
        "language=pt-BR&encoding=opus&sample_rate=16000",
        "language=pt-BR&encoding=linear16&sample_rate=16000&utterance_end_ms=1000",
    ];
    for q in bad_queries {
        assert_eq!(
            connect(&fake, Some(&token), q).await.err(),
            Some(400),
            "{q}"
        );
    }
    assert!(connect(&fake, Some(&token), QUERY).await.is_ok());
    let stats = fake.stats();
    assert_eq!((stats.refused, stats.sessions), (8, 1));
}

#[tokio::test]
async fn close_stream_flushes_then_sends_metadata_and_closes_normally() {
    let fake = fake().await;
    let mut ws = open(&fake).await;
    let audio = square_wave(16_000, 200, 3000);
    ws.send(Message::binary(pcm::to_le_bytes(&audio)))
        .await
        .unwrap();
    // KeepAlive is not answered: the next message is what the speech brought.
    ws.send(Message::text(r#"{"type":"KeepAlive"}"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .unwrap();
    let mut types = Vec::new();
    loop {
        let msg = next(&mut ws).await;
        if msg.is_close() {
            assert_eq!(close_code(&msg).0, CloseCode::Normal);
            break;
        }
        let v = json_of(&msg);
        if v["type"] == "Results" {
            assert_eq!(v["is_final"], true);
            assert_eq!(
                v["channel"]["alternatives"][0]["transcript"],
                "Olá, bom dia."
            );
        }
        types.push(v["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types, ["SpeechStarted", "Results", "Metadata"]);
    let stats = fake.stats();
    assert_eq!((stats.keepalives, stats.close_streams), (1, 1));
    assert_eq!(stats.audio_ms_received, 200);
}

#[tokio::test]
async fn an_unknown_control_message_closes_the_stream() {
    let fake = fake().await;
    let mut ws = open(&fake).await;
    ws.send(Message::text(r#"{"type":"Flush"}"#)).await.unwrap();
    assert_eq!(close_code(&next(&mut ws).await).0, CloseCode::Policy);
    let errors = fake.stats().protocol_errors;
    assert!(errors.iter().any(|e| e.contains("Flush")), "{errors:?}");
}

#[tokio::test]
async fn odd_audio_frames_are_noted_and_idle_streams_closed() {
    let fake = fake().await;
    let mut ws = open(&fake).await;
    ws.send(Message::binary(vec![0u8; 321])).await.unwrap();
    ws.send(Message::binary(vec![0u8; 319])).await.unwrap();
    let (code, reason) = close_code(&next(&mut ws).await);
    assert_eq!(code, CloseCode::Error);
    assert!(reason.contains("NET-0001"), "{reason}");
    let stats = fake.stats();
    assert_eq!(
        stats.audio_ms_received, 20,
        "the odd byte joined the next frame"
    );
    assert_eq!(stats.protocol_errors.len(), 1, "{stats:?}");
    assert_eq!(stats.idle_closes, 1);
}

async fn post(
    fake: &FakeDeepgram,
    auth: Option<&str>,
    query: &str,
    mime: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{}?{query}", fake.http_url()))
        .header("content-type", mime)
        .body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_upload_is_checked_and_answered_in_the_documented_shape() {
    let fake = fake().await;
    let token = format!("Token {}", fake.api_key());
    let mut audio = square_wave(16_000, 300, 3000);
    audio.extend(vec![0; 16_000]);
    let file = wav::encode(16_000, 1, &audio);
    let q = "model=nova-3&language=pt-BR&utterances=true&smart_format=true";
    let (status, body) = post(&fake, None, q, "audio/wav", file.clone()).await;
    assert_eq!(
        (status, body["err_code"].as_str()),
        (401, Some("INVALID_AUTH"))
    );
    let bad = [
        (
            "language=pt-BR",
            "application/json",
            b"{\"url\":\"x\"}".to_vec(),
        ),
        ("language=pt-BR", "audio/wav", b"not a wav".to_vec()),
        ("language=pt-BR", "text/plain", file.clone()),
        (
            "language=pt-BR&encoding=linear16",
            "audio/wav",
            file.clone(),
        ),
        ("utterances=true", "audio/wav", file.clone()),
    ];
    for (query, mime, body) in bad {
        let (status, answer) = post(&fake, Some(&token), query, mime, body).await;
        assert_eq!(status, 400, "{query} {mime}: {answer}");
        assert!(answer["err_msg"].is_string());
    }
    let (status, body) = post(&fake, Some(&token), q, "audio/wav", file).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["duration"].as_f64(), Some(1.3));
    let channel = &body["results"]["channels"][0]["alternatives"][0];
    assert_eq!(channel["transcript"], "Olá, bom dia.");
    let utterance = &body["results"]["utterances"][0];
    assert_eq!(utterance["transcript"], "Olá, bom dia.");
    assert_eq!(
        (utterance["start"].as_f64(), utterance["end"].as_f64()),
        (Some(0.0), Some(0.3))
    );
    assert_eq!(fake.stats().prerecorded_requests, 1);
}
