//! The real clients (`voice_core::providers::llm::{openai_chat, anthropic}`) against the
//! fake, over real sockets on 127.0.0.1.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;
use voice_core::agent::ToolSpec;
use voice_core::config::Secret;
use voice_core::providers::llm::anthropic::{AnthropicChat, AnthropicConfig};
use voice_core::providers::llm::openai_chat::{OpenAiChat, OpenAiChatConfig};
use voice_core::providers::llm::{
    ChatEvent, ChatMessage, ChatModel, ChatRequest, StopReason, ToolCall,
};
use voice_core::providers::ProviderError;

use super::*;
use crate::fake_common::test_support::lookup_customer;

/// Hang guard only.
const WAIT: Duration = Duration::from_secs(5);
const REPLY: &str = "Claro! Posso ajudar com isso. Qual é o seu nome, por favor?";
const PHONE_ARGS: &str = r#"{"phone":"+5511999990000"}"#;
const MESSAGE_ARGS: &str = r#"{"name":"Ana Lúcia","message":"ligar de volta às 15h"}"#;

fn take_message() -> ToolSpec {
    ToolSpec {
        name: "take_message".into(),
        description: "Take a message".into(),
        parameters: json!({"type": "object", "properties": {
            "name": {"type": "string"}, "message": {"type": "string"}}}),
    }
}

/// Quick answers; "telefone" makes the model look the customer up and take a message.
fn fast() -> FakeLlmConfig {
    FakeLlmConfig {
        first_token_ms: 0,
        token_interval_ms: 0,
        tool_rules: vec![ToolRule {
            when_user_says: "telefone".into(),
            say_first: "Vou procurar.".into(),
            calls: vec![
                ScriptedCall::new("lookup_customer", PHONE_ARGS),
                ScriptedCall::new("take_message", MESSAGE_ARGS),
            ],
        }],
        ..FakeLlmConfig::default()
    }
}

async fn fake(cfg: FakeLlmConfig) -> FakeLlm {
    FakeLlm::start(cfg).await.unwrap()
}

fn openai_cfg(fake: &FakeLlm) -> OpenAiChatConfig {
    OpenAiChatConfig {
        url: fake.chat_completions_url(),
        api_key: Secret::new(fake.api_key()),
        ..Default::default()
    }
}

fn anthropic_cfg(fake: &FakeLlm) -> AnthropicConfig {
    AnthropicConfig {
        url: fake.messages_url(),
        api_key: Secret::new(fake.api_key()),
        ..Default::default()
    }
}

/// Both clients, pointed at `fake`.
fn clients(fake: &FakeLlm) -> Vec<Box<dyn ChatModel>> {
    vec![
        Box::new(OpenAiChat::new(openai_cfg(fake))),
        Box::new(AnthropicChat::new(anthropic_cfg(fake))),
    ]
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        system: "Você é um atendente. Responda em português.".into(),
        messages: vec![ChatMessage::User(text.into())],
        tools: vec![lookup_customer(), take_message()],
        max_tokens: None,
    }
}

/// Every event up to the answer's end; the channel must close right after it.
async fn answer(mut rx: mpsc::Receiver<ChatEvent>) -> Vec<ChatEvent> {
    let mut events = Vec::new();
    loop {
        let event = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("the answer stalled")
            .expect("the channel closed before Done or Error");
        let end = matches!(event, ChatEvent::Done(_) | ChatEvent::Error(_));
        events.push(event);
        if end {
            break;
        }
    }
    let after = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("still open");
    assert_eq!(after, None, "nothing follows the end");
    events
}

async fn ask_model(model: &dyn ChatModel, request: ChatRequest) -> Vec<ChatEvent> {
    let rx = tokio::time::timeout(WAIT, model.stream(request))
        .await
        .expect("stream() hung")
        .unwrap_or_else(|e| panic!("{} refused: {e}", model.name()));
    answer(rx).await
}

fn text(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn calls(events: &[ChatEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCall(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn last_error(events: &[ChatEvent]) -> ProviderError {
    match events.last() {
        Some(ChatEvent::Error(e)) => e.clone(),
        other => panic!("expected an error, got {other:?} in {events:?}"),
    }
}

#[tokio::test]
async fn plain_answer_streams_word_by_word() {
    let fake = fake(fast()).await;
    for model in clients(&fake) {
        let events = ask_model(model.as_ref(), ask("Bom dia")).await;
        assert_eq!(text(&events), REPLY, "{}", model.name());
        assert!(
            events.len() > 5,
            "{}: word by word: {events:?}",
            model.name()
        );
        assert_eq!(events.last(), Some(&ChatEvent::Done(StopReason::Done)));
    }
    let stats = fake.stats();
    assert_eq!((stats.accepted.len(), stats.streams_started), (2, 2));
    assert!(stats.rejections.is_empty(), "{:?}", stats.rejections);
    for request in &stats.accepted {
        assert_eq!(request.texts("user"), ["Bom dia"]);
        assert_eq!(
            request.system,
            "Você é um atendente. Responda em português."
        );
        assert_eq!(request.tools, ["lookup_customer", "take_message"]);
        assert_eq!(request.max_tokens, Some(300));
    }
    assert_eq!(stats.accepted[0].api, Api::ChatCompletions);
    assert_eq!(stats.accepted[1].api, Api::Messages);
}

#[tokio::test]
async fn parallel_tool_calls_in_tiny_interleaved_fragments_come_out_whole() {
    let fake = fake(FakeLlmConfig {
        wire: WireStyle {
            tool_args_piece: 1,
            interleave_tool_calls: true,
            ..WireStyle::default()
        },
        ..fast()
    })
    .await;
    for model in clients(&fake) {
        let events = ask_model(model.as_ref(), ask("Meu telefone é esse mesmo")).await;
        assert_eq!(text(&events), "Vou procurar.", "{}", model.name());
        let calls = calls(&events);
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["lookup_customer", "take_message"],
            "{}",
            model.name()
        );
        assert_eq!(json_of(&calls[0].arguments), json_of(PHONE_ARGS));
        assert_eq!(json_of(&calls[1].arguments), json_of(MESSAGE_ARGS));
        assert_ne!(calls[0].id, calls[1].id);
        assert_eq!(events.last(), Some(&ChatEvent::Done(StopReason::ToolCalls)));
    }
    assert_eq!(fake.stats().tool_calls, 4);
}

#[tokio::test]
async fn ollama_whole_tool_calls_without_a_key() {
    let fake = fake(FakeLlmConfig {
        chat_style: ChatStyle::Ollama,
        ..fast()
    })
    .await;
    let ollama = OpenAiChat::new(OpenAiChatConfig {
        url: fake.chat_completions_url(),
        ..OpenAiChatConfig::ollama()
    });
    assert_eq!(ollama.name(), "ollama");
    let events = ask_model(&ollama, ask("o telefone")).await;
    let calls = calls(&events);
    assert_eq!(calls.len(), 2, "{events:?}");
    assert_eq!(json_of(&calls[1].arguments), json_of(MESSAGE_ARGS));
    assert_eq!(events.last(), Some(&ChatEvent::Done(StopReason::ToolCalls)));
    assert_eq!(fake.stats().accepted[0].model, "llama3.2");
}

/// The call, its result, and the answer quoting it: the second request must pass the
/// fake's pairing checks (OpenAI `role: tool`, Anthropic folded `tool_result` blocks).
#[tokio::test]
async fn tool_results_round_trip_into_the_next_answer() {
    let fake = fake(fast()).await;
    for model in clients(&fake) {
        let first = ask_model(model.as_ref(), ask("Meu telefone")).await;
        let made = calls(&first);
        let mut next = ask("Meu telefone");
        next.messages.push(ChatMessage::Assistant {
            text: text(&first),
            tool_calls: made.clone(),
        });
        next.messages.push(ChatMessage::ToolResult {
            call_id: made[0].id.clone(),
            output: "cliente Ana Lúcia".into(),
        });
        next.messages.push(ChatMessage::ToolResult {
            call_id: made[1].id.clone(),
            output: "recado anotado".into(),
        });
        let second = ask_model(model.as_ref(), next).await;
        assert_eq!(
            text(&second),
            "Pronto, encontrei: cliente Ana Lúcia; recado anotado.",
            "{}",
            model.name()
        );
        assert_eq!(second.last(), Some(&ChatEvent::Done(StopReason::Done)));
        let stats = fake.stats();
        assert!(stats.rejections.is_empty(), "{:?}", stats.rejections);
        let sent = stats.accepted.last().unwrap();
        assert_eq!(sent.texts("tool"), ["cliente Ana Lúcia", "recado anotado"]);
        assert_eq!(sent.texts("assistant"), ["Vou procurar."]);
    }
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_answer() {
    let fake = fake(FakeLlmConfig {
        fault: Fault::ErrorEventAfter(2),
        ..fast()
    })
    .await;
    for model in clients(&fake) {
        let events = ask_model(model.as_ref(), ask("Oi")).await;
        assert_eq!(text(&events), "Claro! Posso ", "{}", model.name());
        let err = last_error(&events);
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m.contains("server_error") || m.contains("overloaded_error")),
            "{}: {err}",
            model.name()
        );
    }
    assert_eq!(fake.stats().streams_faulted, 2);
}

#[tokio::test]
async fn http_statuses_map_to_refused_or_unavailable() {
    let fake = fake(fast()).await;
    let wrong_key = [
        Box::new(OpenAiChat::new(OpenAiChatConfig {
            api_key: Secret::new("sk-wrong-secret"),
            ..openai_cfg(&fake)
        })) as Box<dyn ChatModel>,
        Box::new(AnthropicChat::new(AnthropicConfig {
            api_key: Secret::new("sk-wrong-secret"),
            ..anthropic_cfg(&fake)
        })),
    ];
    for model in wrong_key {
        let err = model.stream(ask("Oi")).await.unwrap_err();
        assert!(
            matches!(&err, ProviderError::Refused(m) if m.contains("401") && !m.contains("wrong-secret")),
            "{}: {err}",
            model.name()
        );
    }
    let unknown_model = OpenAiChat::new(OpenAiChatConfig {
        model: "gpt-nope".into(),
        ..openai_cfg(&fake)
    });
    let err = unknown_model.stream(ask("Oi")).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Refused(m) if m.contains("404") && m.contains("model_not_found")),
        "{err}"
    );
    for model in clients(&fake) {
        fake.set_fault_sequence(vec![
            Fault::Status(429),
            Fault::Status(500),
            Fault::Status(400),
        ]);
        let results = [
            model.stream(ask("Oi")).await.unwrap_err(),
            model.stream(ask("Oi")).await.unwrap_err(),
            model.stream(ask("Oi")).await.unwrap_err(),
        ];
        assert!(
            matches!(&results[0], ProviderError::Unavailable(m) if m.contains("429")),
            "{}",
            results[0]
        );
        assert!(
            matches!(&results[1], ProviderError::Unavailable(m) if m.contains("500")),
            "{}",
            results[1]
        );
        assert!(
            matches!(&results[2], ProviderError::Refused(m) if m.contains("400")),
            "{}",
            results[2]
        );
        // The plan ran out: the next request is answered.
        let events = ask_model(model.as_ref(), ask("Oi")).await;
        assert_eq!(text(&events), REPLY);
    }
    assert_eq!(fake.stats().refused_by_fault, 6);
}

#[tokio::test]
async fn a_connection_dropped_or_ended_mid_stream_is_unavailable() {
    let fake = fake(fast()).await;
    for fault in [Fault::DropAfter(3), Fault::EndAfter(3)] {
        for model in clients(&fake) {
            fake.set_fault(fault.clone());
            let events = ask_model(model.as_ref(), ask("Oi")).await;
            assert_eq!(
                text(&events),
                "Claro! Posso ajudar ",
                "{fault:?} {}",
                model.name()
            );
            let err = last_error(&events);
            assert!(
                matches!(err, ProviderError::Unavailable(_)),
                "{fault:?}: {err}"
            );
            if fault == Fault::EndAfter(3) {
                assert_eq!(err, ProviderError::Unavailable("stream ended early".into()));
            }
        }
    }
}

#[tokio::test]
async fn deadlines_before_headers_first_token_and_mid_answer() {
    let fake = fake(FakeLlmConfig {
        first_token_ms: 800,
        ..fast()
    })
    .await;
    let short = |first_token_timeout_ms| -> Vec<Box<dyn ChatModel>> {
        vec![
            Box::new(OpenAiChat::new(OpenAiChatConfig {
                connect_timeout_ms: 300,
                first_token_timeout_ms,
                idle_timeout_ms: 300,
                ..openai_cfg(&fake)
            })),
            Box::new(AnthropicChat::new(AnthropicConfig {
                connect_timeout_ms: 300,
                first_token_timeout_ms,
                idle_timeout_ms: 300,
                ..anthropic_cfg(&fake)
            })),
        ]
    };
    for model in short(300) {
        let started = Instant::now();
        let events = ask_model(model.as_ref(), ask("Oi")).await;
        assert_eq!(
            events,
            vec![ChatEvent::Error(ProviderError::Timeout)],
            "{}",
            model.name()
        );
        assert!(started.elapsed() < Duration::from_millis(2000));
    }
    fake.set_fault(Fault::HangBeforeHeaders);
    for model in short(300) {
        let started = Instant::now();
        let err = model.stream(ask("Oi")).await.unwrap_err();
        assert_eq!(err, ProviderError::Timeout, "{}", model.name());
        assert!(started.elapsed() < Duration::from_millis(2000));
    }
    // The first token in time (the fake's 0.8 s), then nothing for longer than idle.
    fake.set_fault(Fault::HangAfterFirstToken);
    for model in short(4000) {
        let events = ask_model(model.as_ref(), ask("Oi")).await;
        assert_eq!(
            events,
            vec![
                ChatEvent::Text("Claro! ".into()),
                ChatEvent::Error(ProviderError::Timeout)
            ],
            "{}",
            model.name()
        );
    }
    assert_eq!(fake.stats().hung, 2);
}

#[tokio::test]
async fn dropping_the_receiver_closes_the_connection() {
    let fake = fake(FakeLlmConfig {
        reply_text: REPLY.repeat(10),
        token_interval_ms: 30,
        ..fast()
    })
    .await;
    for (n, model) in clients(&fake).into_iter().enumerate() {
        let mut rx = model.stream(ask("Oi")).await.unwrap();
        let first = tokio::time::timeout(WAIT, rx.recv()).await.unwrap();
        assert_eq!(first, Some(ChatEvent::Text("Claro! ".into())));
        drop(rx);
        let stats = fake
            .wait_stats(WAIT, |s| s.streams_cancelled == n as u64 + 1)
            .await
            .unwrap_or_else(|s| panic!("{}: the fake never saw the close: {s:?}", model.name()));
        assert_eq!(stats.streams_completed, 0);
        assert_eq!(stats.streams_active, 0);
    }
}

#[tokio::test]
async fn events_split_across_writes_with_crlf_comments_and_null_choices() {
    let fake = fake(FakeLlmConfig {
        reply_text: "Olá, ação às 15h — ótimo.".into(),
        wire: WireStyle {
            split_writes: true,
            crlf: true,
            comments: true,
            usage_choices_null: true,
            tool_args_piece: 3,
            ..WireStyle::default()
        },
        ..fast()
    })
    .await;
    for model in clients(&fake) {
        let events = ask_model(model.as_ref(), ask("Oi")).await;
        assert_eq!(
            text(&events),
            "Olá, ação às 15h — ótimo.",
            "{}",
            model.name()
        );
        assert_eq!(events.last(), Some(&ChatEvent::Done(StopReason::Done)));
        let events = ask_model(model.as_ref(), ask("telefone")).await;
        let calls = calls(&events);
        assert_eq!(
            json_of(&calls[1].arguments),
            json_of(MESSAGE_ARGS),
            "{}",
            model.name()
        );
    }
    assert_eq!(fake.stats().streams_completed, 4);
}

#[tokio::test]
async fn max_tokens_cuts_the_answer_with_length() {
    let fake = fake(fast()).await;
    for model in clients(&fake) {
        let request = ChatRequest {
            max_tokens: Some(3),
            ..ask("Oi")
        };
        let events = ask_model(model.as_ref(), request).await;
        assert_eq!(text(&events), "Claro! Posso ajudar ");
        assert_eq!(events.last(), Some(&ChatEvent::Done(StopReason::Length)));
    }
    let stats = fake.stats();
    assert!(stats.accepted.iter().all(|r| r.max_tokens == Some(3)));
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let openai = OpenAiChat::new(OpenAiChatConfig {
        url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        api_key: Secret::new("k"),
        ..Default::default()
    });
    let err = openai.stream(ask("Oi")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn a_hundred_answers_at_once() {
    let fake = fake(FakeLlmConfig {
        first_token_ms: 100,
        token_interval_ms: 5,
        ..fast()
    })
    .await;
    let openai = std::sync::Arc::new(OpenAiChat::new(openai_cfg(&fake)));
    let anthropic = std::sync::Arc::new(AnthropicChat::new(anthropic_cfg(&fake)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let model: std::sync::Arc<dyn ChatModel> = if i % 2 == 0 {
                openai.clone()
            } else {
                anthropic.clone()
            };
            tokio::spawn(async move { text(&ask_model(model.as_ref(), ask("Oi")).await) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), REPLY);
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let stats = fake.stats();
    assert_eq!((stats.streams_completed, stats.streams_active), (100, 0));
}
