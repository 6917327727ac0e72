//! Bad input from FreeSWITCH or a failing provider: a clear reason, a clean close, no panic,
//! and the other calls carry on.

use std::time::Duration;

use e2e_tests::raw::Ws;
use e2e_tests::Harness;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use voice_sim::fake_openai::{FakeOpenAiConfig, Fault};

fn fake() -> FakeOpenAiConfig {
    FakeOpenAiConfig {
        api_key: e2e_tests::API_KEY.into(),
        ..FakeOpenAiConfig::default()
    }
}

async fn connect(url: &str) -> Ws {
    let (ws, _) = connect_async(url).await.expect("handshake");
    ws
}

/// Reads until the bridge closes; returns the close code and reason.
async fn closed_with(ws: &mut Ws) -> (u16, String) {
    let wait = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(Some(frame))) => {
                    return (u16::from(frame.code), frame.reason.to_string())
                }
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => continue,
                Err(_) => return (1006, String::new()),
            }
        }
        (1006, String::new())
    });
    wait.await.expect("the bridge should close the stream")
}

fn silence(rate: u32) -> Message {
    Message::Binary(vec![0u8; (rate / 50 * 2) as usize].into())
}

/// A healthy call: metadata and a few frames of silence.
async fn healthy_call(h: &Harness, call: &str) -> Ws {
    let mut ws = connect(&h.url("pbx.example.com", call, "rate=8000")).await;
    ws.send(Message::Text(r#"{"type":"start"}"#.into()))
        .await
        .unwrap();
    for _ in 0..5 {
        ws.send(silence(8000)).await.unwrap();
    }
    ws
}

async fn still_open(ws: &mut Ws) -> bool {
    for _ in 0..10 {
        if ws.send(silence(8000)).await.is_err() {
            return false;
        }
    }
    // Nothing but audio or nothing at all may come back; a close means we were hurt.
    match tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
        Err(_) => true,
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => false,
        Ok(Some(Ok(_))) => true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_odd_and_oversized_frames_close_only_that_call() {
    let h = Harness::start(fake(), &[("VOICE_BRIDGE__SERVER__MAX_FRAME_BYTES", "4096")])
        .await
        .unwrap();
    let mut good = healthy_call(&h, "good-1").await;

    let mut bad = connect(&h.url("pbx.example.com", "bad-json", "rate=8000")).await;
    bad.send(Message::Text(r#"{"type":"start"}"#.into()))
        .await
        .unwrap();
    bad.send(Message::Text(r#"{"type":"dtmf","digit":"#.into()))
        .await
        .unwrap();
    let (code, reason) = closed_with(&mut bad).await;
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("malformed JSON"), "{reason}");

    let mut bad = connect(&h.url("pbx.example.com", "bad-odd", "rate=8000")).await;
    bad.send(Message::Binary(vec![0u8; 321].into()))
        .await
        .unwrap();
    let (code, reason) = closed_with(&mut bad).await;
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("321 bytes"), "{reason}");

    let mut bad = connect(&h.url("pbx.example.com", "bad-stereo", "rate=8000&mix=stereo")).await;
    bad.send(Message::Binary(vec![0u8; 642].into()))
        .await
        .unwrap();
    let (code, _) = closed_with(&mut bad).await;
    assert_eq!(code, 1007);

    let mut bad = connect(&h.url("pbx.example.com", "bad-big", "rate=8000")).await;
    bad.send(Message::Binary(vec![0u8; 8192].into()))
        .await
        .unwrap();
    let (code, reason) = closed_with(&mut bad).await;
    assert_eq!(code, 1009, "{reason}");

    assert!(
        still_open(&mut good).await,
        "a healthy call was hurt by another call's bad input"
    );
    assert!(h.state.metrics.bad_frames.get() >= 4);
    good.close(None).await.unwrap();
    assert!(h.wait_idle(Duration::from_secs(10)).await);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_dialect_and_bad_parameters_are_refused_at_the_handshake() {
    let h = Harness::start(fake(), &[]).await.unwrap();
    let mut req = h
        .url("pbx.example.com", "c1", "")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    let err = connect_async(req)
        .await
        .expect_err("an unknown subprotocol must be refused");
    assert!(err.to_string().contains("400"), "{err}");

    for query in [
        "dialect=asterisk",
        "rate=24",
        "mix=surround",
        "playout=loud",
    ] {
        let err = connect_async(h.url("pbx.example.com", "c2", query))
            .await
            .expect_err(query);
        assert!(err.to_string().contains("400"), "{query}: {err}");
    }
    let err = connect_async(format!("{}/stream/a/b/c", h.ws_base()))
        .await
        .expect_err("too many segments");
    assert!(err.to_string().contains("400"), "{err}");
    assert!(h.state.metrics.calls_refused.get() >= 6);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tenant_and_missing_metadata_are_closed_with_a_reason() {
    let h = Harness::start(
        fake(),
        &[
            ("VOICE_BRIDGE__SERVER__ALLOW_UNKNOWN_TENANTS", "false"),
            (
                "VOICE_BRIDGE__TENANTS__KNOWN.EXAMPLE__AGENT__VOICE",
                "cedar",
            ),
            ("VOICE_BRIDGE__SERVER__METADATA_TIMEOUT_MS", "300"),
        ],
    )
    .await
    .unwrap();
    let mut ws = connect(&h.url("stranger.example", "c1", "")).await;
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!((code, reason.as_str()), (1008, "unknown tenant"));

    // Tenant and call in the metadata instead of the path: accepted.
    let mut ws = connect(&format!("{}/stream", h.ws_base())).await;
    ws.send(Message::Text(
        r#"{"domain_name":"known.example","uuid":"meta-1"}"#.into(),
    ))
    .await
    .unwrap();
    assert!(still_open(&mut ws).await);
    ws.close(None).await.unwrap();

    // No metadata at all: closed once the wait is over.
    let mut ws = connect(&format!("{}/stream", h.ws_base())).await;
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("metadata"), "{reason}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_refusing_or_dropping_closes_the_call_cleanly() {
    let h = Harness::start(
        FakeOpenAiConfig {
            fault: Fault::RefuseUpgrade(401),
            ..fake()
        },
        &[],
    )
    .await
    .unwrap();
    let mut ws = connect(&h.url("pbx.example.com", "refused", "rate=8000")).await;
    ws.send(silence(8000)).await.unwrap();
    // After the apology (no ESL to hang up with), the stream is closed as unavailable.
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!((code, reason.as_str()), (1011, "agent unavailable"));
    assert!(h.state.metrics.provider_errors.get() >= 1);
    h.stop().await;

    let h = Harness::start(
        FakeOpenAiConfig {
            fault: Fault::CloseAfterMs(300),
            ..fake()
        },
        &[],
    )
    .await
    .unwrap();
    let mut ws = connect(&h.url("pbx.example.com", "dropped", "rate=8000")).await;
    let sender = async {
        for _ in 0..100 {
            if ws.send(silence(8000)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(600), sender).await;
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!((code, reason.as_str()), (1011, "agent unavailable"));
    assert!(h.wait_idle(Duration::from_secs(5)).await);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_code_1000_ends_the_call_at_once() {
    let h = Harness::start(fake(), &[]).await.unwrap();
    let mut ws = healthy_call(&h, "hangup-1").await;
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .await
    .unwrap();
    assert!(
        h.wait_idle(Duration::from_secs(3)).await,
        "a hangup must not wait for a reconnect"
    );
    h.stop().await;
}
