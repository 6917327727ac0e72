//! Barge-in: the caller talks over the agent. Playout stops within a frame, FreeSWITCH is
//! told to drop its buffer, no stale audio follows, and the provider's memory of the
//! answer is truncated at what the caller actually heard.

use std::time::{Duration, Instant};

use e2e_tests::{raw, Harness};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use voice_sim::speech::{synthesize, PT_BR};

const RATE: u32 = 16000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_clears_playout_and_truncates_at_the_heard_position() {
    let fake = e2e_tests::fake_answering("Claro. Nosso horário de funcionamento é de segunda a sexta, das oito da manhã às seis da tarde, e aos sábados até o meio-dia.");
    let h = Harness::start(fake, &[]).await.unwrap();
    let mut ws = h.open_call("barge-1").await.unwrap();

    let question = synthesize("Qual é o horário de funcionamento?", PT_BR, RATE).unwrap();
    let interruption = synthesize("Espera, espera, só uma pergunta.", PT_BR, RATE).unwrap();
    let mut script = raw::frames(&question, RATE, 0).into_iter();
    let mut barge = raw::frames(&interruption, RATE, 0).into_iter();
    let silence = vec![0u8; (RATE / 50 * 2) as usize];

    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut first_audio: Option<Instant> = None;
    let mut barging_since: Option<Instant> = None;
    let mut cleared_at: Option<Instant> = None;
    let mut audio_bytes_before_clear = 0usize;
    let mut stale_bytes = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && cleared_at.is_none_or(|c| c.elapsed() < Duration::from_millis(300))
    {
        tick.tick().await;
        // Caller: the question, then silence; 800 ms into the answer, the interruption.
        let frame = match script.next() {
            Some(f) => f,
            None if first_audio.is_some_and(|t| t.elapsed() >= Duration::from_millis(800)) => {
                barging_since.get_or_insert_with(Instant::now);
                barge.next().unwrap_or_else(|| silence.clone())
            }
            None => silence.clone(),
        };
        ws.send(Message::Binary(frame.into())).await.unwrap();
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::ZERO, ws.next()).await {
            match msg.unwrap() {
                Message::Binary(b) if cleared_at.is_none() => {
                    assert_eq!(b.len(), 640, "paced 20 ms frames at 16 kHz");
                    first_audio.get_or_insert_with(Instant::now);
                    audio_bytes_before_clear += b.len();
                }
                Message::Binary(b) => stale_bytes += b.len(),
                Message::Text(t) if t.as_str() == r#"{"type":"clearAudio"}"# => {
                    cleared_at.get_or_insert_with(Instant::now);
                }
                other => panic!("unexpected message from the bridge: {other:?}"),
            }
        }
    }
    let first_audio = first_audio.expect("the agent never answered");
    let cleared_at = cleared_at.expect("no clearAudio after the caller barged in");
    assert!(barging_since.is_some());
    assert_eq!(
        stale_bytes, 0,
        "audio of the interrupted answer arrived after the clear"
    );

    // What the caller heard: FreeSWITCH plays from the first frame, in real time, until the clear.
    let heard_ms = cleared_at.duration_since(first_audio).as_millis() as i64;
    let sent_ms = (audio_bytes_before_clear / 32) as i64;
    // At most the playout lead (100 ms by default) ahead, plus two frames of slack for
    // when this test reads them.
    let lead_ms = h.state.config.playout.lead_ms as i64;
    assert!(
        sent_ms <= heard_ms + lead_ms + 40,
        "sent {sent_ms} ms ahead of playback ({heard_ms} ms heard)"
    );
    let stats = h.fake.stats();
    assert_eq!(stats.truncates.len(), 1, "{:?}", stats.truncates);
    let t = &stats.truncates[0];
    eprintln!(
        "heard ~{heard_ms} ms, sent {sent_ms} ms, truncated at {} of {} ms generated",
        t.audio_end_ms, t.generated_ms
    );
    assert!(t.audio_end_ms as i64 <= t.generated_ms as i64);
    assert!(
        (t.audio_end_ms as i64 - heard_ms).abs() <= 120,
        "truncated at {} ms, caller heard ~{heard_ms} ms",
        t.audio_end_ms
    );
    assert!(
        stats.protocol_errors.is_empty(),
        "{:?}",
        stats.protocol_errors
    );
    assert_eq!(h.state.metrics.barge_ins.get(), 1);
    ws.close(None).await.unwrap();
    h.stop().await;
}
