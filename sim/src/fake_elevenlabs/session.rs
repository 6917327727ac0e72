//! One fake conversation's state machine: client frames in, server messages into the
//! outbox, timers for pings and answers. No I/O here; [`super::connection`] feeds it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::answer::{Answer, ToolState};
use super::format::AudioFormat;
use super::stats::Count;
use super::validate::{self, ClientFrame};
use super::{Fault, Shared};
use crate::fake_common::energy_vad::{EnergyVad, VadEvent};

/// Conversation numbers, unique in the process.
static CONVERSATION_NO: AtomicU64 = AtomicU64::new(1);

/// What the [`Fault::GarbageFrame`] sends.
pub(crate) const GARBAGE: &str = "\u{1}this is not JSON {";

pub(crate) struct Session {
    pub(super) shared: Arc<Shared>,
    /// Server messages waiting to be written.
    pub(super) out: Vec<String>,
    fault: Fault,
    /// The conversation began (its init came, or another message came first).
    started: bool,
    /// The metadata went out; with [`Fault::NoInitiationMetadata`] it never does.
    live: bool,
    /// One counter for pings and answers, as the service's ids seem to be (unconfirmed).
    next_event_id: u64,
    input: AudioFormat,
    vad: EnergyVad,
    /// Pings waiting for their pong: (event_id, sent at).
    pings: VecDeque<(u64, Instant)>,
    next_ping_at: Option<Instant>,
    pub(super) answer: Answer,
    pub(super) tool: ToolState,
    /// `agent.first_message` from the client's override.
    first_message: Option<String>,
}

impl Session {
    pub fn new(shared: Arc<Shared>, fault: Fault) -> Self {
        let input = shared.cfg.input_format;
        let vad = EnergyVad::new(
            shared.cfg.vad_threshold_rms,
            shared.cfg.silence_ms,
            input.rate(),
        );
        Self {
            shared,
            out: Vec::new(),
            fault,
            started: false,
            live: false,
            next_event_id: 0,
            input,
            vad,
            pings: VecDeque::new(),
            next_ping_at: None,
            answer: Answer::Idle,
            tool: ToolState::Unused,
            first_message: None,
        }
    }

    pub(super) fn emit(&mut self, message: Value) {
        self.out.push(message.to_string());
    }

    pub(super) fn next_id(&mut self) -> u64 {
        self.next_event_id += 1;
        self.next_event_id
    }

    pub(super) fn protocol_error(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::debug!(%message, "fake ElevenLabs: client protocol error");
        self.shared.stats.protocol_error(message);
    }

    pub fn binary_frame(&mut self) {
        self.protocol_error("binary frame: client messages are JSON text frames");
    }

    pub fn on_client_text(&mut self, text: &str, now: Instant) {
        let frame = match validate::parse(text) {
            Ok(f) => f,
            Err(e) => return self.protocol_error(e),
        };
        if let ClientFrame::Init {
            overrides,
            dynamic_variables,
            first_message,
        } = frame
        {
            if self.started {
                return self.protocol_error(
                    "conversation_initiation_client_data after the conversation started",
                );
            }
            self.shared.stats.init(overrides, dynamic_variables);
            self.first_message = first_message;
            return self.start(now);
        }
        if !self.started {
            // The real service accepts audio at once; record that the init was skipped.
            self.shared.stats.add(Count::InitNotFirst);
            self.start(now);
        }
        if !self.live {
            return;
        }
        match frame {
            ClientFrame::Audio(bytes) => self.audio(&bytes, now),
            ClientFrame::Pong { event_id } => self.pong(event_id),
            ClientFrame::ToolResult {
                tool_call_id,
                message,
            } => self.tool_result(&tool_call_id, message, now),
            ClientFrame::ContextualUpdate(text) => self.shared.stats.contextual_update(&text),
            ClientFrame::UserMessage(text) => {
                self.shared.stats.user_message(&text);
                self.user_message(now);
            }
            ClientFrame::UserActivity => self.shared.stats.add(Count::UserActivity),
            ClientFrame::Feedback | ClientFrame::Init { .. } => {}
        }
    }

    /// Metadata, the garbage fault, pings, and the first message.
    fn start(&mut self, now: Instant) {
        self.started = true;
        if self.fault == Fault::NoInitiationMetadata {
            return;
        }
        self.live = true;
        let n = CONVERSATION_NO.fetch_add(1, Ordering::Relaxed);
        let cfg = &self.shared.cfg;
        let meta = json!({"type": "conversation_initiation_metadata",
            "conversation_initiation_metadata_event": {"conversation_id": format!("conv_fake_{n}"),
            "agent_output_audio_format": cfg.output_format.name(),
            "user_input_audio_format": cfg.input_format.name()}});
        self.next_ping_at = Some(now + Duration::from_millis(cfg.ping_interval_ms));
        self.emit(meta);
        if self.fault == Fault::GarbageFrame {
            self.out.push(GARBAGE.to_string());
        }
        let replies = &self.shared.replies;
        let greeting = match self.first_message.take() {
            Some(text) if text.is_empty() => None,
            // The override's text with the configured greeting's audio (rendered once).
            Some(text) => Some((
                replies
                    .greeting
                    .clone()
                    .unwrap_or_else(|| replies.reply.clone()),
                text,
            )),
            None => replies.greeting.clone().map(|g| {
                let text = g.text.clone();
                (g, text)
            }),
        };
        if let Some((line, text)) = greeting {
            self.begin_answer(line, text, now);
        }
    }

    fn audio(&mut self, bytes: &[u8], now: Instant) {
        let Some(samples) = self.input.decode(bytes) else {
            return self.protocol_error("user_audio_chunk: PCM16 with an odd number of bytes");
        };
        self.shared
            .stats
            .audio_received(samples.len(), self.input.rate());
        let mut events = Vec::new();
        self.vad.push(&samples, &mut events);
        for event in events {
            match event {
                VadEvent::Started => self.barge_in(now),
                VadEvent::Stopped => self.caller_turn_end(now),
            }
        }
    }

    fn pong(&mut self, event_id: u64) {
        match self.pings.iter().position(|(id, _)| *id == event_id) {
            Some(i) => {
                self.pings.remove(i);
                self.shared.stats.add(Count::PongOk);
            }
            None => self.protocol_error(format!("pong for event_id {event_id}: no such ping")),
        }
    }

    /// When the session next has something to do on its own.
    pub fn next_wake(&self) -> Option<Instant> {
        let pong_timeout = Duration::from_millis(self.shared.cfg.pong_timeout_ms);
        [
            self.next_ping_at,
            self.pings.front().map(|(_, at)| *at + pong_timeout),
            self.answer_wake(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn on_timer(&mut self, now: Instant) {
        let cfg = &self.shared.cfg;
        let interval = Duration::from_millis(cfg.ping_interval_ms);
        let pong_timeout = Duration::from_millis(cfg.pong_timeout_ms);
        while let Some(at) = self.next_ping_at.filter(|at| *at <= now) {
            let id = self.next_id();
            self.emit(json!({"type": "ping", "ping_event": {"event_id": id, "ping_ms": null}}));
            self.pings.push_back((id, now));
            self.shared.stats.add(Count::PingSent);
            // Never a burst: a late wake-up skips the missed pings.
            self.next_ping_at = Some((at + interval).max(now + interval / 2));
        }
        while let Some((id, _)) = self
            .pings
            .front()
            .copied()
            .filter(|(_, sent)| *sent + pong_timeout <= now)
        {
            self.pings.pop_front();
            self.shared.stats.missing_pong(format!(
                "no pong for ping {id} within {} ms",
                pong_timeout.as_millis()
            ));
        }
        self.answer_timer(now);
    }
}
