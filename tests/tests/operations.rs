//! Operations: health, readiness and metrics endpoints, and a graceful shutdown that
//! refuses new calls but lets live ones finish.

use std::time::Duration;

use e2e_tests::{http_get, raw, Harness};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use voice_sim::fake_openai::FakeOpenAiConfig;

fn fake() -> FakeOpenAiConfig {
    FakeOpenAiConfig {
        api_key: e2e_tests::API_KEY.into(),
        ..FakeOpenAiConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_report_the_bridge() {
    let h = Harness::start(fake(), &[]).await.unwrap();
    let (status, body) = http_get(h.addr, "/healthz").await.unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["dependencies"]["esl"], "disabled");
    assert_eq!(health["dependencies"]["openai_realtime"], "configured");
    assert_eq!(http_get(h.addr, "/readyz").await.unwrap().0, 200);

    let (mut ws, _) = connect_async(h.url("pbx.example.com", "ops-1", "rate=8000"))
        .await
        .unwrap();
    raw::stream(&mut ws, &raw::frames(&[], 8000, 200))
        .await
        .unwrap();
    let (status, metrics) = http_get(h.addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("bridge_calls_active 1"), "{metrics}");
    assert!(metrics.contains("# TYPE bridge_provider_first_audio_seconds histogram"));
    let frames_in = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bridge_frames_in_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(frames_in >= 9, "{frames_in} frames counted");
    ws.close(None).await.unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_esl_is_down() {
    // Nothing listens on this port: the event socket the file modes need is unreachable.
    let h = Harness::start(
        fake(),
        &[
            ("VOICE_BRIDGE__ESL__ENABLED", "true"),
            ("VOICE_BRIDGE__ESL__ADDRESS", "127.0.0.1:9"),
        ],
    )
    .await
    .unwrap();
    let (status, body) = http_get(h.addr, "/readyz").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disconnected"), "{body}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_calls_and_lets_live_ones_finish() {
    let mut h = Harness::start(
        fake(),
        &[("VOICE_BRIDGE__SERVER__SHUTDOWN_GRACE_SECS", "20")],
    )
    .await
    .unwrap();
    let (mut live, _) = connect_async(h.url("pbx.example.com", "live-1", "rate=8000"))
        .await
        .unwrap();
    raw::stream(&mut live, &raw::frames(&[], 8000, 100))
        .await
        .unwrap();

    h.begin_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        connect_async(h.url("pbx.example.com", "late-1", "rate=8000"))
            .await
            .is_err(),
        "a new call was accepted during shutdown"
    );
    // The live call goes on as if nothing happened.
    raw::stream(&mut live, &raw::frames(&[], 8000, 400))
        .await
        .unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_millis(200), live.next()).await,
        Err(_) | Ok(Some(Ok(Message::Binary(_))))
    ));
    assert!(
        !h.stopped_within(Duration::from_millis(500)).await,
        "the bridge exited with a call still live"
    );
    live.send(Message::Close(None)).await.unwrap();
    assert!(
        h.stopped_within(Duration::from_secs(10)).await,
        "the bridge did not exit once its last call ended"
    );
}
