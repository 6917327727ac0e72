//! A strict fake of the streaming chat APIs, for tests, the load tool and the offline
//! demo. Wire facts: /work/shared/reference/providers.md §5 and §9.
//!
//! One HTTP server (axum) serves `POST /v1/chat/completions` (OpenAI-compatible; with
//! [`ChatStyle::Ollama`] it answers as Ollama does: whole tool calls, `fp_ollama`, no key
//! needed) and `POST /v1/messages` (Anthropic). Each request is checked as the real
//! service would (auth header, `anthropic-version`, `stream: true`, model, message roles
//! and order, tool results answering earlier tool calls, tool shapes) and refused with
//! that provider's error JSON. An accepted one is answered from a script: the default
//! pt-BR reply, or a [`ToolRule`]'s tool calls when the last user message contains its
//! phrase, or, after tool results, a reply quoting them. The answer streams as SSE with a
//! first-token delay and a pace per token, cut as [`WireStyle`] says (tiny tool-argument
//! pieces, events split over several writes, `\r\n`, comments), and [`Fault`]s break it
//! on purpose. [`FakeLlmStats`] keeps every accepted request (its messages whole) and how
//! each stream ended.
//!
//! Each answer is one small task; nothing is rendered ahead, so hundreds of concurrent
//! requests cost little.

mod anthropic_api;
mod body;
mod http_api;
mod openai_api;
mod render;
mod script;
mod stats;
#[cfg(test)]
mod strict_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::sync::watch;

use crate::fake_common::server::{self, FaultPlan, ServerTask};

pub use stats::{Api, FakeLlmStats, RecordedRequest};

/// How `/v1/chat/completions` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChatStyle {
    /// OpenAI (and Groq): tool calls in fragments keyed by `index`; a key is required.
    #[default]
    OpenAi,
    /// Ollama: each tool call whole in one chunk, `system_fingerprint: "fp_ollama"`,
    /// `role` on every delta, and any key (or none) accepted.
    Ollama,
}

/// A tool call the fake makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedCall {
    pub name: String,
    /// JSON object text.
    pub arguments: String,
}

impl ScriptedCall {
    pub fn new(name: &str, arguments: &str) -> Self {
        Self {
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

/// "If the last user message contains `when_user_says` (any case), say `say_first` and
/// call `calls`" (several: parallel calls). Applies only when the request declares
/// every tool it names, as a real model could not call the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRule {
    pub when_user_says: String,
    /// Text before the calls (empty: none).
    pub say_first: String,
    pub calls: Vec<ScriptedCall>,
}

/// "When the system prompt contains `when_system_contains` (any case), answer with
/// `replies` in turn, one per matching request, the last one repeating". Checked before
/// the default reply (tool rules and tool results go first). Clones share the turn.
#[derive(Debug, Clone)]
pub struct ReplyRule {
    pub when_system_contains: String,
    pub replies: Vec<String>,
    served: Arc<AtomicUsize>,
}

impl ReplyRule {
    pub fn new(when_system_contains: &str, replies: Vec<String>) -> Self {
        Self {
            when_system_contains: when_system_contains.into(),
            replies,
            served: Arc::default(),
        }
    }

    /// The reply for the next matching request.
    pub(crate) fn next_reply(&self) -> String {
        let n = self.served.fetch_add(1, Ordering::SeqCst);
        let last = self.replies.len().saturating_sub(1);
        self.replies.get(n.min(last)).cloned().unwrap_or_default()
    }
}

/// How the answer is cut and framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireStyle {
    /// Words per text delta (a word keeps its trailing space).
    pub words_per_chunk: usize,
    /// Characters per tool-argument fragment (OpenAI `arguments`, Anthropic
    /// `partial_json`); 0: the whole arguments in one.
    pub tool_args_piece: usize,
    /// Alternate the fragments of parallel OpenAI tool calls (they only join by `index`).
    pub interleave_tool_calls: bool,
    /// Write each SSE event in several pieces (cut after its first byte, in the middle and
    /// before its last byte), each its own HTTP chunk.
    pub split_writes: bool,
    /// End lines with `\r\n`.
    pub crlf: bool,
    /// Start the stream with `: comment` lines (keep-alives, as some proxies send).
    pub comments: bool,
    /// The OpenAI usage chunk says `"choices": null` instead of `[]`.
    pub usage_choices_null: bool,
}

impl Default for WireStyle {
    fn default() -> Self {
        Self {
            words_per_chunk: 1,
            tool_args_piece: 8,
            interleave_tool_calls: false,
            split_writes: false,
            crlf: false,
            comments: false,
            usage_choices_null: false,
        }
    }
}

/// A failure to inject, for requests made after it is set. "Content chunks" are the text
/// deltas and tool-call pieces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Refuse the request with this HTTP status and the provider's error body.
    Status(u16),
    /// After this many content chunks, send the provider's error event and end.
    ErrorEventAfter(usize),
    /// After this many content chunks, break the connection (no chunked-body end).
    DropAfter(usize),
    /// After this many content chunks, end the body cleanly but without `[DONE]`,
    /// `finish_reason` or `message_stop`.
    EndAfter(usize),
    /// Take the request and never send the headers.
    HangBeforeHeaders,
    /// Send the first content chunk, then nothing (the connection stays open).
    HangAfterFirstToken,
}

#[derive(Debug, Clone)]
pub struct FakeLlmConfig {
    /// `Authorization: Bearer …` on `/v1/chat/completions` (not with Ollama) and
    /// `x-api-key` on `/v1/messages`.
    pub api_key: String,
    /// Models accepted (others get the provider's "model not found"); empty: any.
    pub models: Vec<String>,
    pub chat_style: ChatStyle,
    /// The answer when no rule applies.
    pub reply_text: String,
    pub tool_rules: Vec<ToolRule>,
    /// Scripted replies chosen by the system prompt (analysis, scorecard …).
    pub reply_rules: Vec<ReplyRule>,
    /// The answer after tool results: `{result}` becomes their outputs joined by `; `.
    pub after_tool_result: String,
    /// From the headers to the first content chunk.
    pub first_token_ms: u64,
    /// Between content chunks.
    pub token_interval_ms: u64,
    pub wire: WireStyle,
    pub fault: Fault,
}

impl Default for FakeLlmConfig {
    /// Key `sk-fake-llm`; the clients' default models; a pt-BR reply; first token after
    /// 300 ms, then one word every 20 ms.
    fn default() -> Self {
        Self {
            api_key: "sk-fake-llm".into(),
            models: vec![
                "gpt-4o-mini".into(),
                "llama-3.3-70b-versatile".into(),
                "llama3.2".into(),
                "claude-haiku-4-5".into(),
            ],
            chat_style: ChatStyle::OpenAi,
            reply_text: "Claro! Posso ajudar com isso. Qual é o seu nome, por favor?".into(),
            tool_rules: Vec::new(),
            reply_rules: Vec::new(),
            after_tool_result: "Pronto, encontrei: {result}.".into(),
            first_token_ms: 300,
            token_interval_ms: 20,
            wire: WireStyle::default(),
            fault: Fault::None,
        }
    }
}

/// What every request of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakeLlmConfig,
    pub stats: stats::StatsRecorder,
    pub faults: FaultPlan<Fault>,
    pub shutdown: watch::Receiver<bool>,
}

/// A running fake server; it stops when dropped.
pub struct FakeLlm {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: ServerTask,
}

impl FakeLlm {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeLlmConfig) -> anyhow::Result<FakeLlm> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    /// Listens on `addr` (the demo may want a fixed port).
    pub async fn start_on(cfg: FakeLlmConfig, addr: SocketAddr) -> anyhow::Result<FakeLlm> {
        check(&cfg)?;
        let (listener, addr) = server::bind(addr).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            cfg,
            stats: Default::default(),
            shutdown: shutdown_rx,
        });
        let app = http_api::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake LLM server stopped");
            }
        });
        Ok(FakeLlm {
            shared,
            addr,
            _server: ServerTask::new(shutdown, task),
        })
    }

    /// `http://127.0.0.1:PORT`, the base of both endpoints.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OpenAI-compatible endpoint (what `OpenAiChatConfig::url` wants).
    pub fn chat_completions_url(&self) -> String {
        format!("{}{}", self.url(), http_api::CHAT_COMPLETIONS)
    }

    /// The Anthropic endpoint (what `AnthropicConfig::url` wants).
    pub fn messages_url(&self) -> String {
        format!("{}{}", self.url(), http_api::MESSAGES)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    pub fn stats(&self) -> FakeLlmStats {
        self.shared.stats.snapshot()
    }

    /// Waits (without polling) until the stats satisfy `ok`, at most `within`; the last
    /// stats either way.
    pub async fn wait_stats(
        &self,
        within: Duration,
        ok: impl Fn(&FakeLlmStats) -> bool,
    ) -> Result<FakeLlmStats, FakeLlmStats> {
        self.shared.stats.wait(within, ok).await
    }

    /// Changes the fault for requests made from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }

    /// One fault per request, in order, then none (e.g. a 429, then a good answer).
    pub fn set_fault_sequence(&self, faults: Vec<Fault>) {
        self.shared.faults.set_sequence(faults, Fault::None);
    }
}

fn check(cfg: &FakeLlmConfig) -> anyhow::Result<()> {
    if cfg.wire.words_per_chunk == 0 {
        bail!("words_per_chunk must be positive");
    }
    for rule in &cfg.reply_rules {
        if rule.when_system_contains.is_empty() || rule.replies.is_empty() {
            bail!("a reply rule needs a phrase and at least one reply");
        }
    }
    for rule in &cfg.tool_rules {
        if rule.when_user_says.is_empty() || rule.calls.is_empty() {
            bail!("a tool rule needs a phrase and at least one call");
        }
        for call in &rule.calls {
            let object = serde_json::from_str::<serde_json::Value>(&call.arguments)
                .is_ok_and(|v| v.is_object());
            if call.name.is_empty() || !object {
                bail!(
                    "tool call {:?} needs a name and a JSON object of arguments",
                    call.name
                );
            }
        }
    }
    Ok(())
}
