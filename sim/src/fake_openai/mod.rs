//! A strict fake of the OpenAI Realtime API (WebSocket), for tests, the load tool and the
//! offline demo. Wire facts: /work/shared/reference/providers.md §1 and §9.
//!
//! It checks the upgrade (bearer key, `?model=`), speaks GA or beta (chosen by the
//! `OpenAI-Beta: realtime=v1` header), validates every client event, runs an energy VAD
//! over the appended audio, answers each caller turn with a pre-rendered pt-BR reply
//! streamed faster than real time, honours cancellation/truncation rules, can run one
//! function call, and injects [`Fault`]s. Every client mistake becomes an `error` event
//! and an entry in [`FakeStats::protocol_errors`].
//!
//! Sessions are independent tasks; the reply audio is rendered once and shared, so
//! hundreds of concurrent sessions are cheap.

#[cfg(test)]
mod client_turns_tests;
mod connection;
mod handshake;
mod reply;
mod response;
mod script;
mod session;
mod session_config;
mod stats;
#[cfg(test)]
mod tests;
mod vad;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::fake_common::reply::off_runtime;
use crate::fake_common::server::{self, FaultPlan, ServerTask};

pub use stats::{FakeStats, Truncate};

/// A failure to inject, for sessions opened after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Answer the upgrade with this HTTP status (401, 429, 503, …).
    RefuseUpgrade(u16),
    /// Accept the upgrade, then never say anything.
    NoSessionCreated,
    /// Close the socket (code 1011) this long after the upgrade.
    CloseAfterMs(u64),
    /// Send a `server_error` event after the first response is done.
    ErrorAfterFirstTurn,
    /// Delay `session.updated` by this long.
    SlowSessionUpdatedMs(u64),
}

#[derive(Debug, Clone)]
pub struct FakeOpenAiConfig {
    /// Required bearer key; a wrong or missing one gets HTTP 401.
    pub api_key: String,
    /// What the agent says every turn (pt-BR, spoken by espeak-ng).
    pub reply_text: String,
    /// What the fake "transcribes" the caller as, when the session asks for transcription.
    pub caller_transcript: String,
    /// Delay between the end of a caller turn (or `response.create`) and the response's
    /// first output; `response.created` goes out at once, as the real API sends it.
    pub think_ms: u64,
    /// Audio per `output_audio.delta`.
    pub delta_ms: u32,
    /// Deltas go out this many times faster than real time, like the real API.
    pub realtime_factor: f32,
    /// RMS (PCM16) that counts as speech at `threshold = 0.5`.
    pub vad_threshold_rms: f64,
    /// `(name, arguments_json)`: the first response of each session is this function call.
    pub tool_call: Option<(String, String)>,
    pub fault: Fault,
}

impl Default for FakeOpenAiConfig {
    fn default() -> Self {
        Self {
            api_key: "sk-fake-openai".into(),
            reply_text: "Claro! Posso ajudar com isso. Qual é o seu nome, por favor?".into(),
            caller_transcript: "(caller speech)".into(),
            think_ms: 300,
            delta_ms: 100,
            realtime_factor: 4.0,
            vad_threshold_rms: 500.0,
            tool_call: None,
            fault: Fault::None,
        }
    }
}

/// What every session of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakeOpenAiConfig,
    pub replies: reply::ReplyBank,
    pub stats: stats::StatsRecorder,
    faults: FaultPlan<Fault>,
}

/// A running fake server; it stops when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: ServerTask,
}

impl FakeOpenAi {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeOpenAiConfig) -> anyhow::Result<FakeOpenAi> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    /// Listens on `addr` (the demo may want a fixed port).
    pub async fn start_on(cfg: FakeOpenAiConfig, addr: SocketAddr) -> anyhow::Result<FakeOpenAi> {
        if cfg.api_key.is_empty() {
            anyhow::bail!("the fake needs an api_key to check");
        }
        server::check_pacing("delta_ms", cfg.delta_ms, cfg.realtime_factor)?;
        let (text, delta_ms) = (cfg.reply_text.clone(), cfg.delta_ms);
        let replies = off_runtime("rendering the reply", move || {
            reply::ReplyBank::render(&text, delta_ms)
        })
        .await?;
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            cfg,
            replies,
            stats: Default::default(),
        });
        let (addr, server) =
            ServerTask::listen(addr, "OpenAI", shared.clone(), handle_connection).await?;
        Ok(FakeOpenAi {
            addr,
            shared,
            _server: server,
        })
    }

    /// `ws://127.0.0.1:PORT/v1/realtime` (the client adds `?model=`).
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, handshake::PATH)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer key clients must send.
    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    pub fn stats(&self) -> FakeStats {
        self.shared.stats.snapshot()
    }

    /// A handle that reads these stats without owning the fake (the load tool's, say).
    pub fn stats_handle(&self) -> FakeStatsHandle {
        FakeStatsHandle {
            shared: self.shared.clone(),
        }
    }

    /// Changes the fault for sessions opened from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }

    /// Applies `fault` to the next `connections` connections only, then none.
    pub fn set_fault_for(&self, fault: Fault, connections: u32) {
        self.set_fault_sequence(vec![fault; connections as usize]);
    }

    /// One fault per connection, in order, then none (e.g. a drop, then a refusal).
    pub fn set_fault_sequence(&self, faults: Vec<Fault>) {
        self.shared.faults.set_sequence(faults, Fault::None);
    }
}

/// Reads a fake's stats; cheap to clone. It keeps working after the fake is dropped (the
/// figures then stop changing).
#[derive(Clone)]
pub struct FakeStatsHandle {
    shared: Arc<Shared>,
}

impl FakeStatsHandle {
    pub fn snapshot(&self) -> FakeStats {
        self.shared.stats.snapshot()
    }
}

impl std::fmt::Debug for FakeStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeStatsHandle").finish_non_exhaustive()
    }
}

async fn handle_connection(tcp: TcpStream, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let fault = shared.faults.next();
    let upgraded = server::upgrade(tcp, "OpenAI", |req| {
        handshake::check(req, &shared.cfg.api_key, &fault)
    });
    let Some((ws, upgrade)) = upgraded.await else {
        return;
    };
    let session = connection::serve(ws, shared.clone(), upgrade, fault, shutdown);
    shared.stats.sessions.during(session).await;
}
