//! One task per call owns everything about it: the FreeSWITCH stream, the agent session,
//! both resamplers, the playout queue. No locks on the audio path.

mod registry;
mod timing;

pub use registry::{CallHandle, CallRegistry};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use voice_core::agent::{AgentError, AgentEvent, AgentInput, AgentSession, CallInfo, Role};
use voice_core::audio::Resampler;
use voice_core::esl::EslEvent;

use crate::agents;
use crate::config::TenantSettings;
use crate::playout::{self, encoder, ClearAction, PlayoutMode, PlayoutQueue};
use crate::state::AppState;
use crate::stream::inbound::{self, Audio, Command, Text};
use crate::stream::{close, close_code, Connection, Dialect, Mix};
use timing::TurnTiming;

/// In file modes, the next file is handed over when FreeSWITCH has this much left to play,
/// covering the event → `uuid_broadcast` round trip.
const FILE_LEAD_MS: u64 = 300;
/// Cancelled response items remembered, so their late audio is dropped.
const CANCELLED_MEMORY: usize = 8;

/// Spawns the task for a new call.
pub fn start(
    state: Arc<AppState>,
    conn: Box<Connection>,
    tenant: String,
    call_id: String,
    settings: TenantSettings,
) {
    let (attach_tx, attach_rx) = mpsc::channel(4);
    let (esl_tx, esl_rx) = mpsc::channel(64);
    if !state.calls.insert(
        &call_id,
        CallHandle {
            attach: attach_tx.clone(),
            esl: esl_tx,
        },
    ) {
        // Two first connections raced for one UUID: the second joins the first.
        if let Err(conn) = state.calls.reattach(&call_id, conn) {
            tokio::spawn(close(
                conn.socket,
                close_code::POLICY,
                "duplicate call uuid",
            ));
        }
        return;
    }
    tokio::spawn(async move {
        let call = Call::new(
            state.clone(),
            conn,
            tenant,
            call_id.clone(),
            settings,
            attach_rx,
            esl_rx,
        );
        call.run().await;
        state.calls.remove(&call_id);
    });
}

enum Agent {
    Connecting(
        BoxFuture<'static, Result<AgentSession, AgentError>>,
        Instant,
    ),
    Ready(AgentSession),
    Gone,
}

/// Why a call ended.
#[derive(Debug)]
enum End {
    Hangup,
    StreamLost,
    BadInput(u16, String),
    AgentFailed(String),
}

enum Wake {
    Stream(Option<Result<Message, axum::Error>>),
    Agent(Option<AgentEvent>),
    AgentConnected(Result<AgentSession, AgentError>),
    Attach(Box<Connection>),
    Esl(EslEvent),
    Playout,
    ReconnectTimeout,
}

struct Call {
    state: Arc<AppState>,
    id: String,
    tenant: String,
    started: Instant,
    dialect: Dialect,
    rate: u32,
    mix: Mix,
    mode: PlayoutMode,
    clear: ClearAction,
    settings: TenantSettings,
    socket: Option<WebSocket>,
    early: VecDeque<Message>,
    metadata_seen: bool,
    disconnected_at: Option<Instant>,
    attach_rx: mpsc::Receiver<Box<Connection>>,
    esl_rx: mpsc::Receiver<EslEvent>,
    esl_commands: Option<mpsc::Sender<String>>,
    agent: Agent,
    to_agent: Option<Resampler>,
    from_agent: Option<Resampler>,
    /// Caller audio (call rate) held while the agent connects.
    held: Vec<i16>,
    queue: PlayoutQueue,
    current_item: Option<String>,
    item_start_ms: u64,
    item_sent: bool,
    answer_complete: bool,
    cancelled: VecDeque<String>,
    raw_header_sent: bool,
    timing: TurnTiming,
    transcript: Vec<(Role, String)>,
    barge_ins: u32,
}

impl Call {
    fn new(
        state: Arc<AppState>,
        conn: Box<Connection>,
        tenant: String,
        id: String,
        settings: TenantSettings,
        attach_rx: mpsc::Receiver<Box<Connection>>,
        esl_rx: mpsc::Receiver<EslEvent>,
    ) -> Self {
        let cfg = &state.config;
        let rate = conn.params.rate.unwrap_or(cfg.call.sample_rate);
        let mix = conn.params.mix.unwrap_or(cfg.call.mix);
        let (mode, clear) = playout::resolve(
            conn.params.playout.unwrap_or(settings.playout.mode),
            conn.params.clear.unwrap_or(settings.playout.clear),
            conn.dialect,
        );
        let info = CallInfo {
            call_id: id.clone(),
            tenant: tenant.clone(),
            caller: conn.params.caller.clone(),
            callee: conn.params.callee.clone(),
            call_rate: rate,
        };
        let agent = agents::build(cfg, &settings.agent);
        state.metrics.calls_total.inc();
        state.metrics.calls_active.inc();
        info!(
            call = %id, tenant = %tenant, dialect = conn.dialect.name(), rate, mix = ?mix,
            playout = mode.name(), agent = agent.name(), "call started"
        );
        if mix == Mix::Mixed {
            warn!(call = %id, "mix=mixed: the agent hears its own voice in the caller's audio; use mono or stereo");
        }
        Self {
            dialect: conn.dialect,
            rate,
            mix,
            mode,
            clear,
            settings,
            socket: Some(conn.socket),
            early: conn.early.into(),
            metadata_seen: false,
            disconnected_at: None,
            attach_rx,
            esl_rx,
            esl_commands: None,
            agent: Agent::Connecting(agent.connect(info), Instant::now()),
            to_agent: None,
            from_agent: None,
            held: Vec::new(),
            queue: PlayoutQueue::new(rate),
            current_item: None,
            item_start_ms: 0,
            item_sent: false,
            answer_complete: true,
            cancelled: VecDeque::new(),
            raw_header_sent: false,
            timing: TurnTiming::default(),
            transcript: Vec::new(),
            barge_ins: 0,
            started: Instant::now(),
            state,
            id,
            tenant,
        }
    }

    async fn run(mut self) {
        let end = loop {
            let wake = self.next_wake().await;
            if let Some(end) = self.handle(wake).await {
                break end;
            }
        };
        self.finish(end).await;
    }

    /// Waits for whatever needs the call's attention next.
    async fn next_wake(&mut self) -> Wake {
        if let Some(msg) = self.early.pop_front() {
            return Wake::Stream(Some(Ok(msg)));
        }
        let now = Instant::now();
        let playout_due = if self.socket.is_some() {
            self.playout_due(now)
        } else {
            None
        };
        let reconnect_deadline = self
            .disconnected_at
            .map(|t| t + Duration::from_millis(self.state.config.server.reconnect_grace_ms));
        let socket = &mut self.socket;
        let agent = &mut self.agent;
        tokio::select! {
            msg = async { match socket { Some(s) => s.next().await, None => std::future::pending().await } } => Wake::Stream(msg),
            wake = async {
                match agent {
                    Agent::Ready(session) => Wake::Agent(session.events.recv().await),
                    Agent::Connecting(fut, _) => Wake::AgentConnected(fut.await),
                    Agent::Gone => std::future::pending().await,
                }
            } => wake,
            Some(conn) = self.attach_rx.recv() => Wake::Attach(conn),
            Some(ev) = self.esl_rx.recv() => Wake::Esl(ev),
            _ = sleep_until(playout_due) => Wake::Playout,
            _ = sleep_until(reconnect_deadline) => Wake::ReconnectTimeout,
        }
    }

    async fn handle(&mut self, wake: Wake) -> Option<End> {
        match wake {
            Wake::Stream(Some(Ok(msg))) => self.on_stream_message(msg).await,
            Wake::Stream(Some(Err(e))) => {
                debug!(call = %self.id, error = %e, "stream read error");
                self.on_disconnect()
            }
            Wake::Stream(None) => self.on_disconnect(),
            Wake::AgentConnected(result) => self.on_agent_connected(result),
            Wake::Agent(Some(event)) => self.on_agent_event(event).await,
            Wake::Agent(None) => Some(End::AgentFailed("agent session ended".into())),
            Wake::Attach(conn) => {
                self.on_attach(conn).await;
                None
            }
            Wake::Esl(event) => {
                self.on_esl_event(event);
                None
            }
            Wake::Playout => {
                self.send_due_playout().await;
                None
            }
            Wake::ReconnectTimeout => Some(End::StreamLost),
        }
    }

    // ---- FreeSWITCH → agent -------------------------------------------------------------

    async fn on_stream_message(&mut self, msg: Message) -> Option<End> {
        match msg {
            Message::Binary(bytes) => self.on_audio(&bytes),
            Message::Text(text) => self.on_text(text.as_str()),
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

    fn on_audio(&mut self, bytes: &[u8]) -> Option<End> {
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
        match &self.agent {
            Agent::Ready(session) => {
                let mut out = Vec::with_capacity(samples.len() * 3);
                match self.to_agent.as_mut() {
                    Some(r) => r.process(&samples, &mut out),
                    None => out = samples,
                }
                if !out.is_empty() && session.input.try_send(AgentInput::Audio(out)).is_err() {
                    self.state.metrics.agent_input_dropped.inc();
                }
                self.state
                    .metrics
                    .frame_forward_seconds
                    .observe(received.elapsed().as_secs_f64());
            }
            Agent::Connecting(..) => {
                let max =
                    (self.state.config.server.connect_buffer_ms * self.rate as u64 / 1000) as usize;
                self.held.extend_from_slice(&samples);
                if self.held.len() > max {
                    let excess = self.held.len() - max;
                    self.held.drain(..excess);
                }
            }
            Agent::Gone => {}
        }
        None
    }

    fn on_text(&mut self, text: &str) -> Option<End> {
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
        let input = match parsed {
            Text::Plain(t) => Some(AgentInput::Text(t)),
            Text::Json(map) => match inbound::command(&map) {
                Command::Dtmf(d) => Some(AgentInput::Dtmf(d)),
                Command::Text(t) => Some(AgentInput::Text(t)),
                Command::Hangup => return Some(End::Hangup),
                Command::Other => {
                    debug!(call = %self.id, kind = ?map.get("type"), "stream message ignored");
                    None
                }
            },
        };
        if let (Some(input), Agent::Ready(session)) = (input, &self.agent) {
            let _ = session.input.try_send(input);
        }
        None
    }

    fn on_disconnect(&mut self) -> Option<End> {
        self.socket = None;
        if self.disconnected_at.is_none() {
            self.disconnected_at = Some(Instant::now());
            info!(call = %self.id, "stream lost; waiting for it to reconnect");
        }
        None
    }

    async fn on_attach(&mut self, conn: Box<Connection>) {
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

    // ---- agent → FreeSWITCH -------------------------------------------------------------

    fn on_agent_connected(&mut self, result: Result<AgentSession, AgentError>) -> Option<End> {
        let started = match &self.agent {
            Agent::Connecting(_, t) => *t,
            _ => Instant::now(),
        };
        let session = match result {
            Ok(s) => s,
            Err(e) => {
                self.state.metrics.provider_errors.inc();
                self.agent = Agent::Gone;
                return Some(End::AgentFailed(e.to_string()));
            }
        };
        self.state
            .metrics
            .provider_connect_seconds
            .observe(started.elapsed().as_secs_f64());
        let (to, from) = match (
            Resampler::new(self.rate, session.input_rate),
            Resampler::new(session.output_rate, self.rate),
        ) {
            (Ok(to), Ok(from)) => (to, from),
            (Err(e), _) | (_, Err(e)) => {
                self.agent = Agent::Gone;
                return Some(End::AgentFailed(e.to_string()));
            }
        };
        let mut to = to;
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            let mut out = Vec::new();
            to.process(&held, &mut out);
            let _ = session.input.try_send(AgentInput::Audio(out));
        }
        debug!(call = %self.id, ms = started.elapsed().as_millis() as u64, "agent ready");
        self.to_agent = Some(to);
        self.from_agent = Some(from);
        self.agent = Agent::Ready(session);
        None
    }

    async fn on_agent_event(&mut self, event: AgentEvent) -> Option<End> {
        let now = Instant::now();
        match event {
            AgentEvent::Audio { item_id, samples } => {
                if self.cancelled.contains(&item_id) {
                    return None; // late audio of an answer the caller interrupted
                }
                if self.current_item.as_deref() != Some(item_id.as_str()) {
                    self.current_item = Some(item_id);
                    self.item_start_ms = self.queue.end_position_ms();
                    self.item_sent = false;
                    self.answer_complete = false;
                }
                self.timing.provider_audio(now, &self.state.metrics);
                let mut out = Vec::with_capacity(samples.len());
                if let Some(r) = self.from_agent.as_mut() {
                    r.process(&samples, &mut out);
                }
                self.queue.push(&out);
                // Send at once what is due: the first frame must not wait for a timer tick.
                self.send_due_playout().await;
            }
            AgentEvent::AudioDone { item_id } => {
                if self.current_item.as_deref() == Some(item_id.as_str()) {
                    let mut out = Vec::new();
                    if let Some(r) = self.from_agent.as_mut() {
                        r.flush(&mut out);
                    }
                    self.queue.push(&out);
                    self.queue.end_of_answer();
                    self.answer_complete = true;
                    self.send_due_playout().await;
                }
            }
            AgentEvent::SpeechStarted => {
                if self.queue.is_playing(now) {
                    self.barge_in(now).await;
                }
            }
            AgentEvent::SpeechStopped => self.timing.caller_stopped(now),
            AgentEvent::Transcript { role, text } => {
                info!(call = %self.id, role = ?role, text = %text, "transcript");
                self.transcript.push((role, text));
            }
            AgentEvent::ToolCall { call_id, name, .. } => {
                // Tools arrive with the realtime-agents work; answer so the model goes on.
                warn!(call = %self.id, tool = %name, "tool not available on this bridge");
                if let Agent::Ready(session) = &self.agent {
                    let output = format!(r#"{{"error":"tool {name} is not available"}}"#);
                    let _ = session
                        .input
                        .try_send(AgentInput::ToolResult { call_id, output });
                }
            }
            AgentEvent::ResponseDone { status } => {
                debug!(call = %self.id, %status, "response done")
            }
            AgentEvent::Error { message, fatal } => {
                self.state.metrics.provider_errors.inc();
                if fatal {
                    self.agent = Agent::Gone;
                    return Some(End::AgentFailed(message));
                }
                warn!(call = %self.id, error = %message, "provider error");
            }
        }
        None
    }

    /// The caller spoke over the agent: stop the audio within a frame, tell FreeSWITCH to
    /// drop what it buffered, and tell the agent how much the caller actually heard.
    async fn barge_in(&mut self, now: Instant) {
        let heard_ms = self.queue.played_ms(now).saturating_sub(self.item_start_ms);
        let generation = self.queue.clear(now);
        if let Some(r) = self.from_agent.as_mut() {
            r.reset();
        }
        self.barge_ins += 1;
        self.state.metrics.barge_ins.inc();
        if let Some(message) = self.clear.message {
            self.send(Message::Text(message.into())).await;
        }
        if self.clear.esl_break {
            self.esl_command(format!("uuid_break {} all", self.id));
        }
        if let Some(item_id) = self.current_item.take() {
            info!(call = %self.id, item = %item_id, heard_ms, generation, "barge-in");
            if self.cancelled.len() == CANCELLED_MEMORY {
                self.cancelled.pop_front();
            }
            self.cancelled.push_back(item_id.clone());
            if let Agent::Ready(session) = &self.agent {
                let heard_ms = heard_ms.min(u32::MAX as u64) as u32;
                let _ = session
                    .input
                    .try_send(AgentInput::Interrupted { item_id, heard_ms });
            }
        }
        self.answer_complete = true;
    }

    fn batch_shape(&self) -> (usize, u64) {
        let lead = self.settings.playout.lead_ms.max(20) as u64;
        if self.mode.uses_files() {
            let ms = if self.item_sent {
                self.settings.playout.file_chunk_ms
            } else {
                self.settings.playout.first_file_chunk_ms
            };
            let frames = (ms / 20).max(1) as usize;
            (frames, frames as u64 * 20 + FILE_LEAD_MS.max(lead))
        } else {
            (1, lead)
        }
    }

    fn playout_due(&self, now: Instant) -> Option<Instant> {
        let (frames, ahead) = self.batch_shape();
        self.queue
            .next_due(now, frames, ahead, self.answer_complete)
    }

    /// Sends every batch that is due. While the stream is away the audio waits for it.
    async fn send_due_playout(&mut self) {
        while self.socket.is_some() {
            let now = Instant::now();
            let (frames, ahead) = self.batch_shape();
            let Some(batch) = self.queue.pop_due(now, frames, ahead, self.answer_complete) else {
                return;
            };
            if batch.starts_run && self.item_sent && !self.answer_complete {
                self.queue.note_underrun();
                self.state.metrics.playout_underruns.inc();
            }
            self.item_sent = true;
            self.timing.first_frame_sent(now, &self.state.metrics);
            if self.mode == PlayoutMode::RawAudio && !self.raw_header_sent {
                self.raw_header_sent = true;
                self.send(encoder::raw_audio_header(self.rate)).await;
            }
            let n = batch.samples.len() / voice_core::audio::frame_samples(self.rate).max(1);
            self.send(encoder::encode(
                self.mode,
                self.rate,
                &batch.samples,
                batch.generation,
            ))
            .await;
            self.state.metrics.frames_out.add(n as u64);
        }
    }

    async fn send(&mut self, msg: Message) {
        if let Some(socket) = self.socket.as_mut() {
            if let Err(e) = socket.send(msg).await {
                debug!(call = %self.id, error = %e, "stream write failed");
                self.on_disconnect();
            }
        }
    }

    // ---- ESL (file playout modes) -------------------------------------------------------

    /// FreeSWITCH wrote one of our chunks to a file: play it, unless a barge-in made it stale.
    fn on_esl_event(&mut self, event: EslEvent) {
        let Some(body) = event.body() else { return };
        let Ok(serde_json::Value::Object(data)) = serde_json::from_str::<serde_json::Value>(body)
        else {
            warn!(call = %self.id, "play event with an unreadable body");
            return;
        };
        let Some(file) = data.get("file").and_then(|f| f.as_str()) else {
            return;
        };
        if !safe_path(file) {
            warn!(call = %self.id, "play event with an unsafe file path ignored");
            return;
        }
        let generation = data.get("gen").and_then(|g| g.as_u64());
        if generation.is_some_and(|g| g != self.queue.generation()) {
            debug!(call = %self.id, file, "stale chunk from before a barge-in not played");
            return;
        }
        self.esl_command(format!("uuid_broadcast {} {} aleg", self.id, file));
    }

    /// Queues an ESL api command; commands for one call run in order.
    fn esl_command(&mut self, command: String) {
        let Some(esl) = self.state.esl.clone() else {
            warn!(call = %self.id, "playout mode needs ESL, but [esl] is not enabled");
            return;
        };
        let tx = self.esl_commands.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::channel::<String>(64);
            let call = self.id.clone();
            tokio::spawn(async move {
                while let Some(cmd) = rx.recv().await {
                    match esl.api(&cmd).await {
                        Ok(reply) if reply.starts_with("-ERR") => warn!(call = %call, command = %cmd, reply = %reply.trim(), "ESL command failed"),
                        Ok(_) => {}
                        Err(e) => warn!(call = %call, command = %cmd, error = %e, "ESL command failed"),
                    }
                }
            });
            tx
        });
        if tx.try_send(command).is_err() {
            warn!(call = %self.id, "ESL command queue full");
        }
    }

    // ---- end of call --------------------------------------------------------------------

    async fn finish(mut self, end: End) {
        let (code, reason) = match &end {
            End::Hangup | End::StreamLost => (close_code::NORMAL, String::new()),
            End::BadInput(code, why) => {
                warn!(call = %self.id, reason = %why, "closing stream: bad input from FreeSWITCH");
                (*code, why.clone())
            }
            End::AgentFailed(why) => {
                warn!(call = %self.id, reason = %why, "closing stream: agent unavailable");
                (close_code::INTERNAL, "agent unavailable".to_string())
            }
        };
        if let Some(socket) = self.socket.take() {
            close(socket, code, &reason).await;
        }
        self.agent = Agent::Gone; // drops the session: the provider connection closes
        self.state.metrics.calls_active.dec();
        info!(
            call = %self.id, tenant = %self.tenant, dialect = self.dialect.name(), ended = ?end,
            seconds = self.started.elapsed().as_secs_f64(), turns = self.timing.turns(),
            barge_ins = self.barge_ins, underruns = self.queue.underruns(),
            transcript_lines = self.transcript.len(), "call ended"
        );
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// File paths from FreeSWITCH events go into ESL commands: no spaces, no control characters.
fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() < 512
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c))
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_paths_cannot_smuggle_commands() {
        assert!(super::safe_path("/tmp/7dd5-11_0.tmp.r16"));
        assert!(!super::safe_path("/tmp/x.r16 aleg\n\napi shutdown"));
        assert!(!super::safe_path("/tmp/a b.r8"));
        assert!(!super::safe_path(""));
    }
}
