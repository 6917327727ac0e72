//! A strict fake of OpenAI's audio REST endpoints, for tests, the load tool and the
//! offline demo. Wire facts: /work/shared/reference/providers.md §6.
//!
//! - `POST /v1/audio/transcriptions`: a multipart WAV upload, checked like the real
//!   service (`transcriptions.rs`), answered `{"text": …}` with the next line of a
//!   script shared by all requests (cycled), or "" for a silent file; Whisper's
//!   `verbose_json` and the diarize model's `diarized_json` carry timed segments, from a
//!   scripted call [`recording`](FakeOpenAiAudioConfig::recording) when set
//!   (`formats.rs`).
//! - `POST /v1/audio/speech`: JSON in, 24 kHz audio streamed out as `pcm` or `wav`
//!   (`speech.rs`).
//!
//! Both want `Authorization: Bearer <key>` (401 with OpenAI's error shape otherwise) and
//! are also served under Groq's `/openai/v1/…`. Scripting from a test: fixed delays
//! (`transcribe_delay_ms`, `speech_first_byte_ms`), [`Fault`]s per request, and
//! [`FakeOpenAiAudioStats`] (what was uploaded, the texts spoken, the most transcriptions
//! in flight at once).

#[cfg(test)]
mod format_tests;
mod formats;
mod http_api;
mod multipart;
mod speech;
mod stats;
#[cfg(test)]
mod tests;
mod transcriptions;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::bail;
use tokio::sync::watch;

use crate::fake_common::server::{self, FaultPlan, ServerTask};

pub use formats::ScriptedSegment;
pub use speech::SPEECH_RATE;
pub use stats::FakeOpenAiAudioStats;

/// A failure to inject, for the requests made after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Answer with this HTTP status and an OpenAI error body.
    Refuse(u16),
    /// Never answer.
    Hang,
    /// Transcriptions: answer 200 with JSON cut short. (Speech ignores it.)
    MalformedJson,
    /// Speech: cut the connection after this many audio chunks. Transcriptions: cut it
    /// before any of the answer.
    DropAfterChunks(u32),
}

/// What the speech endpoint sounds like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpeechVoice {
    /// espeak-ng pt-BR speaking the input (cached per text).
    #[default]
    Espeak,
    /// A tone as long as the input would take to say: nearly free, for load runs.
    Tone,
}

#[derive(Debug, Clone)]
pub struct FakeOpenAiAudioConfig {
    /// The key clients must send as `Authorization: Bearer <key>`.
    pub api_key: String,
    /// What uploads "say", one line per request, cycled over all requests.
    pub transcripts: Vec<String>,
    /// What every upload says when set, whatever its audio: a call recording's
    /// segments (speaker, span, text). Empty: the next `transcripts` line spans the
    /// upload, said by speaker `A`.
    pub recording: Vec<ScriptedSegment>,
    /// Every transcription is answered this long after its upload arrived.
    pub transcribe_delay_ms: u64,
    /// RMS (PCM16) of a 20 ms window that counts as speech: an upload without one is "".
    pub vad_threshold_rms: f64,
    /// Delay before a speech answer's first bytes.
    pub speech_first_byte_ms: u64,
    /// Audio per body chunk of a speech answer.
    pub speech_chunk_ms: u32,
    /// Speech chunks go out this many times faster than real time.
    pub speech_realtime_factor: f32,
    pub speech_voice: SpeechVoice,
    pub fault: Fault,
}

impl Default for FakeOpenAiAudioConfig {
    fn default() -> Self {
        Self {
            api_key: "sk-fake-openai-audio".into(),
            transcripts: vec![
                "Olá, bom dia.".into(),
                "Eu gostaria de marcar uma consulta.".into(),
                "Pode ser na segunda-feira de manhã?".into(),
                "Obrigado, até logo.".into(),
            ],
            recording: Vec::new(),
            transcribe_delay_ms: 150,
            vad_threshold_rms: 500.0,
            speech_first_byte_ms: 150,
            speech_chunk_ms: 100,
            speech_realtime_factor: 4.0,
            speech_voice: SpeechVoice::Espeak,
            fault: Fault::None,
        }
    }
}

/// What every request of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakeOpenAiAudioConfig,
    pub stats: stats::StatsRecorder,
    pub shutdown: watch::Receiver<bool>,
    faults: FaultPlan<Fault>,
    next_line: AtomicUsize,
}

impl Shared {
    /// The next scripted transcript.
    pub fn next_transcript(&self) -> String {
        let i = self.next_line.fetch_add(1, Ordering::Relaxed);
        self.cfg.transcripts[i % self.cfg.transcripts.len()].clone()
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeOpenAiAudio {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: ServerTask,
}

impl FakeOpenAiAudio {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakeOpenAiAudioConfig) -> anyhow::Result<FakeOpenAiAudio> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    pub async fn start_on(cfg: FakeOpenAiAudioConfig, addr: SocketAddr) -> anyhow::Result<Self> {
        if cfg.transcripts.is_empty() || cfg.api_key.is_empty() {
            bail!("the fake needs an api_key and at least one transcript");
        }
        formats::check_script(&cfg.recording)?;
        server::check_pacing(
            "speech_chunk_ms",
            cfg.speech_chunk_ms,
            cfg.speech_realtime_factor,
        )?;
        let (listener, addr) = server::bind(addr).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            cfg,
            stats: Default::default(),
            shutdown: shutdown_rx,
            next_line: AtomicUsize::new(0),
        });
        let app = http_api::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake OpenAI audio server stopped");
            }
        });
        Ok(FakeOpenAiAudio {
            shared,
            addr,
            _server: ServerTask::new(shutdown, task),
        })
    }

    /// `http://127.0.0.1:PORT/v1`: the API base (OpenAI's `base_url`).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, http_api::BASE_PATH)
    }

    /// The whole transcription endpoint.
    pub fn transcriptions_url(&self) -> String {
        format!("http://{}{}", self.addr, http_api::TRANSCRIPTIONS_PATH)
    }

    /// The whole speech endpoint.
    pub fn speech_url(&self) -> String {
        format!("http://{}{}", self.addr, http_api::SPEECH_PATH)
    }

    /// Groq's spelling of the transcription endpoint (`…/openai/v1/audio/transcriptions`).
    pub fn groq_transcriptions_url(&self) -> String {
        format!(
            "http://{}{}{}",
            self.addr,
            http_api::GROQ_PREFIX,
            http_api::TRANSCRIPTIONS_PATH
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> String {
        self.shared.cfg.api_key.clone()
    }

    pub fn stats(&self) -> FakeOpenAiAudioStats {
        self.shared.stats.snapshot()
    }

    /// The fault for requests made from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }

    /// One fault per new request, in order, then `after`.
    pub fn set_faults(&self, next: Vec<Fault>, after: Fault) {
        self.shared.faults.set_sequence(next, after);
    }
}
