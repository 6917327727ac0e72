//! A strict fake of the Google Gemini Live API (BidiGenerateContent over WebSocket), for
//! tests, the load tool and the offline demo. Wire facts: /work/shared/reference/
//! providers.md §0 and §2.
//!
//! It checks the upgrade (path, `x-goog-api-key` header or `?key=`), insists on a valid
//! `setup` first (else it closes with 1007, like the real server), accepts both camelCase
//! and snake_case spellings, validates every client message, runs an energy VAD over the
//! 16 kHz audio (or follows `activityStart`/`activityEnd` when automatic detection is
//! disabled), answers each caller turn with a pre-rendered pt-BR reply streamed at 24 kHz
//! faster than real time, handles barge-in (`interrupted`), can run one function call, and
//! injects [`Fault`]s. Every client mistake lands in [`FakeGeminiStats::protocol_errors`].
//!
//! Server JSON goes out in binary frames by default (what the Python SDK is ready for),
//! or in text frames with `binary_frames: false`. Sessions are independent tasks; the
//! reply audio is rendered once and shared.

mod connection;
mod handshake;
mod messages;
mod reply;
mod response;
mod session;
mod setup;
mod stats;
#[cfg(test)]
mod strict_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::fake_common::reply::{off_runtime, SpokenLine};
use crate::fake_common::server::{self, FaultPlan, ServerTask};

pub use stats::FakeGeminiStats;

/// A failure to inject, for sessions opened after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Answer the upgrade with this HTTP status (401, 429, 503, …).
    RefuseUpgrade(u16),
    /// Take the setup, then never answer it.
    NoSetupComplete,
    /// Close the socket (code 1011) this long after the upgrade.
    CloseAfterMs(u64),
    /// Send `goAway{timeLeft:"10s"}` this long after the upgrade, then close (1001)
    /// a moment later.
    GoAwayAfterMs(u64),
    /// Send one frame that is not JSON right after `setupComplete`.
    GarbageFrame,
}

#[derive(Debug, Clone)]
pub struct FakeGeminiConfig {
    /// Required API key; a missing one gets HTTP 401, a wrong one 403.
    pub api_key: String,
    /// What the model says every turn (pt-BR, spoken by espeak-ng).
    pub reply_text: String,
    /// What the fake "transcribes" the caller as (with `inputAudioTranscription`).
    pub caller_transcript: String,
    /// Delay between the end of a caller turn and the first output.
    pub think_ms: u64,
    /// Audio per `modelTurn` chunk.
    pub chunk_ms: u32,
    /// Chunks go out this many times faster than real time, like the real API.
    pub realtime_factor: f32,
    /// 20 ms window RMS (PCM16) that counts as speech (`START_SENSITIVITY_LOW` doubles it).
    pub vad_threshold_rms: f64,
    /// `(name, args_json)`: the first caller turn gets this function call, when the
    /// session declared a function of that name. `args_json` must be a JSON object.
    pub tool_call: Option<(String, String)>,
    /// Server JSON in binary frames (true) or text frames (false).
    pub binary_frames: bool,
    /// The first message must be a setup within this time.
    pub setup_timeout_ms: u64,
    pub fault: Fault,
}

impl Default for FakeGeminiConfig {
    fn default() -> Self {
        Self {
            api_key: "fake-gemini-key".into(),
            reply_text: "Claro! Posso ajudar com isso. Qual é o seu nome, por favor?".into(),
            caller_transcript: "Olá, eu gostaria de marcar uma consulta.".into(),
            think_ms: 300,
            chunk_ms: 100,
            realtime_factor: 4.0,
            vad_threshold_rms: 500.0,
            tool_call: None,
            binary_frames: true,
            setup_timeout_ms: 5_000,
            fault: Fault::None,
        }
    }
}

/// What every session of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakeGeminiConfig,
    pub reply: Arc<SpokenLine>,
    pub stats: stats::StatsRecorder,
    faults: FaultPlan<Fault>,
}

/// A running fake server; it stops when dropped.
pub struct FakeGemini {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: ServerTask,
}

impl FakeGemini {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeGeminiConfig) -> anyhow::Result<FakeGemini> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    /// Listens on `addr` (the demo may want a fixed port).
    pub async fn start_on(cfg: FakeGeminiConfig, addr: SocketAddr) -> anyhow::Result<FakeGemini> {
        if cfg.api_key.is_empty() {
            bail!("the fake needs an api_key to check");
        }
        server::check_pacing("chunk_ms", cfg.chunk_ms, cfg.realtime_factor)?;
        if let Some((name, args)) = &cfg.tool_call {
            let parsed: serde_json::Value =
                serde_json::from_str(args).with_context(|| format!("tool_call args of {name}"))?;
            if !parsed.is_object() {
                bail!("tool_call args of {name} must be a JSON object");
            }
        }
        let (text, chunk_ms) = (cfg.reply_text.clone(), cfg.chunk_ms);
        let reply = off_runtime("rendering the reply", move || {
            reply::render(&text, chunk_ms)
        })
        .await?;
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            cfg,
            reply: Arc::new(reply),
            stats: Default::default(),
        });
        let (addr, server) =
            ServerTask::listen(addr, "Gemini", shared.clone(), handle_connection).await?;
        Ok(FakeGemini {
            addr,
            shared,
            _server: server,
        })
    }

    /// `ws://127.0.0.1:PORT/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent`.
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, handshake::PATH)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key clients must send.
    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    pub fn stats(&self) -> FakeGeminiStats {
        self.shared.stats.snapshot()
    }

    /// Changes the fault for sessions opened from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }
}

async fn handle_connection(tcp: TcpStream, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let fault = shared.faults.next();
    let upgraded = server::upgrade(tcp, "Gemini", |req| {
        handshake::check(req, &shared.cfg.api_key, &fault)
    });
    let Some((ws, ())) = upgraded.await else {
        return;
    };
    let session = connection::serve(ws, shared.clone(), fault, shutdown);
    shared.stats.sessions.during(session).await;
}
