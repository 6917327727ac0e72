//! The real client (`voice_core::providers::openai_realtime`) against the fake, over
//! real sockets, plus strictness checks with a raw WebSocket client.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use voice_core::agent::{
    Agent, AgentError, AgentEvent, AgentInput, AgentPersona, AgentSession, CallInfo, Role,
};
use voice_core::config::Secret;
use voice_core::providers::openai_realtime::{OpenAiRealtimeAgent, OpenAiRealtimeConfig, Protocol};

use super::*;
use crate::fake_common::test_support::{
    assert_ends, assert_refused, audio_samples, caller_turn, done, expect_error, is_done,
    lookup_customer, next_json, position, samples_of, send, send_audio, spoken, stats_until,
    summary, until, until_audio, RawWs, CALLER_TEXT, LONG_REPLY,
};

async fn fake(cfg: FakeOpenAiConfig) -> FakeOpenAi {
    FakeOpenAi::start(cfg).await.unwrap()
}

fn client_cfg(fake: &FakeOpenAi, protocol: Protocol) -> OpenAiRealtimeConfig {
    OpenAiRealtimeConfig {
        url: fake.url(),
        api_key: Secret::new(FakeOpenAiConfig::default().api_key),
        protocol,
        ..Default::default()
    }
}

fn persona() -> AgentPersona {
    AgentPersona {
        tools: vec![lookup_customer()],
        ..crate::fake_common::test_support::persona("marin")
    }
}

async fn connect(cfg: OpenAiRealtimeConfig, call_rate: u32) -> Result<AgentSession, AgentError> {
    let call = CallInfo {
        call_id: "call-1".into(),
        call_rate,
        ..Default::default()
    };
    OpenAiRealtimeAgent::new(cfg, persona()).connect(call).await
}

async fn full_audio_turn(protocol: Protocol) {
    let fake = fake(FakeOpenAiConfig::default()).await;
    let mut s = connect(client_cfg(&fake, protocol), 16_000).await.unwrap();
    assert_eq!((s.input_rate, s.output_rate), (24_000, 24_000));
    let caller = caller_turn(24_000);
    send_audio(&s.input, &caller, 24_000).await;
    let events = until(&mut s.events, is_done).await;

    let started = position(&events, |e| *e == AgentEvent::SpeechStarted);
    let stopped = position(&events, |e| *e == AgentEvent::SpeechStopped);
    let first_audio = position(&events, |e| matches!(e, AgentEvent::Audio { .. }));
    let audio_done = position(&events, |e| matches!(e, AgentEvent::AudioDone { .. }));
    assert!(started < stopped && stopped < first_audio && first_audio < audio_done);
    assert_eq!(
        audio_samples(&events),
        samples_of(&FakeOpenAiConfig::default().reply_text, 24_000),
        "all reply audio arrives"
    );
    assert!(events.contains(&AgentEvent::Transcript {
        role: Role::Caller,
        text: "(caller speech)".into()
    }));
    assert!(events.contains(&AgentEvent::Transcript {
        role: Role::Agent,
        text: FakeOpenAiConfig::default().reply_text
    }));
    assert_eq!(events.last(), Some(&done("completed")));
    let stats = fake.stats();
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    assert_eq!(
        stats.client_events.first().map(String::as_str),
        Some("session.update")
    );
    assert_eq!(stats.turns, 1);
    assert_eq!(stats.sessions_opened, 1);
    let caller_ms = (caller.len() / 24) as u64;
    assert!(
        stats.appended_ms.abs_diff(caller_ms) <= 20,
        "{} vs {caller_ms}",
        stats.appended_ms
    );
}

#[tokio::test]
async fn ga_full_audio_turn() {
    full_audio_turn(Protocol::Ga).await;
}

#[tokio::test]
async fn beta_full_audio_turn() {
    full_audio_turn(Protocol::Beta).await;
}

#[tokio::test]
async fn interruption_truncates_to_generated_audio() {
    // A long reply streamed in real time leaves plenty of time to barge in mid-response.
    let reply_ms = samples_of(LONG_REPLY, 24_000) / 24;
    let fake = fake(FakeOpenAiConfig {
        realtime_factor: 1.0,
        reply_text: LONG_REPLY.into(),
        ..Default::default()
    })
    .await;
    let mut s = connect(client_cfg(&fake, Protocol::Ga), 16_000)
        .await
        .unwrap();
    send_audio(&s.input, &caller_turn(24_000), 24_000).await;
    // Wait for ~300 ms of agent audio, then the caller speaks over it.
    let events = until_audio(&mut s.events, 24 * 300).await;
    let Some(AgentEvent::Audio { item_id, .. }) = events.last().cloned() else {
        panic!("no audio");
    };
    let speech = spoken(CALLER_TEXT, 24_000);
    send_audio(&s.input, &speech[..24 * 500], 24_000).await;
    let events = until(&mut s.events, |e| *e == AgentEvent::SpeechStarted).await;
    assert!(!events.iter().any(is_done), "finished before the barge-in");
    // The caller "heard" far more than was generated: the client must clamp.
    s.input
        .send(AgentInput::Interrupted {
            item_id: item_id.clone(),
            heard_ms: 60_000,
        })
        .await
        .unwrap();
    let events = until(&mut s.events, is_done).await;
    assert_eq!(events.last(), Some(&done("cancelled")));
    let stats = stats_until(&fake, |s| !s.truncates.is_empty()).await;
    let t = &stats.truncates[0];
    assert_eq!(t.item_id, item_id);
    // Bounded by bytes received and by wall time since the first delta (~200 ms here).
    assert!(t.audio_end_ms >= 100, "{t:?}");
    assert!(t.audio_end_ms <= t.generated_ms, "{t:?}");
    assert!(
        (t.generated_ms as usize) < reply_ms,
        "the response was cut short: {t:?}"
    );
    assert_eq!(stats.responses_cancelled, 1);
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn tool_call_round_trip() {
    let args = r#"{"phone":"+5511999990000"}"#;
    let fake = fake(FakeOpenAiConfig {
        tool_call: Some(("lookup_customer".into(), args.into())),
        ..Default::default()
    })
    .await;
    let mut s = connect(client_cfg(&fake, Protocol::Ga), 16_000)
        .await
        .unwrap();
    send_audio(&s.input, &caller_turn(24_000), 24_000).await;
    let events = until(&mut s.events, is_done).await;
    let call = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::ToolCall {
                call_id,
                name,
                arguments,
            } => Some((call_id.clone(), name.clone(), arguments.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no tool call in {}", summary(&events)));
    assert_eq!(
        (call.1.as_str(), call.2.as_str()),
        ("lookup_customer", args)
    );
    assert_eq!(audio_samples(&events), 0);
    s.input
        .send(AgentInput::ToolResult {
            call_id: call.0,
            output: r#"{"name":"Ana"}"#.into(),
        })
        .await
        .unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(
        audio_samples(&events) > 24_000,
        "answered with audio after the tool"
    );
    assert_eq!(events.last(), Some(&done("completed")));
    let stats = fake.stats();
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    let tail: Vec<&str> = stats
        .client_events
        .iter()
        .filter(|t| *t != "input_audio_buffer.append")
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "session.update",
            "conversation.item.create",
            "response.create"
        ]
    );
}

#[tokio::test]
async fn local_turns_commit_and_the_fake_measures_the_decision() {
    let fake = fake(FakeOpenAiConfig::default()).await;
    let persona = AgentPersona {
        local_turns: true,
        ..persona()
    };
    let call = CallInfo {
        call_id: "call-1".into(),
        call_rate: 16_000,
        ..Default::default()
    };
    let mut s = OpenAiRealtimeAgent::new(client_cfg(&fake, Protocol::Ga), persona)
        .connect(call)
        .await
        .unwrap();
    let mut audio = spoken(CALLER_TEXT, 24_000);
    // The call's own detector took 640 ms of silence to decide.
    audio.extend(std::iter::repeat_n(0, 24 * 640));
    send_audio(&s.input, &audio, 24_000).await;
    s.input.send(AgentInput::EndOfTurn).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(
        !events.contains(&AgentEvent::SpeechStarted),
        "no server VAD"
    );
    assert!(audio_samples(&events) > 0);
    assert_eq!(events.last(), Some(&done("completed")));
    let stats = fake.stats();
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    assert_eq!(
        (stats.client_turn_sessions, stats.server_turn_sessions),
        (1, 0)
    );
    assert_eq!((stats.client_commits, stats.turns), (1, 1));
    assert_eq!(stats.commit_trailing_silence_ms.len(), 1);
    assert!(
        stats.commit_trailing_silence_ms[0].abs_diff(640) <= 2,
        "{:?}",
        stats.commit_trailing_silence_ms
    );
}

#[tokio::test]
async fn text_and_dtmf_get_answers() {
    let fake = fake(FakeOpenAiConfig::default()).await;
    let mut s = connect(client_cfg(&fake, Protocol::Ga), 8_000)
        .await
        .unwrap();
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(audio_samples(&events) > 0);
    s.input.send(AgentInput::Dtmf('5')).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(audio_samples(&events) > 0);
    assert_eq!(fake.stats().protocol_errors, Vec::<String>::new());
    assert_eq!(fake.stats().turns, 2);
}

#[tokio::test]
async fn refused_upgrade_reports_the_status_not_the_key() {
    let fake = fake(FakeOpenAiConfig::default()).await;
    let mut cfg = client_cfg(&fake, Protocol::Ga);
    cfg.api_key = Secret::new("sk-wrong-secret-123");
    let err = connect(cfg, 8_000).await.err().unwrap();
    assert_refused(&err, "401");
    assert!(!err.to_string().contains("sk-wrong-secret-123"));

    fake.set_fault(Fault::RefuseUpgrade(429));
    let err = connect(client_cfg(&fake, Protocol::Ga), 8_000)
        .await
        .err()
        .unwrap();
    assert_refused(&err, "429");
    assert_eq!(fake.stats().sessions_opened, 0);
}

#[tokio::test]
async fn silent_or_slow_set_up_times_out() {
    let fake = fake(FakeOpenAiConfig {
        fault: Fault::NoSessionCreated,
        ..Default::default()
    })
    .await;
    let mut cfg = client_cfg(&fake, Protocol::Ga);
    cfg.connect_timeout_ms = 300;
    let err = connect(cfg.clone(), 8_000).await.err().unwrap();
    assert!(matches!(err, AgentError::Timeout), "{err}");

    fake.set_fault(Fault::SlowSessionUpdatedMs(5_000));
    let err = connect(cfg, 8_000).await.err().unwrap();
    assert!(matches!(err, AgentError::Timeout), "{err}");
}

#[tokio::test]
async fn server_close_is_a_fatal_error_then_the_channel_ends() {
    let fake = fake(FakeOpenAiConfig {
        fault: Fault::CloseAfterMs(1_500),
        ..Default::default()
    })
    .await;
    let mut s = connect(client_cfg(&fake, Protocol::Ga), 16_000)
        .await
        .unwrap();
    expect_error(&mut s.events, true).await;
    assert_ends(&mut s.events).await;
}

#[tokio::test]
async fn error_after_first_turn_is_not_fatal() {
    let fake = fake(FakeOpenAiConfig {
        fault: Fault::ErrorAfterFirstTurn,
        ..Default::default()
    })
    .await;
    let mut s = connect(client_cfg(&fake, Protocol::Ga), 16_000)
        .await
        .unwrap();
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    until(&mut s.events, is_done).await;
    expect_error(&mut s.events, false).await;
    // Still usable afterwards.
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    until(&mut s.events, is_done).await;
}

#[tokio::test]
async fn g711_passthrough_at_8k() {
    let fake = fake(FakeOpenAiConfig::default()).await;
    let mut cfg = client_cfg(&fake, Protocol::Ga);
    cfg.g711_passthrough = true;
    let mut s = connect(cfg, 8_000).await.unwrap();
    assert_eq!((s.input_rate, s.output_rate), (8_000, 8_000));
    send_audio(&s.input, &caller_turn(8_000), 8_000).await;
    let events = until(&mut s.events, is_done).await;
    assert!(events.contains(&AgentEvent::SpeechStopped));
    assert_eq!(
        audio_samples(&events),
        samples_of(&FakeOpenAiConfig::default().reply_text, 8_000)
    );
    assert_eq!(fake.stats().protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn dropping_the_input_closes_the_session() {
    let fake = fake(FakeOpenAiConfig::default()).await;
    let s = connect(client_cfg(&fake, Protocol::Beta), 16_000)
        .await
        .unwrap();
    stats_until(&fake, |st| st.sessions_active == 1).await;
    drop(s.input);
    stats_until(&fake, |st| st.sessions_active == 0).await;
    drop(s.events);
}

#[tokio::test]
async fn many_concurrent_sessions() {
    let fake = fake(FakeOpenAiConfig {
        realtime_factor: 20.0,
        ..Default::default()
    })
    .await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let cfg = client_cfg(&fake, Protocol::Ga);
        tasks.push(tokio::spawn(async move {
            let mut s = connect(cfg, 16_000).await.unwrap();
            s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
            let events = until(&mut s.events, is_done).await;
            audio_samples(&events)
        }));
    }
    let mut lengths = Vec::new();
    for t in tasks {
        lengths.push(t.await.unwrap());
    }
    assert!(lengths.iter().all(|&n| n > 0 && n == lengths[0]));
    let stats = fake.stats();
    assert_eq!(stats.sessions_opened, 30);
    assert_eq!(stats.turns, 30);
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

// ---- strictness, with a raw client -------------------------------------------------

async fn raw(fake: &FakeOpenAi, beta: bool) -> RawWs {
    let mut req = format!("{}?model=gpt-realtime", fake.url())
        .into_client_request()
        .unwrap();
    let auth = format!("Bearer {}", FakeOpenAiConfig::default().api_key);
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    if beta {
        req.headers_mut()
            .insert("openai-beta", "realtime=v1".parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let created = next_json(&mut ws).await;
    assert_eq!(created["type"], "session.created");
    ws
}

/// Next event of type `ty`, skipping others.
async fn expect(ws: &mut RawWs, ty: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

#[tokio::test]
async fn rejects_events_before_session_update_and_bad_sessions() {
    let fake = fake(FakeOpenAiConfig::default()).await;
    let mut ws = raw(&fake, false).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let err = expect(&mut ws, "error").await;
    assert_eq!(err["error"]["code"], "session_not_configured");
    // Beta field names in a GA session.
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime",
        "input_audio_format": "pcm16"}}),
    )
    .await;
    let err = expect(&mut ws, "error").await;
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("input_audio_format"));
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}),
    )
    .await;
    expect(&mut ws, "error").await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"output": {"voice": "marin"}}}}),
    )
    .await;
    let updated = expect(&mut ws, "session.updated").await;
    assert_eq!(updated["session"]["audio"]["output"]["voice"], "marin");
    assert_eq!(fake.stats().protocol_errors.len(), 3);
}

#[tokio::test]
async fn rejects_empty_commits_bad_audio_and_overlong_truncates() {
    let fake = fake(FakeOpenAiConfig {
        think_ms: 0,
        ..Default::default()
    })
    .await;
    let mut ws = raw(&fake, true).await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"turn_detection": null}}),
    )
    .await;
    expect(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "input_audio_buffer.commit"})).await;
    let err = expect(&mut ws, "error").await;
    assert_eq!(err["error"]["code"], "input_audio_buffer_commit_empty");
    send(
        &mut ws,
        json!({"type": "input_audio_buffer.append", "audio": "AAA"}),
    )
    .await;
    expect(&mut ws, "error").await;
    send(&mut ws, json!({"type": "response.cancel"})).await;
    let err = expect(&mut ws, "error").await;
    assert_eq!(err["error"]["code"], "response_cancel_not_active");

    // A text turn, then a truncate past the generated audio (beta names on the way).
    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "message",
        "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}}),
    )
    .await;
    expect(&mut ws, "conversation.item.created").await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let delta = expect(&mut ws, "response.audio.delta").await;
    let item_id = delta["item_id"].as_str().unwrap().to_string();
    expect(&mut ws, "response.done").await;
    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": item_id,
        "content_index": 0, "audio_end_ms": 600_000}),
    )
    .await;
    let err = expect(&mut ws, "error").await;
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("audio_end_ms"));
    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": item_id,
        "content_index": 0, "audio_end_ms": 500}),
    )
    .await;
    let ok = expect(&mut ws, "conversation.item.truncated").await;
    assert_eq!(ok["audio_end_ms"], 500);
    let stats = fake.stats();
    // Empty commit, bad base64, overlong truncate; the harmless cancel is not counted.
    assert_eq!(
        stats.protocol_errors.len(),
        3,
        "{:?}",
        stats.protocol_errors
    );
    assert_eq!(stats.truncates.len(), 2);
    assert!(stats.truncates[0].audio_end_ms > stats.truncates[0].generated_ms);
}
