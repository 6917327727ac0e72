//! The fake's strictness, checked with a raw WebSocket client.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::fake_common::test_support::{next_frame, send, stats_until, RawWs, WAIT};

async fn fake(cfg: FakeGeminiConfig) -> FakeGemini {
    FakeGemini::start(cfg).await.unwrap()
}

/// Upgraded, nothing sent yet (the key in the query this time).
async fn raw(fake: &FakeGemini) -> RawWs {
    let url = format!("{}?key={}", fake.url(), FakeGeminiConfig::default().api_key);
    let req = url.into_client_request().unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

fn setup() -> Value {
    json!({"setup": {"model": "models/gemini-live-test",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "tools": [{"functionDeclarations": [{"name": "lookup_customer"}]}]}})
}

/// The next server message; server JSON comes in binary frames by default.
async fn next_json(ws: &mut RawWs) -> Value {
    match next_frame(ws).await {
        Message::Binary(b) => serde_json::from_slice(&b).unwrap(),
        Message::Text(t) => panic!("expected a binary frame, got text {t}"),
        other => panic!("closed: {other:?}"),
    }
}

async fn set_up(ws: &mut RawWs) {
    send(ws, setup()).await;
    assert_eq!(next_json(ws).await, json!({"setupComplete": {}}));
}

/// Reads until the server's Close frame; returns its code and reason.
async fn close_frame(ws: &mut RawWs) -> (CloseCode, String) {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return (f.code, f.reason.to_string()),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                panic!("closed without a frame")
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn errors_until(fake: &FakeGemini, n: usize) -> Vec<String> {
    let stats = stats_until(fake, |s| s.protocol_errors.len() >= n).await;
    stats.protocol_errors
}

#[tokio::test]
async fn a_setup_less_client_is_closed_with_1007() {
    let fake = fake(FakeGeminiConfig::default()).await;
    let mut ws = raw(&fake).await;
    send(
        &mut ws,
        json!({"realtimeInput": {"audio": {"data": "AAA=", "mimeType": "audio/pcm;rate=16000"}}}),
    )
    .await;
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, CloseCode::Invalid);
    assert!(reason.contains("setup"), "{reason}");
    let errors = errors_until(&fake, 1).await;
    assert!(
        errors[0].contains("first message must be setup"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_setup_timeout() {
    let fake = fake(FakeGeminiConfig {
        setup_timeout_ms: 200,
        ..Default::default()
    })
    .await;
    let mut ws = raw(&fake).await;
    let (code, _) = close_frame(&mut ws).await;
    assert_eq!(code, CloseCode::Invalid);
    assert!(errors_until(&fake, 1).await[0].contains("no setup"));
}

#[tokio::test]
async fn invalid_setups_and_unparseable_messages_close_the_session() {
    let fake = fake(FakeGeminiConfig::default()).await;
    let mut ws = raw(&fake).await;
    send(
        &mut ws,
        json!({"setup": {"model": "models/m", "temperature": 0.2}}),
    )
    .await;
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, CloseCode::Invalid);
    assert!(reason.contains("temperature"), "{reason}");

    let mut ws = raw(&fake).await;
    set_up(&mut ws).await;
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(close_frame(&mut ws).await.0, CloseCode::Invalid);

    let mut ws = raw(&fake).await;
    set_up(&mut ws).await;
    send(
        &mut ws,
        json!({"realtimeInput": {"text": "a"}, "clientContent": {}}),
    )
    .await;
    assert_eq!(close_frame(&mut ws).await.0, CloseCode::Invalid);
    assert_eq!(errors_until(&fake, 3).await.len(), 3);
}

#[tokio::test]
async fn snake_case_is_accepted() {
    let fake = fake(FakeGeminiConfig {
        think_ms: 0,
        ..Default::default()
    })
    .await;
    let mut ws = raw(&fake).await;
    send(
        &mut ws,
        json!({"setup": {"model": "models/m", "generation_config": {"response_modalities": ["AUDIO"]},
            "realtime_input_config": {"automatic_activity_detection": {"disabled": true}}}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await, json!({"setupComplete": {}}));
    send(&mut ws, json!({"realtime_input": {"activity_start": {}}})).await;
    send(
        &mut ws,
        json!({"realtime_input": {"audio": {"data": "AAAAAA==", "mime_type": "audio/pcm;rate=16000"}}}),
    )
    .await;
    send(&mut ws, json!({"realtime_input": {"activity_end": {}}})).await;
    send(
        &mut ws,
        json!({"client_content": {"turns": [{"role": "user", "parts": [{"text": "Oi"}]}],
            "turn_complete": false}}),
    )
    .await;
    // The activity ended a turn: the reply starts.
    let first = next_json(&mut ws).await;
    assert!(
        first["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"].is_string(),
        "{first}"
    );
    let stats = fake.stats();
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    assert_eq!((stats.activity_starts, stats.activity_ends), (1, 1));
    assert_eq!(stats.history_turns, 1);
}

#[tokio::test]
async fn bad_client_messages_are_recorded_and_the_session_goes_on() {
    let fake = fake(FakeGeminiConfig {
        think_ms: 0,
        ..Default::default()
    })
    .await;
    let mut ws = raw(&fake).await;
    set_up(&mut ws).await;
    let bad = [
        json!({"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "audio/pcm;rate=24000"}}}),
        json!({"realtimeInput": {"audio": {"data": "!!!", "mimeType": "audio/pcm;rate=16000"}}}),
        json!({"realtimeInput": {"audio": {"data": "AAAA"}}}),
        json!({"realtimeInput": {"activityStart": {}}}),
        json!({"toolResponse": {"functionResponses": [{"id": "fc_9", "name": "x", "response": {}}]}}),
        json!({"clientContent": {"turns": [{"role": "assistant", "parts": [{"text": "x"}]}]}}),
        json!({"setup": {"model": "models/m"}}),
    ];
    for msg in &bad {
        send(&mut ws, msg.clone()).await;
    }
    let errors = errors_until(&fake, bad.len()).await;
    assert!(errors[0].contains("rate=24000"), "{errors:?}");
    assert!(errors[1].contains("base64"), "{errors:?}");
    assert!(errors[2].contains("mimeType"), "{errors:?}");
    assert!(errors[3].contains("disabled"), "{errors:?}");
    assert!(errors[4].contains("fc_9"), "{errors:?}");
    assert!(errors[5].contains("assistant"), "{errors:?}");
    assert!(errors[6].contains("twice"), "{errors:?}");
    // Still alive: a text turn gets an answer.
    send(&mut ws, json!({"realtimeInput": {"text": "Oi"}})).await;
    let reply = next_json(&mut ws).await;
    assert!(reply["serverContent"]["modelTurn"].is_object(), "{reply}");
    assert_eq!(fake.stats().audio_ms_received, 0, "no bad audio counted");
}

#[tokio::test]
async fn a_tool_response_must_answer_the_pending_call() {
    let fake = fake(FakeGeminiConfig {
        think_ms: 0,
        tool_call: Some(("lookup_customer".into(), r#"{"phone":"1"}"#.into())),
        ..Default::default()
    })
    .await;
    let mut ws = raw(&fake).await;
    set_up(&mut ws).await;
    send(
        &mut ws,
        json!({"clientContent": {"turns": [{"role": "user", "parts": [{"text": "Oi"}]}],
            "turnComplete": true}}),
    )
    .await;
    let call = next_json(&mut ws).await;
    let f = &call["toolCall"]["functionCalls"][0];
    assert_eq!(f["name"], "lookup_customer");
    assert_eq!(f["args"], json!({"phone": "1"}));
    let id = f["id"].as_str().unwrap().to_string();
    let respond = |id: &str, name: &str, response: Value| json!({"tool_response": {"functionResponses": [{"id": id, "name": name, "response": response}]}});
    send(&mut ws, respond(&id, "other", json!({"result": 1}))).await;
    send(
        &mut ws,
        respond(&id, "lookup_customer", json!("not an object")),
    )
    .await;
    send(
        &mut ws,
        respond(&id, "lookup_customer", json!({"result": {"name": "Ana"}})),
    )
    .await;
    let reply = next_json(&mut ws).await;
    assert!(reply["serverContent"]["modelTurn"].is_object(), "{reply}");
    let stats = fake.stats();
    assert_eq!(
        stats.protocol_errors.len(),
        2,
        "{:?}",
        stats.protocol_errors
    );
    assert_eq!((stats.tool_calls, stats.tool_responses), (1, 1));
}
