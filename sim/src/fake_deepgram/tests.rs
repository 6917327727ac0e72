//! The Deepgram clients of voice-core against the fake, over real sockets: live turns,
//! `Finalize`, `UtteranceEnd`, keepalive, refusals, failures mid-stream, timeouts, and
//! the pre-recorded transcriber.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use voice_core::config::Secret;
use voice_core::providers::stt::deepgram::{DeepgramConfig, DeepgramStt, DeepgramTranscriber};
use voice_core::providers::stt::{
    SpeechToText, SttEvent, SttInput, SttOptions, SttStream, Transcriber,
};
use voice_core::providers::ProviderError;

use super::{FakeDeepgram, FakeDeepgramConfig, FakeDeepgramStats, Fault};
use crate::fake_common::test_support::{spoken, square_wave};

const RATE: u32 = 16_000;
/// Hang guard: every wait in these tests ends well before it.
const WAIT: Duration = Duration::from_secs(5);
const FIRST: &str = "Olá, bom dia.";
const SECOND: &str = "Eu gostaria de marcar uma consulta.";

/// The fake's settings for these tests: interims often, finals almost at once.
fn quick() -> FakeDeepgramConfig {
    FakeDeepgramConfig {
        interim_every_ms: 200,
        final_delay_ms: 20,
        ..Default::default()
    }
}

async fn fake(cfg: FakeDeepgramConfig) -> FakeDeepgram {
    FakeDeepgram::start(cfg).await.unwrap()
}

fn client_cfg(fake: &FakeDeepgram) -> DeepgramConfig {
    DeepgramConfig {
        url: fake.url(),
        api_key: Secret::new(fake.api_key()),
        ..Default::default()
    }
}

fn options() -> SttOptions {
    SttOptions {
        sample_rate: RATE,
        language: "pt-BR".into(),
    }
}

async fn open(cfg: DeepgramConfig) -> SttStream {
    DeepgramStt::new(cfg).open(options()).await.unwrap()
}

async fn open_error(cfg: DeepgramConfig) -> ProviderError {
    match DeepgramStt::new(cfg).open(options()).await {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    }
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; RATE as usize * ms / 1000]
}

/// Caller speech (espeak-ng) followed by `quiet_ms` of silence.
fn turn(quiet_ms: usize) -> Vec<i16> {
    let mut audio = spoken("Olá bom dia tudo bem", RATE);
    audio.extend(silence(quiet_ms));
    audio
}

/// Sends `audio` in 20 ms frames, unpaced (the fake counts stream time).
async fn send(stream: &SttStream, audio: &[i16]) {
    for frame in audio.chunks(RATE as usize / 50) {
        stream
            .input
            .send(SttInput::Audio(frame.to_vec()))
            .await
            .unwrap();
    }
}

/// Events up to and including the first one `stop` accepts.
async fn until(
    events: &mut mpsc::Receiver<SttEvent>,
    stop: impl Fn(&SttEvent) -> bool,
) -> Vec<SttEvent> {
    let mut seen = Vec::new();
    let collect = async {
        while let Some(ev) = events.recv().await {
            let done = stop(&ev);
            seen.push(ev);
            if done {
                return true;
            }
        }
        false
    };
    let finished = tokio::time::timeout(WAIT, collect).await;
    assert_eq!(
        finished,
        Ok(true),
        "stopped early or timed out; saw {seen:?}"
    );
    seen
}

fn is_final(e: &SttEvent) -> bool {
    matches!(e, SttEvent::Final { .. })
}

fn speech_final(text: &str) -> SttEvent {
    SttEvent::Final {
        text: text.into(),
        speech_final: true,
    }
}

async fn next(events: &mut mpsc::Receiver<SttEvent>) -> Option<SttEvent> {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event or the end")
}

/// The next event is a fatal error; returns it. The stream then ends.
async fn expect_fatal(events: &mut mpsc::Receiver<SttEvent>) -> ProviderError {
    let seen = until(events, |e| matches!(e, SttEvent::Error { .. })).await;
    let Some(SttEvent::Error { error, fatal: true }) = seen.last().cloned() else {
        panic!("expected a fatal error: {seen:?}");
    };
    assert_eq!(next(events).await, None, "a fatal error ends the stream");
    error
}

async fn stats_until(
    fake: &FakeDeepgram,
    ok: impl Fn(&FakeDeepgramStats) -> bool,
) -> FakeDeepgramStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = fake.stats();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "stats never matched: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_turn_gives_interims_then_one_speech_final() {
    let fake = fake(quick()).await;
    let mut stream = open(client_cfg(&fake)).await;
    send(&stream, &turn(1500)).await;
    let first = until(&mut stream.events, is_final).await;
    assert_eq!(first.first(), Some(&SttEvent::SpeechStarted), "{first:?}");
    assert!(
        first.iter().any(|e| matches!(e, SttEvent::Interim { .. })),
        "{first:?}"
    );
    assert_eq!(first.last(), Some(&speech_final(FIRST)));
    // The fake sends UtteranceEnd after the speech_final too: it must not give a second end.
    stats_until(&fake, |s| s.utterance_ends_sent == 1).await;
    send(&stream, &turn(500)).await;
    let second = until(&mut stream.events, is_final).await;
    assert_eq!(second.first(), Some(&SttEvent::SpeechStarted), "{second:?}");
    assert_eq!(second.last(), Some(&speech_final(SECOND)));
    let stats = fake.stats();
    let q = &stats.last_query;
    let param = |k: &str| q.get(k).map(String::as_str);
    assert_eq!(param("encoding"), Some("linear16"));
    assert_eq!(param("sample_rate"), Some("16000"));
    assert_eq!(param("language"), Some("pt-BR"));
    assert_eq!(param("model"), Some("nova-3"));
    assert_eq!(param("endpointing"), Some("300"));
    assert_eq!(param("utterance_end_ms"), Some("1000"));
    assert!(stats.audio_ms_received >= 2000, "{stats:?}");
    assert!(stats.protocol_errors.is_empty(), "{stats:?}");
}

#[tokio::test]
async fn finalize_is_answered_with_a_speech_final() {
    let fake = fake(quick()).await;
    let mut stream = open(client_cfg(&fake)).await;
    send(&stream, &turn(100)).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    let seen = until(&mut stream.events, is_final).await;
    assert_eq!(seen.last(), Some(&speech_final(FIRST)), "{seen:?}");
    // Nothing in progress: the answer is the bare end marker.
    stream.input.send(SttInput::Finalize).await.unwrap();
    assert_eq!(next(&mut stream.events).await, Some(speech_final("")));
    assert_eq!(fake.stats().finalizes, 2);
}

#[tokio::test]
async fn a_final_repeated_for_a_finalize_is_not_delivered_twice() {
    let cfg = FakeDeepgramConfig {
        repeat_final_on_finalize: true,
        ..quick()
    };
    let fake = fake(cfg).await;
    let mut stream = open(client_cfg(&fake)).await;
    send(&stream, &turn(400)).await;
    let seen = until(&mut stream.events, is_final).await;
    assert_eq!(seen.last(), Some(&speech_final(FIRST)));
    stream.input.send(SttInput::Finalize).await.unwrap();
    assert_eq!(next(&mut stream.events).await, Some(speech_final("")));
    // CloseStream: Metadata and a normal close end the events without an error.
    drop(stream.input);
    assert_eq!(next(&mut stream.events).await, None);
    let stats = stats_until(&fake, |s| s.close_streams == 1).await;
    assert_eq!(stats.finals_sent, 2, "the repeat was sent: {stats:?}");
}

#[tokio::test]
async fn utterance_end_closes_an_utterance_when_endpointing_is_off() {
    let fake = fake(quick()).await;
    let cfg = DeepgramConfig {
        endpointing_ms: 0,
        ..client_cfg(&fake)
    };
    let mut stream = open(cfg).await;
    send(&stream, &turn(1500)).await;
    let seen = until(&mut stream.events, |e| *e == speech_final("")).await;
    let finals: Vec<&SttEvent> = seen.iter().filter(|e| is_final(e)).collect();
    let settled = SttEvent::Final {
        text: FIRST.into(),
        speech_final: false,
    };
    assert_eq!(finals, [&settled, &speech_final("")]);
    assert_eq!(
        fake.stats()
            .last_query
            .get("endpointing")
            .map(String::as_str),
        Some("false")
    );
}

#[tokio::test]
async fn keepalive_holds_an_idle_stream_open() {
    let cfg = FakeDeepgramConfig {
        idle_timeout_ms: 500,
        ..quick()
    };
    let fake = fake(cfg).await;
    let mut stream = open(DeepgramConfig {
        keepalive_ms: 100,
        ..client_cfg(&fake)
    })
    .await;
    // Well past the fake's idle limit, with KeepAlive only.
    stats_until(&fake, |s| s.keepalives >= 8).await;
    send(&stream, &turn(500)).await;
    let seen = until(&mut stream.events, is_final).await;
    assert_eq!(seen.last(), Some(&speech_final(FIRST)));
    assert_eq!(fake.stats().idle_closes, 0);
}

#[tokio::test]
async fn a_stream_left_idle_is_closed_with_net_0001() {
    let cfg = FakeDeepgramConfig {
        idle_timeout_ms: 300,
        ..quick()
    };
    let fake = fake(cfg).await;
    let mut stream = open(DeepgramConfig {
        keepalive_ms: 60_000,
        ..client_cfg(&fake)
    })
    .await;
    let error = expect_fatal(&mut stream.events).await;
    assert!(
        matches!(&error, ProviderError::Unavailable(m) if m.contains("1011") && m.contains("NET-0001")),
        "{error}"
    );
    assert_eq!(fake.stats().idle_closes, 1);
}

#[tokio::test]
async fn a_wrong_key_is_refused_without_showing_it() {
    let fake = fake(quick()).await;
    let cfg = DeepgramConfig {
        api_key: Secret::new("dg-wrong-secret"),
        ..client_cfg(&fake)
    };
    let err = open_error(cfg).await;
    assert!(
        matches!(&err, ProviderError::Refused(m) if m.contains("401") && !m.contains("dg-wrong")),
        "{err}"
    );
    assert_eq!(fake.stats().refused, 1);
}

#[tokio::test]
async fn an_overloaded_service_is_unavailable_and_a_bad_request_refused() {
    let fake = fake(quick()).await;
    fake.set_faults(
        vec![Fault::Refuse(503), Fault::Refuse(429), Fault::Refuse(400)],
        Fault::None,
    );
    for status in ["503", "429"] {
        let err = open_error(client_cfg(&fake)).await;
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m.contains(status)),
            "{err}"
        );
    }
    let err = open_error(client_cfg(&fake)).await;
    assert!(
        matches!(&err, ProviderError::Refused(m) if m.contains("400")),
        "{err}"
    );
    open(client_cfg(&fake)).await;
}

#[tokio::test]
async fn a_hung_upgrade_is_a_timeout() {
    let fake = fake(FakeDeepgramConfig {
        fault: Fault::HangUpgrade,
        ..quick()
    })
    .await;
    let started = Instant::now();
    let err = open_error(DeepgramConfig {
        connect_timeout_ms: 300,
        ..client_cfg(&fake)
    })
    .await;
    assert_eq!(err, ProviderError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_error_message_mid_stream_ends_it() {
    let fake = fake(FakeDeepgramConfig {
        fault: Fault::ErrorAfterResults(1),
        ..quick()
    })
    .await;
    let mut stream = open(client_cfg(&fake)).await;
    send(&stream, &turn(500)).await;
    let error = expect_fatal(&mut stream.events).await;
    assert!(
        matches!(&error, ProviderError::Unavailable(m) if m.contains("fault injection")),
        "{error}"
    );
}

#[tokio::test]
async fn a_dropped_connection_ends_the_stream() {
    let fake = fake(FakeDeepgramConfig {
        fault: Fault::DropAfterResults(1),
        ..quick()
    })
    .await;
    let mut stream = open(client_cfg(&fake)).await;
    send(&stream, &turn(500)).await;
    let error = expect_fatal(&mut stream.events).await;
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error}");
}

#[tokio::test]
async fn dropping_the_input_flushes_the_last_words_then_ends() {
    let fake = fake(quick()).await;
    let mut stream = open(client_cfg(&fake)).await;
    send(&stream, &turn(60)).await;
    drop(stream.input);
    let seen = until(&mut stream.events, is_final).await;
    let flushed = SttEvent::Final {
        text: FIRST.into(),
        speech_final: false,
    };
    assert_eq!(seen.last(), Some(&flushed), "{seen:?}");
    assert_eq!(
        next(&mut stream.events).await,
        None,
        "ends without an error"
    );
    assert_eq!(fake.stats().close_streams, 1);
}

#[tokio::test]
async fn the_final_is_held_back_by_the_configured_delay() {
    let fake = FakeDeepgram::start(FakeDeepgramConfig {
        final_delay_ms: 400,
        ..quick()
    })
    .await
    .unwrap();
    let mut stream = open(client_cfg(&fake)).await;
    send(&stream, &turn(400)).await;
    let sent = Instant::now();
    until(&mut stream.events, is_final).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(380),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn a_hundred_streams_at_once() {
    let fake = fake(quick()).await;
    let mut audio = square_wave(RATE, 300, 3000);
    audio.extend(silence(400));
    let calls = (0..100).map(|_| {
        let cfg = client_cfg(&fake);
        let audio = audio.clone();
        async move {
            let mut stream = open(cfg).await;
            send(&stream, &audio).await;
            until(&mut stream.events, is_final).await.pop()
        }
    });
    let finals = futures_util::future::join_all(calls).await;
    assert!(
        finals.iter().all(|f| *f == Some(speech_final(FIRST))),
        "{finals:?}"
    );
    assert_eq!(fake.stats().sessions, 100);
}

fn transcriber_cfg(fake: &FakeDeepgram) -> DeepgramConfig {
    DeepgramConfig {
        request_timeout_ms: 2000,
        ..client_cfg(fake)
    }
}

#[tokio::test]
async fn the_transcriber_joins_the_utterances_of_a_recording() {
    let fake = fake(quick()).await;
    let mut audio = silence(300);
    audio.extend(turn(1000));
    audio.extend(turn(800));
    let seconds = audio.len() as f64 / f64::from(RATE);
    let t = DeepgramTranscriber::new(transcriber_cfg(&fake));
    assert_eq!(t.name(), "deepgram");
    let transcript = t.transcribe(audio, RATE, "pt-BR".into()).await.unwrap();
    assert_eq!(transcript.text, format!("{FIRST} {SECOND}"));
    let duration = transcript.duration_s.unwrap();
    assert!((duration - seconds).abs() < 0.01, "{duration} vs {seconds}");
    let stats = fake.stats();
    assert_eq!(stats.prerecorded_requests, 1);
    let q = &stats.last_query;
    assert_eq!(q.get("utterances").map(String::as_str), Some("true"));
    assert_eq!(q.get("language").map(String::as_str), Some("pt-BR"));
    assert_eq!(q.get("smart_format").map(String::as_str), Some("true"));
    let quiet = t
        .transcribe(silence(500), RATE, "pt-BR".into())
        .await
        .unwrap();
    assert_eq!(quiet.text, "");
}

#[tokio::test]
async fn the_transcriber_is_refused_or_times_out() {
    let fake = fake(quick()).await;
    let wrong = DeepgramTranscriber::new(DeepgramConfig {
        api_key: Secret::new("dg-wrong-secret"),
        ..transcriber_cfg(&fake)
    });
    let err = wrong
        .transcribe(turn(100), RATE, "pt-BR".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Refused(m) if m.contains("401") && !m.contains("dg-wrong")),
        "{err}"
    );
    fake.set_fault(Fault::Hang);
    let t = DeepgramTranscriber::new(DeepgramConfig {
        request_timeout_ms: 300,
        ..transcriber_cfg(&fake)
    });
    let err = t
        .transcribe(turn(100), RATE, "pt-BR".into())
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Timeout);
    fake.set_fault(Fault::Refuse(502));
    let err = t
        .transcribe(turn(100), RATE, "pt-BR".into())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
}
