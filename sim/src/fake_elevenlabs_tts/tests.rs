//! The real client (`voice_core::providers::tts::elevenlabs`) against the fake, over real
//! sockets, plus strictness checks with a raw WebSocket client.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use voice_core::audio::g711;
use voice_core::config::Secret;
use voice_core::providers::tts::elevenlabs::{ElevenLabsTts, ElevenLabsTtsConfig, VoiceSettings};
use voice_core::providers::tts::{TextToSpeech, TtsEvent};
use voice_core::providers::ProviderError;

use super::*;
use crate::fake_common::test_support::{
    next_frame, next_json, send, stats_until, RawWs, StatsSource, WAIT,
};

impl StatsSource for FakeElevenLabsTts {
    type Stats = FakeTtsStats;
    fn snapshot(&self) -> FakeTtsStats {
        self.stats()
    }
}

const PIECES: [&str; 2] = ["Olá, tudo bem?", "Posso ajudar com mais alguma coisa?"];

/// Fast settings: audio 50 times faster than real time, a short first byte.
fn quick() -> FakeElevenLabsTtsConfig {
    FakeElevenLabsTtsConfig {
        first_byte_ms: 10,
        realtime_factor: 50.0,
        ..Default::default()
    }
}

async fn fake(cfg: FakeElevenLabsTtsConfig) -> FakeElevenLabsTts {
    FakeElevenLabsTts::start(cfg).await.unwrap()
}

fn client_cfg(fake: &FakeElevenLabsTts, format: &str) -> ElevenLabsTtsConfig {
    ElevenLabsTtsConfig {
        url: fake.url(),
        voice_id: fake.voice_id(),
        output_format: format.into(),
        api_key: Secret::new(fake.api_key()),
        first_audio_timeout_ms: 2000,
        ..Default::default()
    }
}

fn client(cfg: ElevenLabsTtsConfig) -> ElevenLabsTts {
    ElevenLabsTts::new(cfg).unwrap()
}

/// Sends `pieces`, closes the text, and collects everything until the stream ends.
async fn speak(tts: &ElevenLabsTts, pieces: &[&str]) -> (Vec<i16>, Vec<TtsEvent>) {
    let stream = tts.open().await.unwrap();
    for p in pieces {
        stream.text.send(p.to_string()).await.unwrap();
    }
    drop(stream.text);
    collect(stream.audio).await
}

/// All audio, and the events that were not audio.
async fn collect(mut audio: mpsc::Receiver<TtsEvent>) -> (Vec<i16>, Vec<TtsEvent>) {
    let mut samples = Vec::new();
    let mut rest = Vec::new();
    let read = async {
        while let Some(ev) = audio.recv().await {
            match ev {
                TtsEvent::Audio(s) => samples.extend(s),
                other => rest.push(other),
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the stream never ended");
    (samples, rest)
}

/// What the fake says for `pieces` (one generation each), at `rate`.
fn expected(fake: &FakeElevenLabsTts, pieces: &[&str], rate: u32) -> Vec<i16> {
    pieces
        .iter()
        .flat_map(|p| fake.render(p, rate).unwrap())
        .collect()
}

fn no_errors(stats: &FakeTtsStats) {
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn a_two_piece_answer_lasts_as_long_as_its_text_and_ends_done() {
    let fake = fake(quick()).await;
    let tts = client(ElevenLabsTtsConfig {
        voice_settings: Some(VoiceSettings {
            stability: Some(0.5),
            speed: Some(1.1),
            ..Default::default()
        }),
        chunk_length_schedule: vec![50, 120],
        ..client_cfg(&fake, "pcm_16000")
    });
    assert_eq!(tts.sample_rate(), 16_000);
    let (samples, rest) = speak(&tts, &PIECES).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    // The default voice: 60 ms per character of each piece.
    let chars: usize = PIECES.iter().map(|p| p.chars().count()).sum();
    assert_eq!(samples.len(), chars * 60 * 16);
    assert_eq!(samples, expected(&fake, &PIECES, 16_000));
    let stats = stats_until(&fake, |s| s.sessions_active == 0).await;
    no_errors(&stats);
    assert_eq!(
        (stats.bos, stats.eos, stats.flushes, stats.texts),
        (1, 1, 2, 2)
    );
    assert_eq!((stats.finals, stats.closed_by_client), (1, 0));
    assert_eq!(
        stats.bytes_sent,
        chars as u64 * 60 * 32,
        "pcm_16000 is 32 bytes/ms"
    );
    let s = &stats.per_session[0];
    assert_eq!(
        s.texts,
        ["Olá, tudo bem? ", "Posso ajudar com mais alguma coisa? "]
    );
    assert_eq!(
        (s.model_id.as_str(), s.output_format.as_str()),
        ("eleven_flash_v2_5", "pcm_16000")
    );
    assert_eq!(
        (s.language_code.as_deref(), s.inactivity_timeout_s),
        (Some("pt"), 20)
    );
    assert!(s.key_in_header && s.bos && s.eos && s.final_sent);
    assert_eq!(
        s.voice_settings,
        Some(json!({"stability": 0.5, "speed": 1.1}))
    );
    assert_eq!(s.chunk_length_schedule, vec![50, 120]);
}

#[tokio::test]
async fn pcm_cut_mid_sample_is_carried_not_dropped() {
    let fake = fake(FakeElevenLabsTtsConfig {
        odd_chunks: true,
        chunk_ms: 40,
        ..quick()
    })
    .await;
    let tts = client(client_cfg(&fake, "pcm_24000"));
    assert_eq!(tts.sample_rate(), 24_000);
    let (samples, rest) = speak(&tts, &PIECES).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    assert_eq!(samples, expected(&fake, &PIECES, 24_000));
}

#[tokio::test]
async fn ulaw_8000_is_decoded_to_pcm16_at_8_khz() {
    let fake = fake(quick()).await;
    let tts = client(client_cfg(&fake, "ulaw_8000"));
    assert_eq!(tts.sample_rate(), 8_000);
    let (samples, rest) = speak(&tts, &PIECES).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    let spoken = expected(&fake, &PIECES, 8_000);
    assert_eq!(samples, g711::decode_ulaw(&g711::encode_ulaw(&spoken)));
    let stats = fake.stats();
    assert_eq!(stats.bytes_sent, spoken.len() as u64, "μ-law is 8 bytes/ms");
}

#[tokio::test]
async fn espeak_voice_speaks_the_text() {
    let fake = fake(FakeElevenLabsTtsConfig {
        voice: Voice::Espeak,
        ..quick()
    })
    .await;
    let tts = client(client_cfg(&fake, "pcm_16000"));
    let (samples, rest) = speak(&tts, &PIECES).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    let spoken = expected(&fake, &PIECES, 16_000);
    assert_eq!(samples, spoken);
    let secs = samples.len() as f64 / 16_000.0;
    assert!((1.5..8.0).contains(&secs), "{secs} s of speech");
}

#[tokio::test]
async fn a_wrong_key_or_refused_upgrade_fails_the_open() {
    let fake = fake(quick()).await;
    let wrong = client(ElevenLabsTtsConfig {
        api_key: Secret::new("xi-wrong-key"),
        ..client_cfg(&fake, "pcm_16000")
    });
    let err = wrong.open().await.err().unwrap();
    assert!(
        matches!(&err, ProviderError::Refused(m) if m.contains("401") && !m.contains("xi-wrong-key")),
        "{err}"
    );
    let unknown_voice = client(ElevenLabsTtsConfig {
        voice_id: "nobody".into(),
        ..client_cfg(&fake, "pcm_16000")
    });
    let err = unknown_voice.open().await.err().unwrap();
    assert!(
        matches!(&err, ProviderError::Refused(m) if m.contains("404")),
        "{err}"
    );
    fake.set_fault_sequence(vec![Fault::RefuseUpgrade(503), Fault::RefuseUpgrade(429)]);
    let tts = client(client_cfg(&fake, "pcm_16000"));
    for _ in 0..2 {
        let err = tts.open().await.err().unwrap();
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
    }
    assert_eq!(fake.stats().refused_upgrades, 4);
    assert_eq!(fake.stats().sessions, 0);
}

#[tokio::test]
async fn a_drop_mid_stream_is_an_error_after_the_audio_so_far() {
    let fake = fake(FakeElevenLabsTtsConfig {
        fault: Fault::DropAfterChunks(2),
        ..quick()
    })
    .await;
    let (samples, rest) = speak(&client(client_cfg(&fake, "pcm_16000")), &PIECES).await;
    assert!(
        matches!(
            rest.as_slice(),
            [TtsEvent::Error(ProviderError::Unavailable(_))]
        ),
        "{rest:?}"
    );
    assert_eq!(samples.len(), 2 * 1600, "two 100 ms messages came first");
}

#[tokio::test]
async fn an_error_message_mid_stream_is_an_error() {
    let fake = fake(FakeElevenLabsTtsConfig {
        fault: Fault::ErrorAfterChunks(1),
        ..quick()
    })
    .await;
    let (samples, rest) = speak(&client(client_cfg(&fake, "pcm_16000")), &PIECES).await;
    let [TtsEvent::Error(ProviderError::Unavailable(m))] = rest.as_slice() else {
        panic!("{rest:?}");
    };
    assert!(m.contains("something went wrong"), "{m}");
    assert_eq!(samples.len(), 1600);
}

#[tokio::test]
async fn dropping_the_audio_closes_the_stream_at_once() {
    let fake = fake(FakeElevenLabsTtsConfig {
        realtime_factor: 1.0,
        ..quick()
    })
    .await;
    let stream = client(client_cfg(&fake, "pcm_16000")).open().await.unwrap();
    stream.text.send(PIECES[1].into()).await.unwrap();
    let mut audio = stream.audio;
    let first = tokio::time::timeout(WAIT, audio.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio(_))), "{first:?}");
    drop(audio);
    let stats = stats_until(&fake, |s| s.closed_by_client == 1 && s.sessions_active == 0).await;
    // Real time: 2.1 s of audio, of which only the first messages went out.
    assert!(stats.audio_ms_sent < 1000, "{stats:?}");
    assert!(!stats.per_session[0].final_sent);
    no_errors(&stats);
}

#[tokio::test]
async fn no_first_audio_in_time_is_a_timeout() {
    let fake = fake(FakeElevenLabsTtsConfig {
        first_byte_ms: 3000,
        ..quick()
    })
    .await;
    let tts = client(ElevenLabsTtsConfig {
        first_audio_timeout_ms: 200,
        ..client_cfg(&fake, "pcm_16000")
    });
    let stream = tts.open().await.unwrap();
    stream.text.send(PIECES[0].into()).await.unwrap();
    // The text stays open: the timeout counts from the first piece.
    let (samples, rest) = collect(stream.audio).await;
    assert_eq!(rest, vec![TtsEvent::Error(ProviderError::Timeout)]);
    assert!(samples.is_empty());
    stats_until(&fake, |s| s.closed_by_client == 1).await;
}

#[tokio::test]
async fn a_service_that_hangs_after_the_text_ended_times_out() {
    let fake = fake(FakeElevenLabsTtsConfig {
        fault: Fault::HangAfterChunks(1),
        ..quick()
    })
    .await;
    let tts = client(ElevenLabsTtsConfig {
        first_audio_timeout_ms: 300,
        ..client_cfg(&fake, "pcm_16000")
    });
    let (samples, rest) = speak(&tts, &PIECES).await;
    assert_eq!(rest, vec![TtsEvent::Error(ProviderError::Timeout)]);
    assert_eq!(samples.len(), 1600);
}

#[tokio::test]
async fn keep_alives_hold_a_slow_answer_open() {
    let fake = fake(quick()).await;
    let tts = client(ElevenLabsTtsConfig {
        inactivity_timeout_s: 1,
        ..client_cfg(&fake, "pcm_16000")
    });
    let stream = tts.open().await.unwrap();
    stream.text.send(PIECES[0].into()).await.unwrap();
    // A slow LLM: the next piece comes after more than the inactivity timeout.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    stream.text.send(PIECES[1].into()).await.unwrap();
    drop(stream.text);
    let (samples, rest) = collect(stream.audio).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    assert_eq!(samples, expected(&fake, &PIECES, 16_000));
    let stats = stats_until(&fake, |s| s.sessions_active == 0).await;
    assert!(stats.keep_alives >= 2, "{stats:?}");
    assert_eq!(stats.inactivity_closes, 0);
    no_errors(&stats);
}

#[tokio::test]
async fn an_answer_without_text_needs_no_audio() {
    let fake = fake(quick()).await;
    let (samples, rest) = speak(&client(client_cfg(&fake, "pcm_16000")), &["", " "]).await;
    assert!(samples.is_empty());
    assert_eq!(rest, vec![TtsEvent::Done]);
    let stats = stats_until(&fake, |s| s.sessions_active == 0).await;
    assert_eq!((stats.texts, stats.generations), (0, 0));
    no_errors(&stats);
}

#[tokio::test]
async fn a_hundred_concurrent_answers() {
    let fake = fake(quick()).await;
    let tts = std::sync::Arc::new(client(client_cfg(&fake, "pcm_16000")));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let tts = tts.clone();
            tokio::spawn(async move { speak(&tts, &["Certo."]).await })
        })
        .collect();
    for call in calls {
        let (samples, rest) = call.await.unwrap();
        assert_eq!(rest, vec![TtsEvent::Done]);
        assert_eq!(samples.len(), 6 * 60 * 16);
    }
    let stats = stats_until(&fake, |s| s.sessions_active == 0).await;
    assert_eq!((stats.sessions, stats.finals), (100, 100));
    no_errors(&stats);
}

#[tokio::test]
async fn the_first_byte_delay_is_honoured() {
    let fake = fake(FakeElevenLabsTtsConfig {
        first_byte_ms: 150,
        ..quick()
    })
    .await;
    let stream = client(client_cfg(&fake, "pcm_16000")).open().await.unwrap();
    let sent = tokio::time::Instant::now();
    stream.text.send(PIECES[0].into()).await.unwrap();
    let mut audio = stream.audio;
    let first = tokio::time::timeout(WAIT, audio.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio(_))), "{first:?}");
    assert!(sent.elapsed() >= Duration::from_millis(150));
}

// ---- strictness, with a raw client ----

const BASE_QUERY: &str = "model_id=eleven_flash_v2_5&output_format=pcm_16000";

async fn raw(fake: &FakeElevenLabsTts, query: &str, header_key: Option<&str>) -> RawWs {
    let url = format!("{}/{}/stream-input?{query}", fake.url(), fake.voice_id());
    let mut request = url.into_client_request().unwrap();
    if let Some(k) = header_key {
        request
            .headers_mut()
            .insert("xi-api-key", k.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The error message and close code that end a rejected stream.
async fn rejection(ws: &mut RawWs) -> (Value, CloseCode) {
    let error = next_json(ws).await;
    let close = next_frame(ws).await;
    let Message::Close(Some(frame)) = close else {
        panic!("expected a close, got {close:?}");
    };
    (error, frame.code)
}

/// Audio messages until `isFinal`, then the close code.
async fn until_final(ws: &mut RawWs) -> (usize, CloseCode) {
    let mut audio = 0;
    loop {
        match next_frame(ws).await {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["isFinal"] == json!(true) {
                    break;
                }
                assert!(v["audio"].is_string(), "{v}");
                audio += 1;
            }
            other => panic!("expected audio or isFinal, got {other:?}"),
        }
    }
    let Message::Close(Some(frame)) = next_frame(ws).await else {
        panic!("no close after isFinal");
    };
    (audio, frame.code)
}

#[tokio::test]
async fn the_key_may_come_in_the_first_message_in_any_documented_spelling() {
    let fake = fake(quick()).await;
    let key = fake.api_key();
    for field in [
        json!({"xi-api-key": key}),
        json!({"xi_api_key": key}),
        json!({"authorization": format!("Bearer {key}")}),
    ] {
        let mut ws = raw(&fake, BASE_QUERY, None).await;
        let mut bos = json!({"text": " "});
        bos.as_object_mut()
            .unwrap()
            .extend(field.as_object().unwrap().clone());
        send(&mut ws, bos).await;
        send(&mut ws, json!({"text": "Bom dia. ", "flush": true})).await;
        send(&mut ws, json!({"text": ""})).await;
        let (audio, code) = until_final(&mut ws).await;
        assert!(audio >= 1);
        assert_eq!(code, CloseCode::Normal);
    }
    let stats = stats_until(&fake, |s| s.sessions_active == 0).await;
    no_errors(&stats);
    assert!(stats.per_session.iter().all(|s| !s.key_in_header));
}

#[tokio::test]
async fn a_missing_key_or_a_bad_first_message_is_rejected() {
    let fake = fake(quick()).await;
    let mut ws = raw(&fake, BASE_QUERY, None).await;
    send(&mut ws, json!({"text": " "})).await;
    let (error, code) = rejection(&mut ws).await;
    assert_eq!(
        (error["error"].as_str(), code),
        (Some("invalid_api_key"), CloseCode::Policy)
    );
    let key = fake.api_key();
    let bad_firsts = [
        json!({"text": "Olá "}),
        json!({"text": " ", "voice_settings": {"stability": 3}}),
        json!({"text": " ", "generation_config": {"chunk_length_schedule": [10]}}),
        json!({"flush": true}),
    ];
    for first in bad_firsts {
        let mut ws = raw(&fake, BASE_QUERY, Some(&key)).await;
        send(&mut ws, first.clone()).await;
        let (error, code) = rejection(&mut ws).await;
        assert!(error["message"].is_string(), "{first}: {error}");
        assert_eq!(code, CloseCode::Policy, "{first}");
    }
    let mut ws = raw(&fake, BASE_QUERY, Some(&key)).await;
    send(&mut ws, json!({"text": " "})).await;
    ws.send(Message::text("not json")).await.unwrap();
    let (error, _) = rejection(&mut ws).await;
    assert_eq!(error["error"], "invalid_input_message");
    let mut ws = raw(&fake, BASE_QUERY, Some(&key)).await;
    send(&mut ws, json!({"text": " "})).await;
    send(&mut ws, json!({"text": "Olá ", "flush": "yes"})).await;
    let (error, _) = rejection(&mut ws).await;
    assert_eq!(error["error"], "invalid_input_message");
    assert_eq!(fake.stats().protocol_errors.len(), 7);
}

#[tokio::test]
async fn the_schedule_starts_generation_before_any_flush() {
    let fake = fake(quick()).await;
    let mut ws = raw(&fake, BASE_QUERY, Some(&fake.api_key())).await;
    let bos = json!({"text": " ", "generation_config": {"chunk_length_schedule": [50]}});
    send(&mut ws, bos).await;
    send(
        &mut ws,
        json!({"text": "Esta frase tem mais de cinquenta caracteres, sem flush. "}),
    )
    .await;
    // Audio comes although the text is still open.
    let first = next_json(&mut ws).await;
    assert!(first["audio"].is_string(), "{first}");
    assert_eq!(
        first["alignment"]["charStartTimesMs"][0], 0,
        "relative to the chunk"
    );
    send(&mut ws, json!({"text": "Fim. "})).await;
    send(&mut ws, json!({"text": ""})).await;
    let (_, code) = until_final(&mut ws).await;
    assert_eq!(code, CloseCode::Normal);
    let stats = stats_until(&fake, |s| s.sessions_active == 0).await;
    assert_eq!((stats.generations, stats.flushes), (2, 0));
    no_errors(&stats);
}

#[tokio::test]
async fn an_idle_stream_is_closed_for_inactivity() {
    let fake = fake(quick()).await;
    let query = format!("{BASE_QUERY}&inactivity_timeout=1");
    let mut ws = raw(&fake, &query, Some(&fake.api_key())).await;
    send(&mut ws, json!({"text": " "})).await;
    let Message::Close(Some(frame)) = next_frame(&mut ws).await else {
        panic!("expected a close");
    };
    assert_eq!(frame.code, CloseCode::Policy);
    assert!(frame.reason.contains("Have not received a new text input"));
    stats_until(&fake, |s| s.inactivity_closes == 1).await;
}

#[tokio::test]
async fn an_mp3_format_or_unknown_model_is_refused() {
    let fake = fake(quick()).await;
    for query in [
        "model_id=eleven_flash_v2_5",
        "model_id=nope&output_format=pcm_16000",
    ] {
        let url = format!("{}/{}/stream-input?{query}", fake.url(), fake.voice_id());
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("xi-api-key", fake.api_key().parse().unwrap());
        let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
            panic!("{err}");
        };
        assert_eq!(response.status(), 400, "{query}");
    }
}
