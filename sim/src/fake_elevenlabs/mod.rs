//! A strict fake of the ElevenLabs Agents (Conversational AI) WebSocket, for tests, the
//! load tool and the offline demo. Wire facts: /work/shared/reference/providers.md §3.2, §9.
//!
//! One HTTP server (axum) serves both `GET /v1/convai/conversation/get_signed_url`
//! (checks `xi-api-key`, hands out one-use tokens) and the conversation WebSocket (checks
//! the token, or only `agent_id` for a public agent). Each conversation waits for
//! `conversation_initiation_client_data`, answers with `conversation_initiation_metadata`,
//! speaks the first message, pings the client, runs an energy VAD over the caller audio,
//! answers each caller turn with a pre-rendered pt-BR reply streamed faster than real time,
//! interrupts itself when the caller barges in, can run one client tool call, and injects
//! [`Fault`]s. Every client mistake is recorded in [`FakeStats::protocol_errors`]; no error
//! message is sent back, since the real service's error shape is unconfirmed.
//!
//! Sessions are independent tasks; the audio is rendered once per fake and shared.

mod answer;
mod connection;
mod format;
mod http_api;
mod reply;
mod session;
mod stats;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::bail;
use tokio::sync::watch;

use crate::fake_common::reply::off_runtime;
use crate::fake_common::server::{self, FaultPlan, ServerTask};
use crate::fake_common::stats::lock;

pub use format::AudioFormat;
pub use stats::FakeStats;

/// A failure to inject, for requests made after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Answer `get_signed_url` with this HTTP status.
    RefuseSignedUrl(u16),
    /// Answer the WebSocket upgrade with this HTTP status.
    RefuseUpgrade(u16),
    /// Accept the conversation, then never send `conversation_initiation_metadata`.
    NoInitiationMetadata,
    /// Close the socket (code 1011) this long after the upgrade.
    CloseAfterMs(u64),
    /// Send a text frame that is not JSON right after the metadata.
    GarbageFrame,
}

#[derive(Debug, Clone)]
pub struct FakeElevenLabsConfig {
    pub agent_id: String,
    /// Required `xi-api-key` for `get_signed_url`; empty: a public agent (no signed URL,
    /// the WebSocket needs only `agent_id`).
    pub api_key: String,
    pub input_format: AudioFormat,
    pub output_format: AudioFormat,
    /// What the agent says when the conversation starts; empty: nothing. A client
    /// override replaces the text (the audio stays this one's, rendered once).
    pub first_message: String,
    /// What the agent says every turn (pt-BR, spoken by espeak-ng).
    pub reply_text: String,
    /// What the fake "transcribes" the caller as.
    pub caller_transcript: String,
    /// Delay from the end of a caller turn (or a tool result) to the answer.
    pub think_ms: u64,
    /// Audio per `audio` message.
    pub chunk_ms: u32,
    /// Audio goes out this many times faster than real time.
    pub realtime_factor: f32,
    /// Quiet after speech that ends the caller's turn.
    pub silence_ms: u64,
    /// RMS (PCM16) of a 20 ms window that counts as speech.
    pub vad_threshold_rms: f64,
    pub ping_interval_ms: u64,
    /// A ping not answered within this long is a protocol error.
    pub pong_timeout_ms: u64,
    /// After an interruption, send one more chunk with the interrupted answer's event_id:
    /// clients must drop it (SDK rule).
    pub late_audio_after_interrupt: bool,
    /// `(tool_name, parameters_json)`: the first caller turn gets this `client_tool_call`;
    /// the answer waits for its `client_tool_result`.
    pub tool_call: Option<(String, String)>,
    pub fault: Fault,
}

impl Default for FakeElevenLabsConfig {
    fn default() -> Self {
        Self {
            agent_id: "agent_fake".into(),
            api_key: "xi-fake-elevenlabs".into(),
            input_format: AudioFormat::Pcm(16_000),
            output_format: AudioFormat::Pcm(16_000),
            first_message: "Olá! Em que posso ajudar?".into(),
            reply_text: "Claro! Posso ajudar com isso. Qual é o seu nome, por favor?".into(),
            caller_transcript: "(caller speech)".into(),
            think_ms: 300,
            chunk_ms: 100,
            realtime_factor: 4.0,
            silence_ms: 500,
            vad_threshold_rms: 500.0,
            ping_interval_ms: 2000,
            pong_timeout_ms: 2000,
            late_audio_after_interrupt: true,
            tool_call: None,
            fault: Fault::None,
        }
    }
}

/// What every session of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakeElevenLabsConfig,
    pub replies: reply::ReplyBank,
    pub stats: stats::StatsRecorder,
    pub addr: SocketAddr,
    /// Signed-URL tokens not used yet.
    pub tokens: Mutex<HashSet<String>>,
    pub shutdown: watch::Receiver<bool>,
    faults: FaultPlan<Fault>,
}

impl Shared {
    /// Runs `f` on the token set (a poisoned lock still works: it only holds strings).
    pub fn with_tokens<T>(&self, f: impl FnOnce(&mut HashSet<String>) -> T) -> T {
        f(&mut lock(&self.tokens))
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeElevenLabs {
    shared: Arc<Shared>,
    _server: ServerTask,
}

impl FakeElevenLabs {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeElevenLabsConfig) -> anyhow::Result<FakeElevenLabs> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    /// Listens on `addr` (the demo may want a fixed port).
    pub async fn start_on(
        cfg: FakeElevenLabsConfig,
        addr: SocketAddr,
    ) -> anyhow::Result<FakeElevenLabs> {
        if cfg.agent_id.is_empty() {
            bail!("the fake needs an agent_id");
        }
        server::check_pacing("chunk_ms", cfg.chunk_ms, cfg.realtime_factor)?;
        if cfg.ping_interval_ms == 0 || cfg.pong_timeout_ms == 0 {
            bail!("ping_interval_ms and pong_timeout_ms must be positive");
        }
        if let Some((name, params)) = &cfg.tool_call {
            let ok = serde_json::from_str::<serde_json::Value>(params).is_ok_and(|v| v.is_object());
            if name.is_empty() || !ok {
                bail!("tool_call needs a name and a JSON object of parameters");
            }
        }
        let (reply_text, first, format, chunk_ms) = (
            cfg.reply_text.clone(),
            cfg.first_message.clone(),
            cfg.output_format,
            cfg.chunk_ms,
        );
        let replies = off_runtime("rendering the replies", move || {
            reply::ReplyBank::render(&reply_text, &first, format, chunk_ms)
        })
        .await?;
        let (listener, addr) = server::bind(addr).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            cfg,
            replies,
            stats: Default::default(),
            addr,
            tokens: Mutex::new(HashSet::new()),
            shutdown: shutdown_rx,
        });
        let app = http_api::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake ElevenLabs server stopped");
            }
        });
        Ok(FakeElevenLabs {
            shared,
            _server: ServerTask::new(shutdown, task),
        })
    }

    /// `ws://127.0.0.1:PORT/v1/convai/conversation` (clients add `?agent_id=`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.shared.addr, http_api::CONVERSATION_PATH)
    }

    /// `http://127.0.0.1:PORT`, the base of `get_signed_url`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The key `get_signed_url` wants (empty: a public agent).
    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    pub fn agent_id(&self) -> String {
        self.shared.cfg.agent_id.clone()
    }

    pub fn stats(&self) -> FakeStats {
        self.shared.stats.snapshot()
    }

    /// Changes the fault for requests made from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }
}
