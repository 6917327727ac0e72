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
mod vad;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

pub use stats::FakeGeminiStats;

/// Time allowed for a client to finish the HTTP upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub reply: Arc<reply::RenderedReply>,
    pub stats: stats::StatsRecorder,
    fault: Mutex<Fault>,
}

impl Shared {
    fn fault(&self) -> Fault {
        match self.fault.lock() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeGemini {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
}

impl FakeGemini {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeGeminiConfig) -> anyhow::Result<FakeGemini> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Listens on `addr` (the demo may want a fixed port).
    pub async fn start_on(cfg: FakeGeminiConfig, addr: SocketAddr) -> anyhow::Result<FakeGemini> {
        if cfg.api_key.is_empty() {
            bail!("the fake needs an api_key to check");
        }
        if cfg.chunk_ms == 0 || !(cfg.realtime_factor.is_finite() && cfg.realtime_factor > 0.0) {
            bail!("chunk_ms and realtime_factor must be positive");
        }
        if let Some((name, args)) = &cfg.tool_call {
            let parsed: serde_json::Value =
                serde_json::from_str(args).with_context(|| format!("tool_call args of {name}"))?;
            if !parsed.is_object() {
                bail!("tool_call args of {name} must be a JSON object");
            }
        }
        let (text, chunk_ms) = (cfg.reply_text.clone(), cfg.chunk_ms);
        let reply =
            tokio::task::spawn_blocking(move || reply::RenderedReply::render(&text, chunk_ms))
                .await
                .context("rendering the reply")??;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            fault: Mutex::new(cfg.fault.clone()),
            cfg,
            reply: Arc::new(reply),
            stats: Default::default(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone(), shutdown_rx));
        Ok(FakeGemini {
            addr,
            shared,
            shutdown,
            accept_task,
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
        match self.shared.fault.lock() {
            Ok(mut f) => *f = fault,
            Err(poisoned) => *poisoned.into_inner() = fault,
        }
    }
}

impl Drop for FakeGemini {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                debug!(%peer, "fake Gemini connection");
                tokio::spawn(handle_connection(tcp, shared.clone(), shutdown.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "fake Gemini accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle_connection(tcp: TcpStream, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let _ = tcp.set_nodelay(true);
    let fault = shared.fault();
    let mut accepted = false;
    let callback = handshake::Checker {
        api_key: &shared.cfg.api_key,
        fault: &fault,
        accepted: &mut accepted,
    };
    let upgraded = tokio::time::timeout(
        UPGRADE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(
            tcp,
            callback,
            Some(crate::freeswitch::connection::small_read_buffer()),
        ),
    )
    .await;
    let ws = match upgraded {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return debug!(error = %e, "fake Gemini upgrade refused or failed"),
        Err(_) => return debug!("fake Gemini upgrade timed out"),
    };
    if !accepted {
        return;
    }
    shared.stats.session_opened();
    connection::serve(ws, shared.clone(), fault, shutdown).await;
    shared.stats.session_closed();
}
