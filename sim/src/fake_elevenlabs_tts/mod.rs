//! A strict fake of ElevenLabs streaming text to speech (`stream-input` WebSocket), for
//! tests, the load tool and the offline demo. Wire facts: /work/shared/reference/
//! providers.md §3.1 and §9. (The Agents fake is [`crate::fake_elevenlabs`].)
//!
//! It checks the upgrade (path and voice, `xi-api-key` header, `model_id`,
//! `output_format`, `inactivity_timeout`, `language_code`), then the stream: BOS `" "`
//! first (carrying the key when the header did not: `xi-api-key`, `xi_api_key` or
//! `authorization: Bearer …`), text chunks buffered until `flush`, a
//! `chunk_length_schedule` step or EOS `""`; EOS gets the rest of the audio,
//! `{"isFinal": true}` and close 1000. A client mistake gets the service's error message
//! and close 1008, as does a stream silent for `inactivity_timeout`.
//!
//! Audio: [`Voice::Tone`] by default (a voiced tone, 60 ms per character: free, exact
//! lengths, fine for 100-call load runs), or [`Voice::Espeak`] for real pt-BR speech
//! (rendered once per text and cached). It goes out `first_byte_ms` after the text is
//! complete, paced `realtime_factor` times faster than real time, with relative
//! alignment if asked. [`Fault`]s break chosen streams; [`FakeTtsStats`] says what came.

mod connection;
mod format;
mod handshake;
mod session;
mod stats;
#[cfg(test)]
mod tests;
mod voice;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::bail;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::fake_common::reply::off_runtime;
use crate::fake_common::server::{self, FaultPlan, ServerTask};

pub use format::OutputFormat;
pub use stats::{FakeTtsStats, SessionStats};
pub use voice::Voice;

/// A failure to inject, for streams opened after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Answer the upgrade with this HTTP status (401, 429, 503, …).
    RefuseUpgrade(u16),
    /// After this many audio messages, send the service's error message and close 1008.
    ErrorAfterChunks(u32),
    /// After this many audio messages, drop the connection (no Close frame).
    DropAfterChunks(u32),
    /// After this many audio messages, send nothing more (keep reading).
    HangAfterChunks(u32),
}

#[derive(Debug, Clone)]
pub struct FakeElevenLabsTtsConfig {
    /// Required key (header or first message).
    pub api_key: String,
    /// Voices that exist; empty: any.
    pub voices: Vec<String>,
    /// `model_id`s accepted.
    pub models: Vec<String>,
    pub voice: Voice,
    /// From a text being complete (flush, schedule step, EOS) to its first audio.
    pub first_byte_ms: u64,
    /// Audio per message.
    pub chunk_ms: u32,
    /// Audio goes out this many times faster than real time.
    pub realtime_factor: f32,
    /// Cut PCM messages in the middle of a sample (clients must carry the odd byte).
    pub odd_chunks: bool,
    /// Send `alignment` / `normalizedAlignment` (relative to each message).
    pub alignment: bool,
    pub fault: Fault,
}

impl Default for FakeElevenLabsTtsConfig {
    fn default() -> Self {
        Self {
            api_key: "xi-fake-elevenlabs-tts".into(),
            voices: vec!["fake_voice_pt".into()],
            models: [
                "eleven_flash_v2_5",
                "eleven_turbo_v2_5",
                "eleven_multilingual_v2",
                "eleven_flash_v2",
                "eleven_turbo_v2",
            ]
            .map(String::from)
            .to_vec(),
            voice: Voice::default(),
            first_byte_ms: 120,
            chunk_ms: 100,
            realtime_factor: 4.0,
            odd_chunks: false,
            alignment: true,
            fault: Fault::None,
        }
    }
}

/// What every stream of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakeElevenLabsTtsConfig,
    pub stats: stats::StatsRecorder,
    faults: FaultPlan<Fault>,
}

/// A running fake server; it stops when dropped.
pub struct FakeElevenLabsTts {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: ServerTask,
}

impl FakeElevenLabsTts {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeElevenLabsTtsConfig) -> anyhow::Result<Self> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    /// Listens on `addr` (the demo may want a fixed port).
    pub async fn start_on(cfg: FakeElevenLabsTtsConfig, addr: SocketAddr) -> anyhow::Result<Self> {
        if cfg.api_key.is_empty() || cfg.models.is_empty() {
            bail!("the fake needs an api_key and at least one model");
        }
        server::check_pacing("chunk_ms", cfg.chunk_ms, cfg.realtime_factor)?;
        if let Voice::Tone { ms_per_char: 0 } = cfg.voice {
            bail!("ms_per_char must be positive");
        }
        if cfg.voice == Voice::Espeak {
            // Fail now, not in the middle of a stream, when espeak-ng is missing.
            let voice = cfg.voice.clone();
            off_runtime("checking espeak-ng", move || voice.render("Olá.", 16_000)).await?;
        }
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            cfg,
            stats: Default::default(),
        });
        let (addr, server) =
            ServerTask::listen(addr, "ElevenLabs TTS", shared.clone(), handle_connection).await?;
        Ok(Self {
            addr,
            shared,
            _server: server,
        })
    }

    /// `ws://127.0.0.1:PORT/v1/text-to-speech`: the client's base URL (it adds
    /// `/{voice_id}/stream-input?…`).
    pub fn url(&self) -> String {
        format!(
            "ws://{}{}",
            self.addr,
            handshake::PATH_PREFIX.trim_end_matches('/')
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    /// A voice that exists (the first configured one; any id when none is).
    pub fn voice_id(&self) -> String {
        self.shared
            .cfg
            .voices
            .first()
            .cloned()
            .unwrap_or_else(|| "any_voice".into())
    }

    /// The samples the fake speaks for `text` at `rate` (before encoding); blocking for
    /// [`Voice::Espeak`].
    pub fn render(&self, text: &str, rate: u32) -> anyhow::Result<Vec<i16>> {
        Ok(self.shared.cfg.voice.render(text, rate)?.to_vec())
    }

    pub fn stats(&self) -> FakeTtsStats {
        self.shared.stats.snapshot()
    }

    /// Changes the fault for streams opened from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }

    /// One fault per stream, in order, then none.
    pub fn set_fault_sequence(&self, faults: Vec<Fault>) {
        self.shared.faults.set_sequence(faults, Fault::None);
    }
}

async fn handle_connection(tcp: TcpStream, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let fault = shared.faults.next();
    let upgraded = server::upgrade(tcp, "ElevenLabs TTS", |req| {
        let checked = handshake::check(req, &shared.cfg, &fault);
        if checked.is_err() {
            shared.stats.add(stats::Count::RefusedUpgrade);
        }
        checked
    });
    let Some((ws, upgrade)) = upgraded.await else {
        return;
    };
    let stream = connection::serve(ws, shared.clone(), upgrade, fault, shutdown);
    shared.stats.sessions.during(stream).await;
}
