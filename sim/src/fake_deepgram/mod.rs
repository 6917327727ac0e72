//! A strict fake of Deepgram's `/v1/listen`, live (WebSocket) and pre-recorded (POST), on
//! one port, for tests, the load tool and the offline demo. Wire facts:
//! /work/shared/reference/providers.md §4 and §9.
//!
//! The live stream checks `Authorization: Token <key>` and the query (`encoding=linear16`
//! with `sample_rate`, `language`), takes audio in binary frames and `KeepAlive`,
//! `Finalize`, `CloseStream` in text frames (anything else closes it with 1008), closes
//! with 1011 `NET-0001` after `idle_timeout_ms` without either, and finds speech with an
//! energy VAD over stream time. What it answers when (interims, finals, `speech_final`,
//! `UtteranceEnd`, `SpeechStarted`, `Finalize` answers) is written out in `stream.rs`;
//! the text comes from a script of utterances, cycled per stream. The POST takes a WAV
//! (mono or multichannel) or `{"url": …}` and answers the §4.2 shape: what a scripted
//! recording of [`RecordedUtterance`]s says (speakers, channels, spans), or one
//! utterance per stretch of speech the VAD finds (`prerecorded.rs`).
//!
//! Scripting from a test: `final_delay_ms` holds every final back (model "STT final
//! 150 ms"), [`Fault`]s refuse, hang, drop or fail streams, and [`FakeDeepgramStats`] says
//! what came in and went out. Streams are independent tasks and cheap (an RMS per 20 ms).

mod connection;
mod http_api;
mod messages;
mod params;
mod prerecorded;
mod prerecorded_body;
#[cfg(test)]
mod prerecorded_tests;
mod stats;
mod stream;
#[cfg(test)]
mod strict_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::bail;
use tokio::sync::watch;

use crate::fake_common::server::{self, FaultPlan, ServerTask};
use crate::fake_common::stats::lock;

pub use prerecorded::RecordedUtterance;
pub use stats::FakeDeepgramStats;

/// A failure to inject, for the streams and requests started after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Answer the upgrade or the upload with this HTTP status (401, 429, 503, …).
    Refuse(u16),
    /// Never answer the upgrade or the upload (a connect timeout).
    HangUpgrade,
    /// Accept the stream, then never send anything (and never close it after
    /// `CloseStream`); an upload is never answered.
    Hang,
    /// Drop the connection without a close frame once this many results went out.
    DropAfterResults(u32),
    /// Send an `Error` message and close with 1011 once this many results went out.
    ErrorAfterResults(u32),
    /// Answer the upgrade or the upload this many ms late, then as usual.
    Delay(u64),
}

#[derive(Debug, Clone)]
pub struct FakeDeepgramConfig {
    /// The key clients must send as `Authorization: Token <key>`.
    pub api_key: String,
    /// What callers "say", one line per utterance, cycled (per stream, per upload).
    pub utterances: Vec<String>,
    /// Every final (and every upload's answer) is held back this long.
    pub final_delay_ms: u64,
    /// An interim per this much speech (stream time).
    pub interim_every_ms: u64,
    /// RMS (PCM16) of a 20 ms window that counts as speech.
    pub vad_threshold_rms: f64,
    /// A stream without audio or a text message for this long is closed (1011, NET-0001).
    pub idle_timeout_ms: u64,
    /// A `Finalize` with no utterance in progress repeats the last final once (with
    /// `from_finalize: true`), like a final that raced the `Finalize`.
    pub repeat_final_on_finalize: bool,
    /// What every pre-recorded request's recording says, when not empty (see
    /// [`FakeDeepgram::set_recording`]).
    pub recording: Vec<RecordedUtterance>,
    pub fault: Fault,
}

impl Default for FakeDeepgramConfig {
    fn default() -> Self {
        Self {
            api_key: "dg-fake-key".into(),
            utterances: vec![
                "Olá, bom dia.".into(),
                "Eu gostaria de marcar uma consulta.".into(),
                "Pode ser na segunda-feira de manhã?".into(),
                "Obrigado, até logo.".into(),
            ],
            final_delay_ms: 150,
            interim_every_ms: 400,
            vad_threshold_rms: 500.0,
            idle_timeout_ms: 10_000,
            repeat_final_on_finalize: false,
            recording: Vec::new(),
            fault: Fault::None,
        }
    }
}

/// What every stream and request of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakeDeepgramConfig,
    pub script: Arc<Vec<String>>,
    pub stats: stats::StatsRecorder,
    pub shutdown: watch::Receiver<bool>,
    faults: FaultPlan<Fault>,
    recording: Mutex<Arc<Vec<RecordedUtterance>>>,
}

impl Shared {
    /// The scripted recording for the next pre-recorded request (empty: none).
    pub fn recording(&self) -> Arc<Vec<RecordedUtterance>> {
        lock(&self.recording).clone()
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeDeepgram {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: ServerTask,
}

impl FakeDeepgram {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeDeepgramConfig) -> anyhow::Result<FakeDeepgram> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    pub async fn start_on(cfg: FakeDeepgramConfig, addr: SocketAddr) -> anyhow::Result<Self> {
        if cfg.utterances.is_empty() || cfg.utterances.iter().any(|u| u.trim().is_empty()) {
            bail!("the fake needs utterances, none of them empty");
        }
        if cfg.api_key.is_empty() || cfg.idle_timeout_ms == 0 {
            bail!("api_key and idle_timeout_ms must be set");
        }
        prerecorded::check_recording(&cfg.recording)?;
        let (listener, addr) = server::bind(addr).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            script: Arc::new(cfg.utterances.clone()),
            recording: Mutex::new(Arc::new(cfg.recording.clone())),
            cfg,
            stats: Default::default(),
            shutdown: shutdown_rx,
        });
        let app = http_api::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake Deepgram server stopped");
            }
        });
        Ok(FakeDeepgram {
            shared,
            addr,
            _server: ServerTask::new(shutdown, task),
        })
    }

    /// `ws://127.0.0.1:PORT/v1/listen`: the live URL (clients add the query).
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, http_api::LISTEN_PATH)
    }

    /// `http://127.0.0.1:PORT/v1/listen`: the pre-recorded URL.
    pub fn http_url(&self) -> String {
        format!("http://{}{}", self.addr, http_api::LISTEN_PATH)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    pub fn stats(&self) -> FakeDeepgramStats {
        self.shared.stats.snapshot()
    }

    /// The fault for streams and uploads started from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }

    /// One fault per new stream or upload, in order, then `after`.
    pub fn set_faults(&self, next: Vec<Fault>, after: Fault) {
        self.shared.faults.set_sequence(next, after);
    }

    /// What the recordings of pre-recorded requests from now on say (an empty list goes
    /// back to transcribing what the VAD finds). Refused when an utterance has no text,
    /// ends before it starts or sits on a channel past 7.
    pub fn set_recording(&self, recording: Vec<RecordedUtterance>) -> anyhow::Result<()> {
        prerecorded::check_recording(&recording)?;
        *lock(&self.shared.recording) = Arc::new(recording);
        Ok(())
    }
}
