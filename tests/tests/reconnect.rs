//! ixwebsocket builds of mod_audio_stream reconnect on their own and resend the metadata:
//! the call must survive, keep its agent session and go on answering.

use std::time::Duration;

use e2e_tests::{raw, Harness};
use futures_util::SinkExt;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use voice_sim::fake_openai::FakeOpenAiConfig;
use voice_sim::speech::{synthesize, PT_BR};

async fn ixwebsocket_connect(url: &str) -> raw::Ws {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("User-Agent", "ixwebsocket/11.4.5 linux".parse().unwrap());
    let (ws, _) = connect_async(req).await.unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_survives_a_reconnect_of_its_stream() {
    let fake = FakeOpenAiConfig {
        api_key: e2e_tests::API_KEY.into(),
        think_ms: 0,
        ..FakeOpenAiConfig::default()
    };
    let h = Harness::start(fake, &[]).await.unwrap();
    let url = h.url("pbx.example.com", "ix-call-1", "rate=16000");
    let metadata = r#"{"type":"start","uuid":"ix-call-1"}"#;
    let speech = synthesize(
        "Bom dia, eu queria saber o horário de funcionamento.",
        PT_BR,
        16000,
    )
    .unwrap();

    let mut ws = ixwebsocket_connect(&url).await;
    ws.send(Message::Text(metadata.into())).await.unwrap();
    raw::stream(&mut ws, &raw::frames(&[], 16000, 200))
        .await
        .unwrap();
    // The socket dies without a close frame, as on a network fault.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut ws = ixwebsocket_connect(&url).await;
    ws.send(Message::Text(metadata.into())).await.unwrap();
    // The caller speaks on the new stream and must hear the agent answer on it.
    let heard = raw::stream(&mut ws, &raw::frames(&speech, 16000, 3000))
        .await
        .unwrap();
    assert!(
        heard > 16000 * 2 / 2,
        "only {heard} bytes of answer heard after the reconnect"
    );
    assert_eq!(
        h.state.metrics.calls_total.get(),
        1,
        "the reconnect must not start a second call"
    );
    assert_eq!(h.state.metrics.stream_reconnects.get(), 1);
    assert_eq!(
        h.fake.stats().sessions_opened,
        1,
        "one provider session for the whole call"
    );
    ws.close(None).await.unwrap();
    assert!(h.wait_idle(Duration::from_secs(5)).await);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_never_comes_back_ends_the_call_after_the_grace() {
    let fake = FakeOpenAiConfig {
        api_key: e2e_tests::API_KEY.into(),
        ..FakeOpenAiConfig::default()
    };
    let h = Harness::start(fake, &[("VOICE_BRIDGE__SERVER__RECONNECT_GRACE_MS", "300")])
        .await
        .unwrap();
    let mut ws = ixwebsocket_connect(&h.url("pbx.example.com", "ix-gone", "rate=8000")).await;
    raw::stream(&mut ws, &raw::frames(&[], 8000, 100))
        .await
        .unwrap();
    drop(ws);
    assert!(
        h.wait_idle(Duration::from_secs(5)).await,
        "the call must end once the grace is over"
    );
    h.stop().await;
}
