//! Chat models with streaming and tool calls, for cascaded agents and the turn-based API.
//!
//! One request per answer: the whole conversation goes in ([`ChatRequest`]), the answer
//! streams out as [`ChatEvent`]s in order. Text comes in whatever pieces the provider sends;
//! tool calls come out whole (fragments joined by the client). Dropping the receiver
//! cancels the request (barge-in).

pub mod anthropic;
mod http_stream;
pub mod openai_chat;
mod sse;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::ProviderError;
use crate::agent::ToolSpec;

/// One message of the conversation, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    /// What the caller said (or typed: DTMF, text frames).
    User(String),
    /// What the agent said, and the tools it called in the same answer.
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering [`ToolCall::id`].
    ToolResult { call_id: String, output: String },
}

/// A complete tool call: `arguments` is the JSON text the model produced (validated by the
/// caller of the tool, not here).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A request for the next answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// System prompt (instructions + knowledge).
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    /// Upper bound on the answer's tokens; `None` keeps the client's configured default.
    pub max_tokens: Option<u32>,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// It finished its answer.
    Done,
    /// It wants the tool calls it sent answered, then to be asked again.
    ToolCalls,
    /// It hit the token limit.
    Length,
    /// Anything else the provider says (`content_filter`, `refusal`, …).
    Other(String),
}

/// The answer, as it streams.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The next piece of answer text.
    Text(String),
    /// A tool call, complete.
    ToolCall(ToolCall),
    /// The end of the answer. Nothing follows.
    Done(StopReason),
    /// The stream broke (mid-answer error event, disconnect, bad chunk). Nothing follows.
    Error(ProviderError),
}

/// A streaming chat model.
pub trait ChatModel: Send + Sync {
    /// Short name for logs and metrics (`openai_chat`, `groq`, `ollama`, `anthropic`).
    fn name(&self) -> &'static str;

    /// Starts an answer. Resolves when the provider accepted the request (HTTP status
    /// known); errors before that (refused, unreachable, timeout) come back here.
    fn stream(
        &self,
        request: ChatRequest,
    ) -> BoxFuture<'static, Result<mpsc::Receiver<ChatEvent>, ProviderError>>;
}
