//! Helpers the fakes' tests share: the caller's speech, feeding it to a client session,
//! reading that session's events up to a point, polling a fake's stats, and a raw
//! WebSocket client for strictness checks.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use voice_core::agent::{AgentError, AgentEvent, AgentInput, AgentPersona, ToolSpec};

use crate::fake_elevenlabs::{FakeElevenLabs, FakeStats as ElevenLabsStats};
use crate::fake_gemini::{FakeGemini, FakeGeminiStats};
use crate::fake_openai::{FakeOpenAi, FakeStats as OpenAiStats};
use crate::speech;

pub(crate) const CALLER_TEXT: &str = "Olá, eu gostaria de marcar uma consulta.";
/// A reply long enough to barge in on while it streams.
pub(crate) const LONG_REPLY: &str = "Claro! Posso ajudar com isso. Temos horários livres na \
                                     segunda, na terça e na quarta-feira, pela manhã ou à \
                                     tarde. Qual prefere?";
/// Hang guard only.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// `text` spoken (espeak-ng pt-BR) at `rate`.
pub(crate) fn spoken(text: &str, rate: u32) -> Vec<i16> {
    speech::synthesize(text, speech::PT_BR, rate)
        .unwrap()
        .to_vec()
}

/// Length in samples of `text` spoken at `rate`.
pub(crate) fn samples_of(text: &str, rate: u32) -> usize {
    spoken(text, rate).len()
}

/// Caller speech followed by enough silence for the fake's VAD to end the turn.
pub(crate) fn caller_turn(rate: u32) -> Vec<i16> {
    let mut audio = spoken(CALLER_TEXT, rate);
    audio.extend(std::iter::repeat_n(0, rate as usize * 3 / 2));
    audio
}

/// A square wave (every sample at full amplitude) at `rate`.
pub(crate) fn square_wave(rate: u32, ms: usize, amplitude: i16) -> Vec<i16> {
    (0..ms * rate as usize / 1000)
        .map(|i| if i % 2 == 0 { amplitude } else { -amplitude })
        .collect()
}

/// A pt-BR agent speaking with `voice`, no tools.
pub(crate) fn persona(voice: &str) -> AgentPersona {
    AgentPersona {
        instructions: "Você é um atendente. Responda em português.".into(),
        voice: voice.into(),
        language: "pt-BR".into(),
        ..AgentPersona::default()
    }
}

/// The tool the fakes' `tool_call` settings name in the tests.
pub(crate) fn lookup_customer() -> ToolSpec {
    ToolSpec {
        name: "lookup_customer".into(),
        description: "Find a customer by phone".into(),
        parameters: json!({"type": "object",
            "properties": {"phone": {"type": "string"}}, "required": ["phone"]}),
    }
}

/// Sends `audio` in 20 ms frames, as the call task does (not paced: stream time counts).
pub(crate) async fn send_audio(input: &mpsc::Sender<AgentInput>, audio: &[i16], rate: u32) {
    for frame in audio.chunks(rate as usize / 50) {
        input.send(AgentInput::Audio(frame.to_vec())).await.unwrap();
    }
}

/// Events up to and including the first one `stop` accepts.
pub(crate) async fn until(
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

/// Events until at least `samples` of agent audio came in them.
pub(crate) async fn until_audio(
    events: &mut mpsc::Receiver<AgentEvent>,
    samples: usize,
) -> Vec<AgentEvent> {
    let mut received = 0;
    until(events, |e| {
        if let AgentEvent::Audio { samples, .. } = e {
            received += samples.len();
        }
        received >= samples
    })
    .await
}

/// The events in one line, audio shortened to its item and length.
pub(crate) fn summary(events: &[AgentEvent]) -> String {
    let names: Vec<String> = events
        .iter()
        .map(|e| match e {
            AgentEvent::Audio { item_id, samples } => {
                format!("Audio({item_id}, {})", samples.len())
            }
            other => format!("{other:?}"),
        })
        .collect();
    names.join(", ")
}

pub(crate) fn audio_samples(events: &[AgentEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            AgentEvent::Audio { samples, .. } => samples.len(),
            _ => 0,
        })
        .sum()
}

/// The audio items in the order they played.
pub(crate) fn audio_items(events: &[AgentEvent]) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for e in events {
        if let AgentEvent::Audio { item_id, .. } = e {
            if items.last() != Some(item_id) {
                items.push(item_id.clone());
            }
        }
    }
    items
}

pub(crate) fn position(events: &[AgentEvent], pred: impl Fn(&AgentEvent) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("missing event in {}", summary(events)))
}

pub(crate) fn is_done(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::ResponseDone { .. })
}

pub(crate) fn is_error(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::Error { .. })
}

pub(crate) fn done(status: &str) -> AgentEvent {
    AgentEvent::ResponseDone {
        status: status.into(),
    }
}

/// A function call the agent asked for.
pub(crate) struct ToolCall {
    pub call_id: String,
    pub name: String,
    pub arguments: String,
}

/// Events up to the agent's next tool call, and that call.
pub(crate) async fn until_tool_call(
    events: &mut mpsc::Receiver<AgentEvent>,
) -> (Vec<AgentEvent>, ToolCall) {
    let seen = until(events, |e| matches!(e, AgentEvent::ToolCall { .. })).await;
    let Some(AgentEvent::ToolCall {
        call_id,
        name,
        arguments,
    }) = seen.last().cloned()
    else {
        panic!("no tool call in {}", summary(&seen));
    };
    let call = ToolCall {
        call_id,
        name,
        arguments,
    };
    (seen, call)
}

/// Events up to the next error, which must be `fatal` (or not); returns its message.
pub(crate) async fn expect_error(events: &mut mpsc::Receiver<AgentEvent>, fatal: bool) -> String {
    let seen = until(events, is_error).await;
    match seen.last() {
        Some(AgentEvent::Error { message, fatal: f }) if *f == fatal => message.clone(),
        _ => panic!("expected an error with fatal: {fatal}: {}", summary(&seen)),
    }
}

/// The events channel ends (as it must after a fatal error).
pub(crate) async fn assert_ends(events: &mut mpsc::Receiver<AgentEvent>) {
    let end = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
    assert_eq!(end, None, "the events channel should end");
}

/// `err` is a refusal whose message names `status`.
pub(crate) fn assert_refused(err: &AgentError, status: &str) {
    assert!(
        matches!(err, AgentError::Refused(m) if m.contains(status)),
        "{err}"
    );
}

/// A fake whose stats the tests poll.
pub(crate) trait StatsSource {
    type Stats: std::fmt::Debug;
    fn snapshot(&self) -> Self::Stats;
}

impl StatsSource for FakeOpenAi {
    type Stats = OpenAiStats;
    fn snapshot(&self) -> OpenAiStats {
        self.stats()
    }
}

impl StatsSource for FakeGemini {
    type Stats = FakeGeminiStats;
    fn snapshot(&self) -> FakeGeminiStats {
        self.stats()
    }
}

impl StatsSource for FakeElevenLabs {
    type Stats = ElevenLabsStats;
    fn snapshot(&self) -> ElevenLabsStats {
        self.stats()
    }
}

/// Polls the fake's stats until `ok` holds (the fake handles frames asynchronously).
pub(crate) async fn stats_until<F: StatsSource>(
    fake: &F,
    ok: impl Fn(&F::Stats) -> bool,
) -> F::Stats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = fake.snapshot();
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

/// A raw WebSocket client, for what the real clients never send.
pub(crate) type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn send(ws: &mut RawWs, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next frame with content; ping, pong and empty frames are skipped.
pub(crate) async fn next_frame(ws: &mut RawWs) -> Message {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if !matches!(msg, Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) {
            return msg;
        }
    }
}

/// The next JSON message in a text frame (other frames are skipped).
pub(crate) async fn next_json(ws: &mut RawWs) -> Value {
    loop {
        if let Message::Text(t) = next_frame(ws).await {
            return serde_json::from_str(&t).unwrap();
        }
    }
}
