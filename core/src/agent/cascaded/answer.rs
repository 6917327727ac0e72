//! One answer of a cascaded agent: the LLM streams (with tool rounds), its text is cut
//! into pieces, each piece is checked by the prompt guard and goes to TTS at once, and the
//! audio flows back. The LLM and TTS run side by side (`tokio::join!`), so the first
//! sentence is spoken while the model is still writing the second. Aborting the task
//! drops both streams: that is how barge-in cancels them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;

use super::guard::{PromptGuard, Violation};
use super::sentences::SentenceSplitter;
use super::speaker::Speaker;
use crate::providers::llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, ToolCall};
use crate::providers::ProviderError;

/// What an answer tells its session, in order.
#[derive(Debug)]
pub(super) enum AnswerEvent {
    /// A piece of text sent to TTS.
    Piece(String),
    /// Audio at the session's output rate.
    Audio(Vec<i16>),
    /// The LLM wants a tool run; the result comes back on the answer's tool channel.
    ToolCall(ToolCall),
    /// A finished tool round for the history: the assistant's call and the results.
    Round(Vec<ChatMessage>),
    /// The guard stopped the answer; the safe reply is spoken instead.
    Violation(Violation),
    /// Everything was said. `text`: the last round's words (the history's assistant line).
    Finished { text: String },
    /// No LLM or no TTS could produce the answer.
    Failed(ProviderError),
}

/// What to say: a fixed line (greeting), or the LLM's answer to `request`.
pub(super) enum Script {
    Fixed(String),
    Llm(ChatRequest),
}

pub(super) struct Answer {
    pub script: Script,
    pub llm: Vec<Arc<dyn ChatModel>>,
    pub first_token_timeout: Duration,
    pub tool_timeout: Duration,
    pub max_tool_rounds: u32,
    pub guard: Arc<PromptGuard>,
    pub speaker: Speaker,
}

impl Answer {
    /// Runs the answer to its end; tool results arrive on `tool_results` (call id, output).
    pub async fn run(
        self,
        out: mpsc::Sender<AnswerEvent>,
        tool_results: mpsc::Receiver<(String, String)>,
    ) {
        let (pieces_tx, pieces_rx) = mpsc::channel(64);
        let speaking = self.speaker.run(pieces_rx, out.clone());
        let writer = Writer {
            pieces: pieces_tx,
            out: out.clone(),
            guard: self.guard.clone(),
            said: String::new(),
            stopped: false,
        };
        let thinking = think(
            self.script,
            &self.llm,
            self.first_token_timeout,
            self.tool_timeout,
            self.max_tool_rounds,
            writer,
            tool_results,
        );
        let (said, spoken) = tokio::join!(thinking, speaking);
        let end = match (said, spoken) {
            (Ok(text), Ok(())) => AnswerEvent::Finished { text },
            (Err(e), _) | (_, Err(e)) => AnswerEvent::Failed(e),
        };
        let _ = out.send(end).await;
    }
}

/// Sends pieces to TTS through the guard.
struct Writer {
    pieces: mpsc::Sender<String>,
    out: mpsc::Sender<AnswerEvent>,
    guard: Arc<PromptGuard>,
    /// Everything said in this answer, for the guard's check.
    said: String,
    /// The guard stopped the answer: nothing more is spoken.
    stopped: bool,
}

impl Writer {
    /// Speaks `piece` unless the guard objects; then the safe reply is spoken instead and
    /// the answer stops. Err: nobody listens any more (cancelled).
    async fn say(&mut self, piece: String) -> Result<(), ()> {
        if self.stopped {
            return Ok(());
        }
        let candidate = format!("{} {piece}", self.said);
        let piece = match self.guard.check(&candidate) {
            Ok(()) => {
                self.said = candidate;
                piece
            }
            Err(violation) => {
                warn!(?violation, "answer stopped by the prompt guard");
                self.stopped = true;
                self.out
                    .send(AnswerEvent::Violation(violation))
                    .await
                    .map_err(|_| ())?;
                self.guard.settings().safe_reply.clone()
            }
        };
        self.out
            .send(AnswerEvent::Piece(piece.clone()))
            .await
            .map_err(|_| ())?;
        self.pieces.send(piece).await.map_err(|_| ())
    }
}

/// The LLM side. Returns the last round's text as the history should keep it.
async fn think(
    script: Script,
    llm: &[Arc<dyn ChatModel>],
    first_token_timeout: Duration,
    tool_timeout: Duration,
    max_tool_rounds: u32,
    mut writer: Writer,
    mut tool_results: mpsc::Receiver<(String, String)>,
) -> Result<String, ProviderError> {
    let cancelled = || ProviderError::Unavailable("answer cancelled".into());
    let mut request = match script {
        Script::Fixed(text) => {
            let mut splitter = SentenceSplitter::default();
            for piece in splitter.push(&text).into_iter().chain(splitter.finish()) {
                writer.say(piece).await.map_err(|_| cancelled())?;
            }
            return Ok(text);
        }
        Script::Llm(request) => request,
    };
    let mut round = 0;
    loop {
        if round >= max_tool_rounds {
            request.tools.clear(); // enough tools: answer in words now
        }
        let (text, calls) = stream_round(llm, &request, first_token_timeout, &mut writer).await?;
        if writer.stopped {
            return Ok(writer.guard.settings().safe_reply.clone());
        }
        if calls.is_empty() {
            return Ok(text);
        }
        let mut messages = vec![ChatMessage::Assistant {
            text,
            tool_calls: calls.clone(),
        }];
        for call in &calls {
            writer
                .out
                .send(AnswerEvent::ToolCall(call.clone()))
                .await
                .map_err(|_| cancelled())?;
        }
        for call in &calls {
            let output = wait_tool_result(&mut tool_results, &call.id, tool_timeout).await;
            messages.push(ChatMessage::ToolResult {
                call_id: call.id.clone(),
                output,
            });
        }
        request.messages.extend(messages.iter().cloned());
        writer
            .out
            .send(AnswerEvent::Round(messages))
            .await
            .map_err(|_| cancelled())?;
        round += 1;
    }
}

/// One LLM request, through the providers in order: a provider that refuses, times out
/// before its first token, or breaks before anything was spoken is replaced by the next.
/// After the first piece was spoken, a break ends the answer with what was said.
async fn stream_round(
    llm: &[Arc<dyn ChatModel>],
    request: &ChatRequest,
    first_token_timeout: Duration,
    writer: &mut Writer,
) -> Result<(String, Vec<ToolCall>), ProviderError> {
    let cancelled = || ProviderError::Unavailable("answer cancelled".into());
    let mut last_error = ProviderError::Config("no LLM provider configured".into());
    for model in llm {
        let (mut stream, first) = match first_event(model.as_ref(), request, first_token_timeout)
            .await
        {
            Ok(started) => started,
            Err(e) => {
                warn!(provider = model.name(), error = %e, "LLM failed before its first token; trying the next");
                last_error = e;
                continue;
            }
        };
        let mut splitter = SentenceSplitter::default();
        let mut text = String::new();
        let mut calls = Vec::new();
        let mut spoke = false;
        let mut broke_early = false;
        let mut next = Some(first);
        loop {
            let event = match next.take() {
                Some(e) => e,
                None => stream.recv().await.unwrap_or_else(|| {
                    ChatEvent::Error(ProviderError::Unavailable("LLM stream closed".into()))
                }),
            };
            match event {
                ChatEvent::Text(t) => {
                    text.push_str(&t);
                    for piece in splitter.push(&t) {
                        spoke = true;
                        writer.say(piece).await.map_err(|_| cancelled())?;
                    }
                    if writer.stopped {
                        return Ok((text, Vec::new()));
                    }
                }
                ChatEvent::ToolCall(call) => calls.push(call),
                ChatEvent::Done(_) => break,
                ChatEvent::Error(e) if !spoke && calls.is_empty() => {
                    warn!(provider = model.name(), error = %e, "LLM broke before speaking; trying the next");
                    last_error = e;
                    broke_early = true;
                    break;
                }
                ChatEvent::Error(e) => {
                    warn!(provider = model.name(), error = %e, "LLM broke mid-answer; ending with what was said");
                    calls.clear();
                    break;
                }
            }
        }
        if broke_early {
            continue;
        }
        if let Some(rest) = splitter.finish() {
            writer.say(rest).await.map_err(|_| cancelled())?;
        }
        return Ok((text.trim().to_string(), calls));
    }
    Err(last_error)
}

/// Starts a request and waits for its first event, within `timeout`.
async fn first_event(
    model: &dyn ChatModel,
    request: &ChatRequest,
    timeout: Duration,
) -> Result<(mpsc::Receiver<ChatEvent>, ChatEvent), ProviderError> {
    let started = async {
        let mut rx = model.stream(request.clone()).await?;
        match rx.recv().await {
            Some(ChatEvent::Error(e)) => Err(e),
            Some(event) => Ok((rx, event)),
            None => Err(ProviderError::Unavailable("LLM stream closed".into())),
        }
    };
    tokio::time::timeout(timeout, started)
        .await
        .map_err(|_| ProviderError::Timeout)?
}

/// The result of tool call `id`, or an error the LLM can read when it does not come.
async fn wait_tool_result(
    results: &mut mpsc::Receiver<(String, String)>,
    id: &str,
    timeout: Duration,
) -> String {
    let wait = async {
        while let Some((call_id, output)) = results.recv().await {
            if call_id == id {
                return Some(output);
            }
        }
        None
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(Some(output)) => output,
        Ok(None) | Err(_) => r#"{"error":"the tool did not answer in time"}"#.to_string(),
    }
}
