//! The model's side of a turn: think, maybe call the configured tool, stream the reply
//! faster than real time, then wait out its playback before `turnComplete` (§2.4–2.5).
//!
//! Reply order: `modelTurn` audio chunks (each followed by its `outputTranscription`
//! piece), `generationComplete` once all audio is out, `turnComplete` when the reply would
//! have finished playing. A barge-in while streaming or playing sends `interrupted` and
//! `turnComplete` instead (no `generationComplete` if it was not sent yet).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::reply::OUTPUT_RATE;
use super::session::Session;
use super::stats::Count;

/// The model turn in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    /// The caller's turn ended; output starts at this instant.
    Thinking(Instant),
    /// A `toolCall` is out; nothing happens until its `toolResponse`.
    AwaitingTool,
    Speaking {
        next_chunk: usize,
        next_at: Instant,
        interval: Duration,
        /// When the reply would finish playing in real time.
        playback_end: Instant,
    },
    /// All audio sent (`generationComplete`); `turnComplete` at the end of playback.
    Playing { playback_end: Instant },
}

/// Progress of the configured function call (`FakeGeminiConfig::tool_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolState {
    Unused,
    Awaiting {
        id: String,
        name: String,
    },
    /// Cancelled by a barge-in (`toolCallCancellation` sent).
    Cancelled(String),
    Answered,
}

impl Response {
    fn wake_at(&self) -> Option<Instant> {
        match self {
            Self::Thinking(at) => Some(*at),
            Self::AwaitingTool => None,
            Self::Speaking { next_at, .. } => Some(*next_at),
            Self::Playing { playback_end } => Some(*playback_end),
        }
    }
}

impl Session {
    /// When the session next has something to send on its own.
    pub fn next_wake(&self) -> Option<Instant> {
        self.response.as_ref().and_then(Response::wake_at)
    }

    pub fn on_timer(&mut self, now: Instant) {
        while let Some(response) = self
            .response
            .clone()
            .filter(|r| r.wake_at().is_some_and(|at| at <= now))
        {
            match response {
                Response::Thinking(_) => self.begin_output(now),
                Response::Speaking { .. } => self.send_chunk(),
                Response::Playing { .. } => self.turn_complete(),
                Response::AwaitingTool => return,
            }
        }
    }

    /// Starts a reply after the think time.
    pub(super) fn think(&mut self, now: Instant) {
        let think = Duration::from_millis(self.shared.cfg.think_ms);
        self.response = Some(Response::Thinking(now + think));
    }

    /// The think time is over: the tool call (first turn, when declared), or the audio.
    fn begin_output(&mut self, now: Instant) {
        if self.tool == ToolState::Unused {
            let declared = |name: &str| {
                self.setup
                    .as_ref()
                    .is_some_and(|s| s.functions.iter().any(|f| f == name))
            };
            if let Some((name, args)) = self.shared.cfg.tool_call.clone() {
                if declared(&name) {
                    return self.call_tool(name, &args);
                }
            }
        }
        self.shared.stats.count(Count::Response);
        let cfg = &self.shared.cfg;
        let interval = Duration::from_secs_f64(
            f64::from(cfg.chunk_ms) / 1000.0 / f64::from(cfg.realtime_factor),
        );
        self.response = Some(Response::Speaking {
            next_chunk: 0,
            next_at: now,
            interval,
            playback_end: now + self.shared.reply.duration,
        });
    }

    fn call_tool(&mut self, name: String, args: &str) {
        let id = self.new_id("fc");
        // The config is checked at start: args is a JSON object.
        let args: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
        self.emit(json!({"toolCall": {"functionCalls": [{"id": id, "name": name, "args": args}]}}));
        self.shared.stats.count(Count::ToolCall);
        self.tool = ToolState::Awaiting { id, name };
        self.response = Some(Response::AwaitingTool);
    }

    /// A `functionResponses` entry: it must answer the pending call.
    pub(super) fn answer_tool(&mut self, id: &str, name: &str, now: Instant) -> Result<(), String> {
        match &self.tool {
            ToolState::Awaiting {
                id: want,
                name: want_name,
            } => {
                if id != want {
                    return Err(format!(
                        "no pending function call with id {id:?} (pending: {want})"
                    ));
                }
                if name != want_name {
                    return Err(format!(
                        "function response for {id} names {name:?}, the call was {want_name:?}"
                    ));
                }
                self.shared.stats.count(Count::ToolResponse);
                self.tool = ToolState::Answered;
                self.think(now);
                Ok(())
            }
            ToolState::Cancelled(cancelled) if cancelled == id => Err(format!(
                "response for function call {id}, which was cancelled"
            )),
            _ => Err(format!("no pending function call with id {id:?}")),
        }
    }

    fn send_chunk(&mut self) {
        let Some(Response::Speaking {
            next_chunk,
            next_at,
            interval,
            playback_end,
        }) = self.response.clone()
        else {
            return;
        };
        let reply = self.shared.reply.clone();
        if let Some(chunk) = reply.chunks.get(next_chunk) {
            let mime = format!("audio/pcm;rate={OUTPUT_RATE}");
            self.emit(json!({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": mime, "data": chunk}}]}}}));
            let transcribe = self.setup.as_ref().is_some_and(|s| s.output_transcription);
            if let Some(piece) = reply.text_pieces.get(next_chunk).filter(|p| !p.is_empty()) {
                if transcribe {
                    self.emit(json!({"serverContent": {"outputTranscription": {"text": piece}}}));
                }
            }
        }
        if next_chunk + 1 < reply.chunks.len() {
            self.response = Some(Response::Speaking {
                next_chunk: next_chunk + 1,
                next_at: next_at + interval,
                interval,
                playback_end,
            });
        } else {
            self.emit(json!({"serverContent": {"generationComplete": true}}));
            self.response = Some(Response::Playing { playback_end });
        }
    }

    fn turn_complete(&mut self) {
        self.emit(json!({"serverContent": {"turnComplete": true}}));
        self.response = None;
        if std::mem::take(&mut self.queued_turn) {
            self.think(Instant::now());
        }
    }

    /// The caller spoke over the model turn.
    pub(super) fn barge_in(&mut self) {
        match self.response.take() {
            None => {}
            // Nothing said yet: the new speech simply joins the caller's turn.
            Some(Response::Thinking(_)) => {}
            Some(Response::AwaitingTool) => {
                if let ToolState::Awaiting { id, .. } = self.tool.clone() {
                    self.emit(json!({"toolCallCancellation": {"ids": [id]}}));
                    self.tool = ToolState::Cancelled(id);
                }
            }
            Some(Response::Speaking { .. } | Response::Playing { .. }) => {
                self.shared.stats.count(Count::Interrupted);
                self.emit(json!({"serverContent": {"interrupted": true}}));
                self.emit(json!({"serverContent": {"turnComplete": true}}));
            }
        }
    }
}
