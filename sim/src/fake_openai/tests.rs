//! The real client (`voice_core::providers::openai_realtime`) against the fake, over
//! real sockets, plus strictness checks with a raw WebSocket client.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use voice_core::agent::{
    Agent, AgentError, AgentEvent, AgentInput, AgentPersona, AgentSession, CallInfo, Role, ToolSpec,
};
use voice_core::config::Secret;
use voice_core::providers::openai_realtime::{OpenAiRealtimeAgent, OpenAiRealtimeConfig, Protocol};

use super::*;
use crate::speech;

const CALLER_TEXT: &str = "Olá, eu gostaria de marcar uma consulta.";
const WAIT: Duration = Duration::from_secs(15);

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
        instructions: "Você é um atendente. Responda em português.".into(),
        voice: "marin".into(),
        language: "pt-BR".into(),
        tools: vec![ToolSpec {
            name: "lookup_customer".into(),
            description: "Find a customer by phone".into(),
            parameters: json!({"type": "object",
                "properties": {"phone": {"type": "string"}}, "required": ["phone"]}),
        }],
        ..AgentPersona::default()
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

/// Caller speech followed by enough silence for the server VAD to end the turn.
fn caller_turn(rate: u32) -> Vec<i16> {
    let mut audio = speech::synthesize(CALLER_TEXT, speech::PT_BR, rate)
        .unwrap()
        .to_vec();
    audio.extend(std::iter::repeat_n(0, rate as usize * 3 / 2));
    audio
}

/// Sends `audio` in 20 ms frames, as the call task does (not paced: stream time counts).
async fn send_audio(input: &mpsc::Sender<AgentInput>, audio: &[i16], rate: u32) {
    for frame in audio.chunks(rate as usize / 50) {
        input.send(AgentInput::Audio(frame.to_vec())).await.unwrap();
    }
}

/// Events up to and including the first one `stop` accepts.
async fn until(
    events: &mut mpsc::Receiver<AgentEvent>,
    mut stop: impl FnMut(&AgentEvent) -> bool,
) -> Vec<AgentEvent> {
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
        "stopped early or timed out; saw {}",
        summary(&seen)
    );
    seen
}

fn summary(events: &[AgentEvent]) -> String {
    let names: Vec<String> = events
        .iter()
        .map(|e| match e {
            AgentEvent::Audio { samples, .. } => format!("Audio({})", samples.len()),
            other => format!("{other:?}"),
        })
        .collect();
    names.join(", ")
}

fn audio_samples(events: &[AgentEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            AgentEvent::Audio { samples, .. } => samples.len(),
            _ => 0,
        })
        .sum()
}

fn position(events: &[AgentEvent], pred: impl Fn(&AgentEvent) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("missing event in {}", summary(events)))
}

fn is_done(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::ResponseDone { .. })
}

/// Polls the fake's stats until `ok` holds (the fake handles events asynchronously).
async fn stats_until(fake: &FakeOpenAi, ok: impl Fn(&FakeStats) -> bool) -> FakeStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = fake.stats();
        if ok(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never matched: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let reply = speech::synthesize(
        &FakeOpenAiConfig::default().reply_text,
        speech::PT_BR,
        24_000,
    )
    .unwrap();
    assert_eq!(
        audio_samples(&events),
        reply.len(),
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
    assert_eq!(
        events.last(),
        Some(&AgentEvent::ResponseDone {
            status: "completed".into()
        })
    );
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
    let reply_text = "Claro! Posso ajudar com isso. Temos horários livres na segunda, na terça \
                      e na quarta-feira, pela manhã ou à tarde. Qual prefere?";
    let reply_ms = speech::synthesize(reply_text, speech::PT_BR, 24_000)
        .unwrap()
        .len()
        / 24;
    let fake = fake(FakeOpenAiConfig {
        realtime_factor: 1.0,
        reply_text: reply_text.into(),
        ..Default::default()
    })
    .await;
    let mut s = connect(client_cfg(&fake, Protocol::Ga), 16_000)
        .await
        .unwrap();
    send_audio(&s.input, &caller_turn(24_000), 24_000).await;
    // Wait for ~300 ms of agent audio, then the caller speaks over it.
    let mut received = 0;
    let events = until(&mut s.events, |e| {
        if let AgentEvent::Audio { samples, .. } = e {
            received += samples.len();
        }
        received >= 24 * 300
    })
    .await;
    let Some(AgentEvent::Audio { item_id, .. }) = events.last().cloned() else {
        panic!("no audio");
    };
    let speech = speech::synthesize(CALLER_TEXT, speech::PT_BR, 24_000).unwrap();
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
    assert_eq!(
        events.last(),
        Some(&AgentEvent::ResponseDone {
            status: "cancelled".into()
        })
    );
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
    assert_eq!(
        events.last(),
        Some(&AgentEvent::ResponseDone {
            status: "completed".into()
        })
    );
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
    let mut audio = speech::synthesize(CALLER_TEXT, speech::PT_BR, 24_000)
        .unwrap()
        .to_vec();
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
    assert_eq!(
        events.last(),
        Some(&AgentEvent::ResponseDone {
            status: "completed".into()
        })
    );
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
    let AgentError::Refused(message) = &err else {
        panic!("expected Refused, got {err}");
    };
    assert!(message.contains("401"), "{message}");
    assert!(!err.to_string().contains("sk-wrong-secret-123"));

    fake.set_fault(Fault::RefuseUpgrade(429));
    let err = connect(client_cfg(&fake, Protocol::Ga), 8_000)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, AgentError::Refused(m) if m.contains("429")),
        "{err}"
    );
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
    let events = until(&mut s.events, |e| matches!(e, AgentEvent::Error { .. })).await;
    assert!(matches!(
        events.last(),
        Some(AgentEvent::Error { fatal: true, .. })
    ));
    let end = tokio::time::timeout(WAIT, s.events.recv()).await.unwrap();
    assert_eq!(end, None, "the events channel closes after a fatal error");
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
    let events = until(&mut s.events, |e| matches!(e, AgentEvent::Error { .. })).await;
    assert!(matches!(
        events.last(),
        Some(AgentEvent::Error { fatal: false, .. })
    ));
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
    let reply = speech::synthesize(
        &FakeOpenAiConfig::default().reply_text,
        speech::PT_BR,
        8_000,
    )
    .unwrap();
    assert_eq!(audio_samples(&events), reply.len());
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

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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

async fn next_json(ws: &mut RawWs) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

async fn send(ws: &mut RawWs, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
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
