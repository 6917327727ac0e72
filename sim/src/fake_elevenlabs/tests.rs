//! The real client (`voice_core::providers::elevenlabs_agent`) against the fake, over
//! real sockets, plus strictness checks with a raw WebSocket client.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use voice_core::agent::{
    Agent, AgentError, AgentEvent, AgentInput, AgentPersona, AgentSession, CallInfo, Role,
};
use voice_core::config::Secret;
use voice_core::providers::elevenlabs_agent::{ElevenLabsAgent, ElevenLabsAgentConfig};

use super::*;
use crate::fake_common::test_support::{
    assert_ends, assert_refused, audio_items, audio_samples, caller_turn, done, expect_error,
    is_done, next_json, position, samples_of, send, send_audio, spoken, stats_until, summary,
    until, until_tool_call, RawWs, ToolCall, CALLER_TEXT, LONG_REPLY, WAIT,
};

async fn fake(cfg: FakeElevenLabsConfig) -> FakeElevenLabs {
    FakeElevenLabs::start(cfg).await.unwrap()
}

/// Fake settings without a first message (most tests start with the caller).
fn quiet() -> FakeElevenLabsConfig {
    FakeElevenLabsConfig {
        first_message: String::new(),
        ..Default::default()
    }
}

fn client_cfg(fake: &FakeElevenLabs) -> ElevenLabsAgentConfig {
    ElevenLabsAgentConfig {
        url: fake.ws_url(),
        api_base: fake.api_base(),
        agent_id: FakeElevenLabsConfig::default().agent_id,
        api_key: Secret::new(FakeElevenLabsConfig::default().api_key),
        ..Default::default()
    }
}

fn persona() -> AgentPersona {
    crate::fake_common::test_support::persona("voice_pt_br_1")
}

fn call() -> CallInfo {
    CallInfo {
        call_id: "call-1".into(),
        caller: Some("+5511999990000".into()),
        callee: Some("1000".into()),
        call_rate: 8_000,
        ..Default::default()
    }
}

async fn connect(cfg: ElevenLabsAgentConfig) -> Result<AgentSession, AgentError> {
    ElevenLabsAgent::new(cfg, persona()).connect(call()).await
}

fn completed() -> AgentEvent {
    done("completed")
}

fn no_errors(stats: &FakeStats) {
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

/// One caller turn and the answer to it (ends at its `ResponseDone`).
async fn answered_turn(s: &mut AgentSession) -> Vec<AgentEvent> {
    let rate = s.input_rate;
    send_audio(&s.input, &caller_turn(rate), rate).await;
    until(&mut s.events, is_done).await
}

/// The answer of a turn: transcripts, then audio of one item, then its end.
fn assert_answer(events: &[AgentEvent], reply_samples: usize) -> String {
    let stopped = position(events, |e| *e == AgentEvent::SpeechStopped);
    let caller = position(events, |e| {
        *e == AgentEvent::Transcript {
            role: Role::Caller,
            text: "(caller speech)".into(),
        }
    });
    let agent = position(events, |e| {
        *e == AgentEvent::Transcript {
            role: Role::Agent,
            text: FakeElevenLabsConfig::default().reply_text,
        }
    });
    let first_audio = position(events, |e| matches!(e, AgentEvent::Audio { .. }));
    let audio_done = position(events, |e| matches!(e, AgentEvent::AudioDone { .. }));
    assert!(
        stopped < caller && caller < agent && agent < first_audio && first_audio < audio_done,
        "{}",
        summary(events)
    );
    let items = audio_items(events);
    assert_eq!(items.len(), 1, "one answer, one item: {}", summary(events));
    assert_eq!(
        events[audio_done],
        AgentEvent::AudioDone {
            item_id: items[0].clone()
        }
    );
    assert_eq!(
        audio_samples(events),
        reply_samples,
        "all reply audio arrives"
    );
    assert_eq!(events.last(), Some(&completed()));
    items[0].clone()
}

#[tokio::test]
async fn greeting_and_a_full_turn_through_a_signed_url() {
    let fake = fake(FakeElevenLabsConfig::default()).await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    assert_eq!((s.input_rate, s.output_rate), (16_000, 16_000));

    let greeting = FakeElevenLabsConfig::default().first_message;
    let events = until(&mut s.events, is_done).await;
    assert_eq!(
        events.first(),
        Some(&AgentEvent::Transcript {
            role: Role::Agent,
            text: greeting.clone()
        })
    );
    assert_eq!(audio_samples(&events), samples_of(&greeting, 16_000));
    assert_eq!(events.last(), Some(&completed()));
    let greeting_items = audio_items(&events);
    assert_eq!(greeting_items.len(), 1);
    // Let the greeting's real-time playback end, or the caller would barge in on it.
    let greeting_ms = samples_of(&greeting, 16_000) as u64 / 16;
    tokio::time::sleep(Duration::from_millis(greeting_ms)).await;

    let events = answered_turn(&mut s).await;
    let item = assert_answer(
        &events,
        samples_of(&FakeElevenLabsConfig::default().reply_text, 16_000),
    );
    assert_ne!(item, greeting_items[0], "a new answer is a new item");

    let stats = fake.stats();
    no_errors(&stats);
    assert_eq!((stats.signed_urls, stats.sessions), (1, 1));
    assert_eq!((stats.caller_turns, stats.answers), (1, 2));
    assert_eq!(stats.init_not_first, 0);
    let caller_ms = caller_turn(16_000).len() as u64 / 16;
    // The client holds back less than one 100 ms chunk.
    assert!(
        caller_ms - stats.audio_ms_received < 100,
        "{} of {caller_ms} ms",
        stats.audio_ms_received
    );
    assert_eq!(
        stats.init_overrides,
        Some(
            json!({"agent": {"prompt": {"prompt": persona().instructions}, "language": "pt"},
                    "tts": {"voice_id": "voice_pt_br_1"}})
        )
    );
    assert_eq!(
        stats.dynamic_variables,
        Some(json!({"caller_number": "+5511999990000", "callee_number": "1000"}))
    );
}

#[tokio::test]
async fn public_agent_needs_no_key() {
    if std::env::var("ELEVENLABS_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        eprintln!("skipped: ELEVENLABS_API_KEY makes every agent private");
        return;
    }
    let fake = fake(FakeElevenLabsConfig {
        api_key: String::new(),
        ..quiet()
    })
    .await;
    let cfg = ElevenLabsAgentConfig {
        api_key: Secret::default(),
        ..client_cfg(&fake)
    };
    let mut s = connect(cfg).await.unwrap();
    let events = answered_turn(&mut s).await;
    assert_answer(
        &events,
        samples_of(&FakeElevenLabsConfig::default().reply_text, 16_000),
    );
    let stats = fake.stats();
    no_errors(&stats);
    assert_eq!(
        (stats.signed_urls, stats.sessions, stats.answers),
        (0, 1, 1)
    );
}

#[tokio::test]
async fn history_silences_the_greeting_and_reaches_the_agent() {
    let history = vec![
        (Role::Agent, "Olá! Em que posso ajudar?".to_string()),
        (Role::Caller, "Quero marcar uma consulta.".to_string()),
    ];
    let fake = fake(FakeElevenLabsConfig::default()).await;
    let reconnect = CallInfo {
        history: history.clone(),
        ..call()
    };
    let mut s = ElevenLabsAgent::new(client_cfg(&fake), persona())
        .connect(reconnect.clone())
        .await
        .unwrap();
    let events = answered_turn(&mut s).await;
    let caller = position(&events, |e| {
        matches!(
            e,
            AgentEvent::Transcript {
                role: Role::Caller,
                ..
            }
        )
    });
    let first_audio = position(&events, |e| matches!(e, AgentEvent::Audio { .. }));
    assert!(caller < first_audio, "no greeting: {}", summary(&events));
    let stats = fake.stats();
    no_errors(&stats);
    assert_eq!(stats.answers, 1);
    // The caller spoke last: their words are asked again, so the agent answers them.
    assert_eq!(stats.user_message_texts, ["Quero marcar uma consulta."]);
    let agent = &stats.init_overrides.as_ref().unwrap()["agent"];
    assert_eq!(agent["first_message"], "");
    let prompt = agent["prompt"]["prompt"].as_str().unwrap();
    assert!(prompt.starts_with(&persona().instructions), "{prompt}");
    assert!(
        prompt.contains("Caller: Quero marcar uma consulta."),
        "{prompt}"
    );
    assert!(
        prompt.contains("Agent: Olá! Em que posso ajudar?"),
        "{prompt}"
    );

    // Without overrides, the history goes as one contextual_update.
    let fake = FakeElevenLabs::start(quiet()).await.unwrap();
    let cfg = ElevenLabsAgentConfig {
        override_prompt: false,
        ..client_cfg(&fake)
    };
    let _s = ElevenLabsAgent::new(cfg, persona())
        .connect(reconnect)
        .await
        .unwrap();
    let stats = stats_until(&fake, |s| s.contextual_updates == 1).await;
    no_errors(&stats);
    assert_eq!(stats.init_overrides, None);
    assert!(stats.contextual_update_texts[0].contains("Caller: Quero marcar uma consulta."));
}

#[tokio::test]
async fn pings_are_answered_while_the_call_is_not_reading() {
    // A long first message in 10 ms chunks: more events than the channel holds.
    let fake = fake(FakeElevenLabsConfig {
        first_message: LONG_REPLY.into(),
        chunk_ms: 10,
        ping_interval_ms: 200,
        pong_timeout_ms: 500,
        ..Default::default()
    })
    .await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    let stats = stats_until(&fake, |s| s.pongs_ok >= 4).await;
    assert_eq!(stats.missing_pongs, 0);
    no_errors(&stats);
    // Nothing was lost while the call was away.
    let events = until(&mut s.events, is_done).await;
    assert_eq!(audio_samples(&events), samples_of(LONG_REPLY, 16_000));
    assert!(events.len() > 300, "{} events", events.len());
    assert_eq!(events.last(), Some(&completed()));
}

#[tokio::test]
async fn interruption_drops_the_late_chunk_and_cancels() {
    // A long answer: the barge-in lands while it still streams.
    let fake = fake(FakeElevenLabsConfig {
        reply_text: LONG_REPLY.into(),
        ..quiet()
    })
    .await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    send_audio(&s.input, &caller_turn(16_000), 16_000).await;
    let events = until(&mut s.events, |e| matches!(e, AgentEvent::Audio { .. })).await;
    let Some(AgentEvent::Audio { item_id, .. }) = events.last().cloned() else {
        panic!("no audio");
    };
    // The caller speaks over the answer, then stops: a new turn.
    let speech = spoken(CALLER_TEXT, 16_000);
    let mut barge = speech[..16 * 600].to_vec();
    barge.extend(std::iter::repeat_n(0, 16 * 1500));
    send_audio(&s.input, &barge, 16_000).await;
    let events = until(&mut s.events, |e| *e == AgentEvent::SpeechStarted).await;
    assert!(!events.iter().any(is_done), "finished before the barge-in");
    s.input
        .send(AgentInput::Interrupted {
            item_id: item_id.clone(),
            heard_ms: 200,
        })
        .await
        .unwrap();
    let cancelled = until(&mut s.events, is_done).await;
    assert_eq!(
        cancelled,
        vec![
            AgentEvent::AudioDone {
                item_id: item_id.clone()
            },
            done("cancelled")
        ]
    );
    // The next turn: no audio (the late chunk) before its transcript, then a new item.
    let events = until(&mut s.events, |e| *e == completed()).await;
    let caller = position(&events, |e| {
        matches!(
            e,
            AgentEvent::Transcript {
                role: Role::Caller,
                ..
            }
        )
    });
    assert!(
        !events[..caller]
            .iter()
            .any(|e| matches!(e, AgentEvent::Audio { .. })),
        "stale audio got through: {}",
        summary(&events)
    );
    let items = audio_items(&events);
    assert_eq!(items.len(), 1);
    assert_ne!(items[0], item_id);
    let stats = fake.stats();
    no_errors(&stats);
    assert_eq!((stats.interruptions, stats.late_chunks), (1, 1));
    assert_eq!(stats.caller_turns, 2);
    assert_eq!(
        stats.user_activities, 1,
        "Interrupted becomes user_activity"
    );
}

#[tokio::test]
async fn tool_call_round_trip() {
    let params = r#"{"phone":"+5511999990000"}"#;
    let fake = fake(FakeElevenLabsConfig {
        tool_call: Some(("lookup_customer".into(), params.into())),
        ..quiet()
    })
    .await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    send_audio(&s.input, &caller_turn(16_000), 16_000).await;
    let (
        events,
        ToolCall {
            call_id,
            name,
            arguments,
        },
    ) = until_tool_call(&mut s.events).await;
    assert_eq!(name, "lookup_customer");
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        serde_json::from_str::<Value>(params).unwrap()
    );
    assert_eq!(audio_samples(&events), 0, "no answer before the result");
    s.input
        .send(AgentInput::ToolResult {
            call_id: call_id.clone(),
            output: r#"{"name":"Ana"}"#.into(),
        })
        .await
        .unwrap();
    let events = until(&mut s.events, is_done).await;
    assert_eq!(
        audio_samples(&events),
        samples_of(&FakeElevenLabsConfig::default().reply_text, 16_000)
    );
    assert_eq!(events.last(), Some(&completed()));
    let stats = fake.stats();
    no_errors(&stats);
    assert_eq!((stats.tool_calls, stats.tool_results), (1, 1));
    assert_eq!(
        stats.tool_result_messages[0],
        json!({"type": "client_tool_result", "tool_call_id": call_id,
               "result": "{\"name\":\"Ana\"}", "is_error": false})
    );
}

#[tokio::test]
async fn ulaw_8000_both_ways() {
    let fake = fake(FakeElevenLabsConfig {
        input_format: AudioFormat::Ulaw8k,
        output_format: AudioFormat::Ulaw8k,
        ..quiet()
    })
    .await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    assert_eq!((s.input_rate, s.output_rate), (8_000, 8_000));
    let events = answered_turn(&mut s).await;
    assert_answer(
        &events,
        samples_of(&FakeElevenLabsConfig::default().reply_text, 8_000),
    );
    let stats = fake.stats();
    no_errors(&stats);
    // μ-law is 8 bytes/ms: PCM16 sent by mistake would count double.
    let caller_ms = caller_turn(8_000).len() as u64 / 8;
    assert!(
        caller_ms - stats.audio_ms_received < 100,
        "{} of {caller_ms} ms",
        stats.audio_ms_received
    );
}

#[tokio::test]
async fn dtmf_and_text_are_user_messages() {
    let fake = fake(quiet()).await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    s.input.send(AgentInput::Dtmf('5')).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert_eq!(events.last(), Some(&completed()));
    s.input
        .send(AgentInput::Text("quero falar com um atendente".into()))
        .await
        .unwrap();
    s.input.send(AgentInput::EndOfTurn).await.unwrap();
    // The text may cut the first answer's playback short (an interruption, cancelled).
    let events = until(&mut s.events, |e| *e == completed()).await;
    assert!(audio_samples(&events) > 0);
    let stats = fake.stats();
    no_errors(&stats);
    assert_eq!(
        stats.user_message_texts,
        vec!["[DTMF 5]", "quero falar com um atendente"]
    );
    assert_eq!(stats.answers, 2);
}

#[tokio::test]
async fn wrong_key_and_refused_signed_url_are_refusals() {
    let fake = fake(quiet()).await;
    let cfg = ElevenLabsAgentConfig {
        api_key: Secret::new("xi-wrong-key"),
        ..client_cfg(&fake)
    };
    let err = connect(cfg).await.err().unwrap();
    assert_refused(&err, "401");
    assert!(!err.to_string().contains("xi-wrong-key"));
    fake.set_fault(Fault::RefuseSignedUrl(429));
    let err = connect(client_cfg(&fake)).await.err().unwrap();
    assert_refused(&err, "429");
    assert_eq!(fake.stats().sessions, 0);
}

#[tokio::test]
async fn refused_upgrade_is_a_refusal() {
    let fake = fake(quiet()).await;
    fake.set_fault(Fault::RefuseUpgrade(503));
    let err = connect(client_cfg(&fake)).await.err().unwrap();
    assert_refused(&err, "503");
    let stats = fake.stats();
    assert_eq!((stats.signed_urls, stats.sessions), (1, 0));
}

#[tokio::test]
async fn missing_metadata_times_out() {
    let fake = fake(FakeElevenLabsConfig {
        fault: Fault::NoInitiationMetadata,
        ..quiet()
    })
    .await;
    let cfg = ElevenLabsAgentConfig {
        connect_timeout_ms: 600,
        ..client_cfg(&fake)
    };
    let err = connect(cfg).await.err().unwrap();
    assert!(matches!(err, AgentError::Timeout), "{err}");
    // The init did arrive; the fake just never answered it.
    let stats = stats_until(&fake, |s| s.init_overrides.is_some()).await;
    assert_eq!(stats.sessions, 1);
}

#[tokio::test]
async fn server_close_is_fatal_then_the_channel_ends() {
    let fake = fake(FakeElevenLabsConfig {
        fault: Fault::CloseAfterMs(400),
        ..quiet()
    })
    .await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    let message = expect_error(&mut s.events, true).await;
    assert!(message.contains("1011"), "{message}");
    assert_ends(&mut s.events).await;
}

#[tokio::test]
async fn garbage_frame_is_not_fatal() {
    let fake = fake(FakeElevenLabsConfig {
        fault: Fault::GarbageFrame,
        ..quiet()
    })
    .await;
    let mut s = connect(client_cfg(&fake)).await.unwrap();
    expect_error(&mut s.events, false).await;
    let events = answered_turn(&mut s).await;
    assert_answer(
        &events,
        samples_of(&FakeElevenLabsConfig::default().reply_text, 16_000),
    );
    no_errors(&fake.stats());
}

#[tokio::test]
async fn local_turns_are_refused_before_connecting() {
    let fake = fake(quiet()).await;
    let local = AgentPersona {
        local_turns: true,
        ..persona()
    };
    let err = ElevenLabsAgent::new(client_cfg(&fake), local)
        .connect(call())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, AgentError::Config(m) if m.contains("local_turns")),
        "{err}"
    );
    let stats = fake.stats();
    assert_eq!((stats.signed_urls, stats.sessions), (0, 0));
}

#[tokio::test]
async fn dropping_the_input_closes_the_conversation() {
    let fake = fake(quiet()).await;
    let s = connect(client_cfg(&fake)).await.unwrap();
    stats_until(&fake, |s| s.sessions_active == 1).await;
    let AgentSession {
        input, mut events, ..
    } = s;
    drop(input);
    assert_ends(&mut events).await;
    stats_until(&fake, |s| s.sessions_active == 0).await;
    no_errors(&fake.stats());
}

// ---- Strictness, with a raw client ----

/// `GET` over a fresh TCP connection: (status, body).
async fn http_get(fake: &FakeElevenLabs, path: &str, key: &str) -> (u16, Value) {
    let mut tcp = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nxi-api-key: {key}\r\nConnection: close\r\n\r\n",
        fake.addr()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn raw(url: &str) -> Result<RawWs, u16> {
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn signed_urls_are_checked_and_single_use() {
    let fake = fake(quiet()).await;
    let agent = FakeElevenLabsConfig::default().agent_id;
    let key = FakeElevenLabsConfig::default().api_key;
    let path = format!("/v1/convai/conversation/get_signed_url?agent_id={agent}");
    let (status, body) = http_get(&fake, &path, "nope").await;
    assert_eq!(status, 401);
    assert!(body["detail"].is_object(), "{body}");
    let (status, _) = http_get(
        &fake,
        "/v1/convai/conversation/get_signed_url?agent_id=other",
        &key,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = http_get(&fake, &path, &key).await;
    assert_eq!(status, 200);
    let url = body["signed_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&fake.ws_url()) && url.contains("&token="),
        "{url}"
    );
    let ws = raw(&url).await.unwrap();
    drop(ws);
    assert_eq!(raw(&url).await.err(), Some(403), "a token is used once");
    let bare = format!("{}?agent_id={agent}", fake.ws_url());
    assert_eq!(
        raw(&bare).await.err(),
        Some(403),
        "a private agent needs a token"
    );
    let wrong = format!("{}?agent_id=someone_else", fake.ws_url());
    assert_eq!(raw(&wrong).await.err(), Some(404));
}

#[tokio::test]
async fn records_every_client_mistake() {
    let fake = fake(FakeElevenLabsConfig {
        api_key: String::new(),
        ping_interval_ms: 100,
        pong_timeout_ms: 200,
        ..quiet()
    })
    .await;
    let agent = FakeElevenLabsConfig::default().agent_id;
    let mut ws = raw(&format!("{}?agent_id={agent}", fake.ws_url()))
        .await
        .unwrap();
    // Audio before the init: accepted (as the real service does) but recorded.
    send(&mut ws, json!({"user_audio_chunk": "AAAAAA=="})).await;
    let meta = next_json(&mut ws).await;
    assert_eq!(meta["type"], "conversation_initiation_metadata");
    let event = &meta["conversation_initiation_metadata_event"];
    assert_eq!(event["user_input_audio_format"], "pcm_16000");
    assert_eq!(event["agent_output_audio_format"], "pcm_16000");
    for bad in [
        json!({"type": "conversation_initiation_client_data"}),
        json!({"type": "pong", "event_id": 999}),
        json!({"user_audio_chunk": "not base64!"}),
        json!({"user_audio_chunk": "AAAA"}),
        json!({"type": "user_audio_chunk", "user_audio_chunk": "AAAA"}),
        json!({"type": "client_tool_result", "tool_call_id": "tc_9", "result": "x", "is_error": false}),
        json!({"type": "session.update"}),
    ] {
        send(&mut ws, bad).await;
    }
    ws.send(Message::binary(vec![0u8; 4])).await.unwrap();
    // Never answers pings: the fake notices.
    let stats = stats_until(&fake, |s| {
        s.protocol_errors.len() >= 9 && s.missing_pongs >= 1
    })
    .await;
    assert_eq!(stats.init_not_first, 1);
    let errors = stats.protocol_errors.join("\n");
    for expected in [
        "after the conversation started",
        "no such ping",
        "not valid base64",
        "odd number of bytes",
        "bare-key frame",
        "no such tool call",
        "unknown client message type",
        "binary frame",
        "no pong for ping",
    ] {
        assert!(
            errors.contains(expected),
            "{expected:?} missing in\n{errors}"
        );
    }
}

#[tokio::test]
async fn a_pong_in_time_is_counted() {
    let fake = fake(FakeElevenLabsConfig {
        api_key: String::new(),
        ping_interval_ms: 100,
        ..quiet()
    })
    .await;
    let agent = FakeElevenLabsConfig::default().agent_id;
    let mut ws = raw(&format!("{}?agent_id={agent}", fake.ws_url()))
        .await
        .unwrap();
    send(
        &mut ws,
        json!({"type": "conversation_initiation_client_data"}),
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await["type"],
        "conversation_initiation_metadata"
    );
    let ping = next_json(&mut ws).await;
    assert_eq!(ping["type"], "ping");
    let id = ping["ping_event"]["event_id"].clone();
    send(&mut ws, json!({"type": "pong", "event_id": id})).await;
    let next = next_json(&mut ws).await;
    assert!(
        next["ping_event"]["event_id"].as_u64() > id.as_u64(),
        "ids increase"
    );
    let stats = stats_until(&fake, |s| s.pongs_ok == 1).await;
    no_errors(&stats);
    assert_eq!(stats.init_not_first, 0);
}
