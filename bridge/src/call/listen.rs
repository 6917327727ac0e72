//! FreeSWITCH → agent: the caller's frames and text, stream loss and reattachment.

use std::time::Instant;

use axum::extract::ws::Message;
use tracing::{debug, info};
use voice_core::agent::AgentInput;

use super::{Agent, Call, End, MAX_HELD_INPUTS};
use crate::stream::inbound::{self, Audio, Command, Text};
use crate::stream::{close, close_code, Connection};

impl Call {
    pub(super) async fn on_stream_message(&mut self, msg: Message) -> Option<End> {
        match msg {
            Message::Binary(bytes) => self.on_audio(&bytes).await,
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Close(frame) => {
                let code = frame.as_ref().map(|f| f.code);
                debug!(call = %self.id, code, "stream closed by FreeSWITCH");
                // 1000 is a hangup or `uuid_audio_stream stop`; anything else may reconnect.
                if code == Some(close_code::NORMAL) {
                    Some(End::Hangup)
                } else {
                    self.on_disconnect()
                }
            }
            Message::Ping(_) | Message::Pong(_) => None, // pongs are answered by the socket
        }
    }

    pub(super) async fn on_audio(&mut self, bytes: &[u8]) -> Option<End> {
        let received = Instant::now();
        let samples = match inbound::decode_audio(
            bytes,
            self.mix,
            self.state.config.server.max_frame_bytes,
        ) {
            Ok(Audio::Caller(samples)) => samples,
            Ok(Audio::End) => return Some(End::Hangup),
            Err(e) => {
                self.state.metrics.bad_frames.inc();
                let code = match e {
                    inbound::FrameError::Oversized { .. } => close_code::TOO_BIG,
                    _ => close_code::INVALID_DATA,
                };
                return Some(End::BadInput(code, e.to_string()));
            }
        };
        self.state.metrics.frames_in.inc();
        self.record_caller(&samples);
        // The agent's copy, at its rate (None while it connects).
        let to_agent = match &mut self.agent {
            Agent::Ready(ready) => {
                let mut out = Vec::with_capacity(samples.len() * 3);
                ready.to_agent.process(&samples, &mut out);
                Some(out)
            }
            Agent::Connecting(..) => {
                let max =
                    (self.state.config.server.connect_buffer_ms * self.rate as u64 / 1000) as usize;
                self.held.extend_from_slice(&samples);
                if self.held.len() > max {
                    let excess = self.held.len() - max;
                    self.held.drain(..excess);
                }
                None
            }
            Agent::Gone => return None,
        };
        if self.front_end.is_some() {
            let out = to_agent.unwrap_or_default();
            self.listen_locally(&samples, out, received).await;
        } else if let Some(out) = to_agent {
            self.send_to_agent(out);
        }
        if matches!(self.agent, Agent::Ready(_)) {
            self.state
                .metrics
                .frame_forward_seconds
                .observe(received.elapsed().as_secs_f64());
        }
        None
    }

    /// Caller audio at the agent's rate: to the agent, except with local turns outside the
    /// caller's turn, where it waits as pre-roll for the next one.
    pub(super) fn forward(&mut self, audio: Vec<i16>) {
        if self.front_end.is_some() {
            self.hear(audio);
        } else {
            self.send_to_agent(audio);
        }
    }

    pub(super) fn send_to_agent(&mut self, audio: Vec<i16>) {
        if audio.is_empty() {
            return;
        }
        if let Agent::Ready(ready) = &self.agent {
            if ready
                .session
                .input
                .try_send(AgentInput::Audio(audio))
                .is_err()
            {
                self.state.metrics.agent_input_dropped.inc();
            }
        }
    }

    pub(super) async fn on_text(&mut self, text: &str) -> Option<End> {
        let first = !self.metadata_seen;
        self.metadata_seen = true;
        let parsed = match inbound::classify_text(text) {
            Ok(t) => t,
            Err(e) => {
                self.state.metrics.bad_frames.inc();
                return Some(End::BadInput(close_code::INVALID_DATA, e.to_string()));
            }
        };
        if first {
            // Both modules send the `start` metadata argument as the first text frame.
            debug!(call = %self.id, bytes = text.len(), "stream metadata");
            return None;
        }
        match parsed {
            Text::Plain(t) => self.tell_agent(AgentInput::Text(t)),
            Text::Json(map) => match inbound::command(&map) {
                Command::Dtmf(d) => return self.on_dtmf(d).await,
                Command::Text(t) => self.tell_agent(AgentInput::Text(t)),
                Command::Hangup => return Some(End::Hangup),
                Command::Other => {
                    debug!(call = %self.id, kind = ?map.get("type"), "stream message ignored");
                }
            },
        }
        None
    }

    /// Control input for the agent (text, DTMF, tool results). While an agent connects, what
    /// the caller typed or said in text is held for it; answers meant for a session that is
    /// gone (tool results, interruptions) are dropped.
    pub(super) fn tell_agent(&mut self, input: AgentInput) {
        let delivered = match &self.agent {
            Agent::Ready(ready) => ready.session.input.try_send(input).is_ok(),
            Agent::Connecting(..) if matches!(input, AgentInput::Dtmf(_) | AgentInput::Text(_)) => {
                let room = self.held_inputs.len() < MAX_HELD_INPUTS;
                if room {
                    self.held_inputs.push(input);
                }
                room
            }
            _ => true, // nobody to tell: not a loss worth counting
        };
        if !delivered {
            self.state.metrics.agent_input_dropped.inc();
        }
    }

    pub(super) fn on_disconnect(&mut self) -> Option<End> {
        self.socket = None;
        if self.disconnected_at.is_none() {
            self.disconnected_at = Some(Instant::now());
            info!(call = %self.id, "stream lost; waiting for it to reconnect");
        }
        None
    }

    pub(super) async fn on_attach(&mut self, conn: Box<Connection>) {
        if let Some(old) = self.socket.take() {
            // The module reconnected before we noticed the old stream die.
            tokio::spawn(close(
                old,
                close_code::GOING_AWAY,
                "replaced by a new stream",
            ));
        }
        info!(call = %self.id, dialect = conn.dialect.name(), "stream reattached");
        self.socket = Some(conn.socket);
        self.early.extend(conn.early);
        self.metadata_seen = false;
        self.disconnected_at = None;
        self.raw_header_sent = false;
    }
}
