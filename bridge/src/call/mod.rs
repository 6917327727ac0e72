//! One task per call owns everything about it: the FreeSWITCH stream, the agent session,
//! both resamplers, the playout queue. No locks on the audio path.

mod esl;
mod events;
mod failover;
mod handoff;
mod listen;
mod prompts;
mod record;
mod registry;
mod speak;
mod timing;
mod tools;
mod turns;

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
use voice_core::audio::turn::TurnDetection;
use voice_core::audio::Resampler;
use voice_core::esl::EslEvent;
use voice_core::recording::CallRecorder;

use crate::config::TenantSettings;
use crate::front_end::{FrontEnd, Heard};
use crate::playout::{self, ClearAction, PlayoutMode, PlayoutQueue};
use crate::prompts::PromptKind;
use crate::state::AppState;
use crate::stream::{close, close_code, Connection, Dialect, Mix};
use crate::tenancy::CallSlot;
use failover::Failover;
use handoff::Pending;
use timing::{TurnLatency, TurnTiming};
use voice_core::tenancy::events::kinds;

/// A Smart Turn answer: probe number, when it was asked, the probability.
type Verdict = (u64, Instant, Result<f32, String>);

/// In file modes, the next file is handed over when FreeSWITCH has this much left to play,
/// covering the event → `uuid_broadcast` round trip.
const FILE_LEAD_MS: u64 = 300;
/// Cancelled response items remembered, so their late audio is dropped.
const CANCELLED_MEMORY: usize = 8;
/// DTMF digits and text frames kept for an agent that is still connecting.
const MAX_HELD_INPUTS: usize = 32;

/// What a new call is for.
#[derive(Debug, Clone, PartialEq)]
pub enum CallPlan {
    /// A conversation with the agent.
    Agent,
    /// The tenant has as many calls as it may: transfer to its busy extension, or play the
    /// busy prompt and hang up.
    Busy,
    /// The call cannot be served (its configuration is unusable): the apology, then
    /// hang-up. The reason is logged and kept with the call.
    Apology(String),
}

/// Spawns the task for a new call.
pub fn start(
    state: Arc<AppState>,
    conn: Box<Connection>,
    tenant: String,
    call_id: String,
    settings: TenantSettings,
    plan: CallPlan,
    slot: Option<CallSlot>,
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
        // Held until the task ends, however it ends (dropped on a panic too).
        let _slot = slot;
        let call = Call::new(
            state.clone(),
            conn,
            tenant,
            call_id.clone(),
            (settings, plan),
            attach_rx,
            esl_rx,
        );
        call.run().await;
        state.calls.remove(&call_id);
    });
}

/// A connected agent and the resamplers between the call's rate and its rates.
struct Ready {
    session: AgentSession,
    to_agent: Resampler,
    from_agent: Resampler,
}

enum Agent {
    Connecting(
        BoxFuture<'static, Result<AgentSession, AgentError>>,
        Instant,
    ),
    Ready(Box<Ready>),
    Gone,
}

/// Why a call ended.
#[derive(Debug)]
enum End {
    Hangup,
    StreamLost,
    BadInput(u16, String),
    AgentFailed(String),
    /// Handed to a human (`uuid_transfer`), for this reason.
    Transferred(String),
    /// Hung up by the bridge (`uuid_kill`), for this reason.
    HungUp(String),
}

impl End {
    /// A short word for events and metrics; the detail stays in the logs.
    fn reason(&self) -> String {
        match self {
            End::Hangup => "hangup".into(),
            End::StreamLost => "stream_lost".into(),
            End::BadInput(..) => "bad_input".into(),
            End::AgentFailed(_) => "agent_failed".into(),
            End::Transferred(why) => format!("transferred: {why}"),
            End::HungUp(why) => format!("hung_up: {why}"),
        }
    }
}

enum Wake {
    Stream(Option<Result<Message, axum::Error>>),
    Agent(Option<AgentEvent>),
    AgentConnected(Result<AgentSession, AgentError>),
    Attach(Box<Connection>),
    Esl(EslEvent),
    Verdict(Verdict),
    Playout,
    ReconnectTimeout,
    HoldDue,
    PendingDue,
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
    plan: CallPlan,
    socket: Option<WebSocket>,
    early: VecDeque<Message>,
    metadata_seen: bool,
    disconnected_at: Option<Instant>,
    attach_rx: mpsc::Receiver<Box<Connection>>,
    esl_rx: mpsc::Receiver<EslEvent>,
    esl_commands: Option<mpsc::Sender<String>>,
    agent: Agent,
    /// Who the call is, for every provider it connects.
    info: CallInfo,
    failover: Failover,
    /// A transfer or hang-up waiting for the last words to play.
    pending: Option<Pending>,
    /// Agent answers in a row that did not understand the caller.
    misunderstandings: u32,
    /// Messages taken with `take_message`.
    messages: u32,
    /// Caller audio (call rate) held while the agent connects.
    held: Vec<i16>,
    /// Caller DTMF and text held while the agent connects.
    held_inputs: Vec<AgentInput>,
    queue: PlayoutQueue,
    current_item: Option<String>,
    item_start_ms: u64,
    item_sent: bool,
    answer_complete: bool,
    cancelled: VecDeque<String>,
    raw_header_sent: bool,
    timing: TurnTiming,
    latencies: Vec<TurnLatency>,
    transcript: Vec<(Role, String)>,
    barge_ins: u32,
    /// When the current answer's first frame went to FreeSWITCH (the echo guard's start).
    playout_started: Option<Instant>,
    /// Local turn detection (see turns.rs); `None` when the provider detects turns.
    front_end: Option<FrontEnd>,
    heard: Vec<Heard>,
    /// The caller's turn is on: their audio goes to the agent.
    turn_open: bool,
    /// Caller audio (agent rate) from outside a turn, for the start of the next one.
    preroll: VecDeque<i16>,
    speech_onset: Option<Instant>,
    /// Caller speech over an answer that the barge-in rules are holding back.
    speech_held_back: bool,
    /// A Smart Turn inference for this call is running.
    smart_turn_busy: bool,
    verdict_tx: mpsc::Sender<Verdict>,
    verdict_rx: mpsc::Receiver<Verdict>,
    /// Set when the call cannot go on from the start (e.g. its front end failed).
    failed: Option<End>,
    recorder: Option<CallRecorder>,
    /// Caller samples received: the recording's time base.
    caller_samples: u64,
}

impl Call {
    fn new(
        state: Arc<AppState>,
        conn: Box<Connection>,
        tenant: String,
        id: String,
        (settings, plan): (TenantSettings, CallPlan),
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
            history: Vec::new(),
        };
        let (providers, _) = state.providers_for(&settings);
        let failover = Failover::new(settings.agent.provider_chain(), providers);
        let mut failed = None;
        let front_end = match settings.agent.turn.detection {
            // A call that only hears a prompt has no turns to detect.
            _ if plan != CallPlan::Agent => None,
            TurnDetection::Provider => None,
            TurnDetection::Local => match FrontEnd::new(
                &state.models,
                rate,
                &settings.agent.vad,
                &settings.agent.turn,
            ) {
                Ok(front_end) => Some(front_end),
                Err(e) => {
                    failed = Some(End::AgentFailed(format!("audio front end: {e}")));
                    None
                }
            },
        };
        let (verdict_tx, verdict_rx) = mpsc::channel(4);
        state.metrics.calls_total.inc();
        state.metrics.calls_active.inc();
        info!(
            call = %id, tenant = %tenant, dialect = conn.dialect.name(), rate, mix = ?mix,
            playout = mode.name(), provider = failover.current.name(), "call started"
        );
        if mix == Mix::Mixed {
            warn!(call = %id, "mix=mixed: the agent hears its own voice in the caller's audio; use mono or stereo");
        }
        let (caller, callee) = (conn.params.caller.clone(), conn.params.callee.clone());
        let consent = conn.params.consent;
        let mut call = Self {
            dialect: conn.dialect,
            rate,
            mix,
            mode,
            clear,
            settings,
            plan,
            socket: Some(conn.socket),
            early: conn.early.into(),
            metadata_seen: false,
            disconnected_at: None,
            attach_rx,
            esl_rx,
            esl_commands: None,
            agent: Agent::Gone,
            info,
            failover,
            pending: None,
            misunderstandings: 0,
            messages: 0,
            held: Vec::new(),
            held_inputs: Vec::new(),
            queue: PlayoutQueue::new(rate),
            current_item: None,
            item_start_ms: 0,
            item_sent: false,
            answer_complete: true,
            cancelled: VecDeque::new(),
            raw_header_sent: false,
            timing: TurnTiming::default(),
            latencies: Vec::new(),
            transcript: Vec::new(),
            barge_ins: 0,
            playout_started: None,
            front_end,
            heard: Vec::new(),
            turn_open: false,
            preroll: VecDeque::new(),
            speech_onset: None,
            speech_held_back: false,
            smart_turn_busy: false,
            verdict_tx,
            verdict_rx,
            failed,
            recorder: None,
            caller_samples: 0,
            started: Instant::now(),
            state,
            id,
            tenant,
        };
        call.start_recording(caller, callee, consent);
        if call.plan == CallPlan::Agent {
            call.emit(
                kinds::CALL_STARTED,
                serde_json::json!({"caller": call.info.caller, "callee": call.info.callee}),
            );
        }
        call
    }

    async fn run(mut self) {
        if let Some(end) = self.failed.take() {
            self.finish(end).await;
            return;
        }
        match self.plan.clone() {
            CallPlan::Agent => {
                // The greeting starts at once; the provider connects meanwhile and is
                // told it was said, so it does not greet again.
                self.play_prompt(PromptKind::Greeting);
                self.send_due_playout().await;
                self.connect_agent(self.failover.current, self.transcript.clone());
            }
            CallPlan::Busy => self.turn_away_busy().await,
            CallPlan::Apology(why) => {
                self.record_fact(serde_json::json!({"type": "refused", "reason": why}));
                self.play_prompt(PromptKind::Apology);
                self.send_due_playout().await;
                self.hang_up_after_playout("refused", false);
            }
        }
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
        let hold_due = self.hold_due();
        let pending_due = self.pending_due();
        let socket = &mut self.socket;
        let agent = &mut self.agent;
        tokio::select! {
            msg = async { match socket { Some(s) => s.next().await, None => std::future::pending().await } } => Wake::Stream(msg),
            wake = async {
                match agent {
                    Agent::Ready(ready) => Wake::Agent(ready.session.events.recv().await),
                    Agent::Connecting(fut, _) => Wake::AgentConnected(fut.await),
                    Agent::Gone => std::future::pending().await,
                }
            } => wake,
            Some(conn) = self.attach_rx.recv() => Wake::Attach(conn),
            Some(ev) = self.esl_rx.recv() => Wake::Esl(ev),
            Some(verdict) = self.verdict_rx.recv() => Wake::Verdict(verdict),
            _ = sleep_until(playout_due) => Wake::Playout,
            _ = sleep_until(reconnect_deadline) => Wake::ReconnectTimeout,
            _ = sleep_until(hold_due) => Wake::HoldDue,
            _ = sleep_until(pending_due) => Wake::PendingDue,
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
            Wake::AgentConnected(result) => self.on_agent_connected(result).await,
            Wake::Agent(Some(event)) => self.on_agent_event(event).await,
            Wake::Agent(None) => self.agent_failed("agent session ended".into()).await,
            Wake::Attach(conn) => {
                self.on_attach(conn).await;
                None
            }
            Wake::Esl(event) => self.on_esl_event(event).await,
            Wake::Verdict((probe, asked, result)) => {
                self.on_verdict(probe, asked, result);
                None
            }
            Wake::Playout => {
                self.send_due_playout().await;
                None
            }
            Wake::ReconnectTimeout => Some(End::StreamLost),
            Wake::HoldDue => {
                self.on_hold_due().await;
                None
            }
            Wake::PendingDue => self.on_pending_due(),
        }
    }

    async fn finish(mut self, end: End) {
        let (code, reason) = match &end {
            End::Hangup | End::StreamLost => (close_code::NORMAL, String::new()),
            End::Transferred(why) => (close_code::NORMAL, format!("transferred: {why}")),
            End::HungUp(why) => (close_code::NORMAL, format!("hung up: {why}")),
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
        self.finish_recording(&format!("{end:?}"));
        self.state.metrics.calls_active.dec();
        if self.plan == CallPlan::Agent {
            self.emit(
                kinds::CALL_ENDED,
                serde_json::json!({
                    "seconds": self.started.elapsed().as_secs_f64(),
                    "reason": end.reason(),
                    "turns": self.timing.turns(),
                }),
            );
        }
        info!(
            call = %self.id, tenant = %self.tenant, dialect = self.dialect.name(), ended = ?end,
            seconds = self.started.elapsed().as_secs_f64(), turns = self.timing.turns(),
            barge_ins = self.barge_ins, underruns = self.queue.underruns(),
            provider_switches = self.failover.switches, messages = self.messages,
            decision_ms = ?self.latencies.iter().filter_map(|t| t.decision_ms).collect::<Vec<_>>(),
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
