//! The real client (`voice_core::providers::gemini_live`) against the fake, over real
//! sockets on 127.0.0.1.

use std::time::Duration;

use serde_json::json;
use voice_core::agent::{
    Agent, AgentError, AgentEvent, AgentInput, AgentPersona, AgentSession, CallInfo, Role,
};
use voice_core::config::Secret;
use voice_core::providers::gemini_live::{GeminiLiveAgent, GeminiLiveConfig};

use super::*;
use crate::fake_common::test_support::{
    assert_ends, assert_refused, audio_samples, done, expect_error, is_done, is_error,
    lookup_customer, position, samples_of, spoken, stats_until, summary, until, until_audio,
    until_tool_call, ToolCall, CALLER_TEXT, LONG_REPLY,
};

async fn fake(cfg: FakeGeminiConfig) -> FakeGemini {
    FakeGemini::start(cfg).await.unwrap()
}

fn client_cfg(fake: &FakeGemini) -> GeminiLiveConfig {
    GeminiLiveConfig {
        url: fake.url(),
        api_key: Secret::new(FakeGeminiConfig::default().api_key),
        ..Default::default()
    }
}

fn persona() -> AgentPersona {
    AgentPersona {
        tools: vec![lookup_customer()],
        ..crate::fake_common::test_support::persona("Charon")
    }
}

fn call(history: Vec<(Role, String)>) -> CallInfo {
    CallInfo {
        call_id: "call-1".into(),
        call_rate: 8_000,
        history,
        ..Default::default()
    }
}

async fn connect_with(
    cfg: GeminiLiveConfig,
    persona: AgentPersona,
    history: Vec<(Role, String)>,
) -> Result<AgentSession, AgentError> {
    GeminiLiveAgent::new(cfg, persona)
        .connect(call(history))
        .await
}

async fn connect(fake: &FakeGemini) -> AgentSession {
    connect_with(client_cfg(fake), persona(), Vec::new())
        .await
        .unwrap()
}

/// Caller speech followed by enough silence for the fake's VAD to end the turn (16 kHz).
fn caller_turn() -> Vec<i16> {
    crate::fake_common::test_support::caller_turn(16_000)
}

/// The reply's length at Gemini's output rate.
fn reply_samples(text: &str) -> usize {
    samples_of(text, 24_000)
}

/// Sends 16 kHz `audio` in 20 ms frames.
async fn send_audio(input: &tokio::sync::mpsc::Sender<AgentInput>, audio: &[i16]) {
    crate::fake_common::test_support::send_audio(input, audio, 16_000).await;
}

/// The client's messages without the audio (`realtimeInput.audio`).
fn control_messages(stats: &FakeGeminiStats) -> Vec<&str> {
    stats
        .client_messages
        .iter()
        .map(String::as_str)
        .filter(|m| *m != "realtimeInput.audio")
        .collect()
}

#[tokio::test]
async fn full_audio_turn() {
    let fake = fake(FakeGeminiConfig::default()).await;
    let mut s = connect(&fake).await;
    assert_eq!((s.input_rate, s.output_rate), (16_000, 24_000));
    let caller = caller_turn();
    send_audio(&s.input, &caller).await;
    let events = until(&mut s.events, is_done).await;

    let caller_line = position(&events, |e| {
        *e == AgentEvent::Transcript {
            role: Role::Caller,
            text: CALLER_TEXT.into(),
        }
    });
    let first_audio = position(&events, |e| matches!(e, AgentEvent::Audio { .. }));
    let audio_done = position(&events, |e| {
        *e == AgentEvent::AudioDone {
            item_id: "turn-1".into(),
        }
    });
    let agent_line = position(&events, |e| {
        *e == AgentEvent::Transcript {
            role: Role::Agent,
            text: FakeGeminiConfig::default().reply_text,
        }
    });
    assert!(caller_line < first_audio && first_audio < audio_done && audio_done < agent_line);
    assert!(events
        .iter()
        .all(|e| !matches!(e, AgentEvent::Audio { item_id, .. } if item_id != "turn-1")));
    assert_eq!(
        audio_samples(&events),
        reply_samples(&FakeGeminiConfig::default().reply_text),
        "all reply audio arrives, at 24 kHz"
    );
    assert_eq!(events.last(), Some(&done("completed")));
    assert!(!events.iter().any(is_error), "{}", summary(&events));

    let stats = fake.stats();
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    assert_eq!(
        stats.client_messages.first().map(String::as_str),
        Some("setup")
    );
    assert_eq!(
        (stats.sessions, stats.caller_turns, stats.responses),
        (1, 1, 1)
    );
    assert_eq!(stats.interrupted, 0);
    let caller_ms = (caller.len() / 16) as u64;
    assert!(
        stats.audio_ms_received.abs_diff(caller_ms) <= 20,
        "{} vs {caller_ms}",
        stats.audio_ms_received
    );
    let setup = stats.last_setup.unwrap();
    assert_eq!(
        setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]
            ["voiceName"],
        "Charon"
    );
    assert_eq!(
        setup["realtimeInputConfig"]["automaticActivityDetection"]["disabled"],
        false
    );
}

#[tokio::test]
async fn caller_speech_over_the_reply_interrupts_it() {
    // Streamed in real time, the reply leaves plenty of time to barge in.
    let fake = fake(FakeGeminiConfig {
        realtime_factor: 1.0,
        reply_text: LONG_REPLY.into(),
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    send_audio(&s.input, &caller_turn()).await;
    let before = until_audio(&mut s.events, 24 * 300).await;
    assert!(!before.iter().any(is_done));
    // The caller speaks over the agent, then falls silent: a new turn.
    send_audio(&s.input, &caller_turn()).await;
    let cut = until(&mut s.events, is_done).await;
    let barge_in = position(&cut, |e| *e == AgentEvent::SpeechStarted);
    assert!(
        !cut[barge_in..]
            .iter()
            .any(|e| matches!(e, AgentEvent::Audio { .. })),
        "no audio of the cut turn after the barge-in: {}",
        summary(&cut)
    );
    assert_eq!(cut.last(), Some(&done("cancelled")));
    assert!(
        audio_samples(&before) + audio_samples(&cut) < reply_samples(LONG_REPLY),
        "the reply was cut short"
    );
    // The barge-in turn is answered as a new item.
    let next = until(&mut s.events, is_done).await;
    assert_eq!(next.last(), Some(&done("completed")));
    assert!(next
        .iter()
        .any(|e| matches!(e, AgentEvent::Audio { item_id, .. } if item_id == "turn-2")));
    let stats = fake.stats();
    assert_eq!(stats.interrupted, 1);
    assert_eq!(stats.caller_turns, 2);
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn the_calls_own_barge_in_drops_the_rest_of_the_turn() {
    let fake = fake(FakeGeminiConfig {
        realtime_factor: 1.0,
        reply_text: LONG_REPLY.into(),
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    let before = until_audio(&mut s.events, 24 * 300).await;
    s.input
        .send(AgentInput::Interrupted {
            item_id: "turn-1".into(),
            heard_ms: 250,
        })
        .await
        .unwrap();
    let after = until(&mut s.events, is_done).await;
    assert_eq!(after.last(), Some(&done("cancelled")));
    // A chunk or two may have been on the way; the seconds after them are dropped.
    let got = audio_samples(&before) + audio_samples(&after);
    assert!(
        got + 24 * 1000 < reply_samples(LONG_REPLY),
        "{got} samples arrived"
    );
    assert_eq!(fake.stats().interrupted, 0, "the fake saw no barge-in");
    assert_eq!(fake.stats().protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn tool_call_round_trip() {
    let args = r#"{"phone":"+5511999990000"}"#;
    let fake = fake(FakeGeminiConfig {
        tool_call: Some(("lookup_customer".into(), args.into())),
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    send_audio(&s.input, &caller_turn()).await;
    let (events, call) = until_tool_call(&mut s.events).await;
    assert_eq!(
        (call.name.as_str(), call.arguments.as_str()),
        ("lookup_customer", args)
    );
    assert_eq!(audio_samples(&events), 0);
    s.input
        .send(AgentInput::ToolResult {
            call_id: call.call_id,
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
    assert_eq!((stats.tool_calls, stats.tool_responses), (1, 1));
    assert_eq!(control_messages(&stats), ["setup", "toolResponse"]);
}

#[tokio::test]
async fn a_cancelled_tool_call_gets_no_result() {
    let fake = fake(FakeGeminiConfig {
        tool_call: Some(("lookup_customer".into(), "{}".into())),
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    send_audio(&s.input, &caller_turn()).await;
    let (_, ToolCall { call_id, .. }) = until_tool_call(&mut s.events).await;
    // The caller speaks again before the result: the fake cancels the call, then answers
    // the new turn. Once that answer is in, the cancellation has been read.
    send_audio(&s.input, &caller_turn()).await;
    let events = until(&mut s.events, is_done).await;
    assert!(audio_samples(&events) > 0);
    s.input
        .send(AgentInput::ToolResult {
            call_id,
            output: "too late".into(),
        })
        .await
        .unwrap();
    // Messages go out in order: once the text is in, the result would have been too.
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    let stats = stats_until(&fake, |st| {
        st.client_messages.iter().any(|m| m == "clientContent")
    })
    .await;
    assert_eq!(control_messages(&stats), ["setup", "clientContent"]);
    assert_eq!((stats.tool_calls, stats.tool_responses), (1, 0));
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn local_turns_bracket_the_callers_speech() {
    let fake = fake(FakeGeminiConfig::default()).await;
    let local = AgentPersona {
        local_turns: true,
        ..persona()
    };
    let mut s = connect_with(client_cfg(&fake), local, Vec::new())
        .await
        .unwrap();
    // Only the turn's audio, as the bridge sends it with local turns; short trailing
    // silence, far below the fake's VAD window, proves the fake did not decide.
    let mut audio = spoken(CALLER_TEXT, 16_000);
    audio.extend(std::iter::repeat_n(0, 16 * 100));
    send_audio(&s.input, &audio).await;
    let stats = stats_until(&fake, |st| {
        st.audio_ms_received >= (audio.len() / 16 - 20) as u64
    })
    .await;
    assert_eq!(stats.caller_turns, 0, "no turn before EndOfTurn");
    s.input.send(AgentInput::EndOfTurn).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(!events.contains(&AgentEvent::SpeechStarted));
    assert!(audio_samples(&events) > 0);
    assert_eq!(events.last(), Some(&done("completed")));
    let stats = fake.stats();
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    assert_eq!((stats.activity_starts, stats.activity_ends), (1, 1));
    assert_eq!((stats.caller_turns, stats.responses), (1, 1));
    assert_eq!(stats.audio_ms_outside_activity, 0);
    let setup = stats.last_setup.unwrap();
    assert_eq!(
        setup["realtimeInputConfig"]["automaticActivityDetection"],
        json!({"disabled": true})
    );
    assert_eq!(
        control_messages(&fake.stats()),
        [
            "setup",
            "realtimeInput.activityStart",
            "realtimeInput.activityEnd"
        ]
    );
}

#[tokio::test]
async fn history_is_sent_as_client_content_before_anything_else() {
    let fake = fake(FakeGeminiConfig::default()).await;
    let history = vec![
        (Role::Caller, "Quero marcar uma consulta.".to_string()),
        (Role::Agent, "Claro, para quando?".to_string()),
    ];
    let mut s = connect_with(client_cfg(&fake), persona(), history)
        .await
        .unwrap();
    let stats = stats_until(&fake, |st| st.history_turns == 2).await;
    assert_eq!(
        stats.history,
        [
            "user: Quero marcar uma consulta.",
            "model: Claro, para quando?"
        ]
    );
    assert_eq!(stats.caller_turns, 0, "history asks for no answer");
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(audio_samples(&events) > 0);
    let stats = fake.stats();
    assert_eq!(
        control_messages(&stats),
        ["setup", "clientContent", "clientContent"]
    );
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn history_ending_with_the_caller_is_answered_at_once() {
    // The old session died after the caller spoke and before it answered.
    let fake = fake(FakeGeminiConfig::default()).await;
    let history = vec![
        (Role::Agent, "Olá, em que posso ajudar?".to_string()),
        (
            Role::Caller,
            "Qual é o horário de funcionamento?".to_string(),
        ),
    ];
    let mut s = connect_with(client_cfg(&fake), persona(), history)
        .await
        .unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(
        audio_samples(&events) > 0,
        "answered without new caller audio"
    );
    let stats = fake.stats();
    assert_eq!(stats.caller_turns, 1);
    assert_eq!(control_messages(&stats), ["setup", "clientContent"]);
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
}

#[tokio::test]
async fn text_frames_text_and_dtmf() {
    let fake = fake(FakeGeminiConfig {
        binary_frames: false,
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert_eq!(
        audio_samples(&events),
        reply_samples(&FakeGeminiConfig::default().reply_text)
    );
    assert!(!events.iter().any(|e| matches!(
        e,
        AgentEvent::Transcript {
            role: Role::Caller,
            ..
        }
    )));
    s.input.send(AgentInput::Dtmf('5')).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(events
        .iter()
        .any(|e| matches!(e, AgentEvent::Audio { item_id, .. } if item_id == "turn-2")));
    let stats = fake.stats();
    assert_eq!(stats.protocol_errors, Vec::<String>::new());
    assert_eq!(
        control_messages(&stats),
        ["setup", "clientContent", "realtimeInput.text"]
    );
    assert_eq!(stats.caller_turns, 2);
}

#[tokio::test]
async fn refused_upgrades_report_the_status_not_the_key() {
    let fake = fake(FakeGeminiConfig::default()).await;
    let mut cfg = client_cfg(&fake);
    cfg.api_key = Secret::new("AIza-wrong-secret-123");
    let err = connect_with(cfg, persona(), Vec::new())
        .await
        .err()
        .unwrap();
    assert_refused(&err, "403");
    assert!(!err.to_string().contains("AIza-wrong-secret-123"));

    fake.set_fault(Fault::RefuseUpgrade(429));
    let err = connect_with(client_cfg(&fake), persona(), Vec::new())
        .await
        .err()
        .unwrap();
    assert_refused(&err, "429");
    assert_eq!(fake.stats().sessions, 0);
}

#[tokio::test]
async fn no_setup_complete_times_out_within_the_budget() {
    let fake = fake(FakeGeminiConfig {
        fault: Fault::NoSetupComplete,
        ..Default::default()
    })
    .await;
    let mut cfg = client_cfg(&fake);
    cfg.connect_timeout_ms = 300;
    let connecting = connect_with(cfg, persona(), Vec::new());
    // A hang guard well above the 300 ms budget.
    let err = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .expect("the connect budget was not enforced")
        .err()
        .unwrap();
    assert!(matches!(err, AgentError::Timeout), "{err}");
    let stats = fake.stats();
    assert_eq!(stats.client_messages, ["setup"]);
    assert!(stats.last_setup.is_some());
}

#[tokio::test]
async fn server_close_is_a_fatal_error_then_the_channel_ends() {
    let fake = fake(FakeGeminiConfig {
        fault: Fault::CloseAfterMs(500),
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    expect_error(&mut s.events, true).await;
    assert_ends(&mut s.events).await;
}

#[tokio::test]
async fn go_away_warns_then_the_close_is_fatal() {
    let fake = fake(FakeGeminiConfig {
        fault: Fault::GoAwayAfterMs(300),
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    let message = expect_error(&mut s.events, false).await;
    assert!(
        message.contains("goAway") && message.contains("10s"),
        "{message}"
    );
    expect_error(&mut s.events, true).await;
    assert_ends(&mut s.events).await;
}

#[tokio::test]
async fn a_garbage_frame_is_reported_and_the_session_goes_on() {
    let fake = fake(FakeGeminiConfig {
        fault: Fault::GarbageFrame,
        ..Default::default()
    })
    .await;
    let mut s = connect(&fake).await;
    expect_error(&mut s.events, false).await;
    s.input.send(AgentInput::Text("Oi".into())).await.unwrap();
    let events = until(&mut s.events, is_done).await;
    assert!(audio_samples(&events) > 0);
    assert_eq!(events.last(), Some(&done("completed")));
}

#[tokio::test]
async fn dropping_the_input_closes_the_session() {
    let fake = fake(FakeGeminiConfig::default()).await;
    let s = connect(&fake).await;
    stats_until(&fake, |st| st.sessions_active == 1).await;
    drop(s.input);
    stats_until(&fake, |st| st.sessions_active == 0).await;
    drop(s.events);
    assert_eq!(fake.stats().protocol_errors, Vec::<String>::new());
}
