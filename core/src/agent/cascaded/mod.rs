//! The cascaded agent: speech to text → LLM with tools → text to speech, each stage a
//! chain of providers tried in order, behind the same [`Agent`] trait as the realtime
//! agents, so the bridge's call task does not care which it has.
//!
//! Turn-taking: with local turns (the bridge's VAD + Smart Turn, the usual setup) the
//! call says when the caller finished ([`AgentInput::EndOfTurn`]); STT's finals give the
//! words. Without, STT's own endpoint (`speech_final`) ends the turn and its
//! `SpeechStarted` is the barge-in signal. A confident STT final before the call decides
//! starts the LLM early (preemptive generation); that answer is held back, and thrown
//! away if the caller goes on.
//!
//! Files: `session.rs` (the per-call loop and the history), `answer.rs` (one answer:
//! LLM rounds and tool calls), `speaker.rs` (its TTS with fallback), `sentences.rs`
//! (cutting text into speakable pieces), `heard.rs` (what the caller heard of an
//! interrupted answer), `guard.rs` (the prompt guard), `settings.rs`.

mod answer;
mod guard;
mod heard;
mod sentences;
mod session;
mod settings;
mod speaker;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::Instrument;

pub use guard::{GuardSettings, PromptGuard, Violation};
pub use heard::heard_text;
pub use sentences::SentenceSplitter;
pub use settings::CascadedSettings;

use super::{Agent, AgentError, AgentPersona, AgentSession, CallInfo};
use crate::providers::llm::ChatModel;
use crate::providers::stt::SpeechToText;
use crate::providers::tts::TextToSpeech;
use crate::providers::ProviderError;

/// The providers of each stage, in the order they are tried.
#[derive(Clone, Default)]
pub struct Stages {
    pub stt: Vec<Arc<dyn SpeechToText>>,
    pub llm: Vec<Arc<dyn ChatModel>>,
    pub tts: Vec<Arc<dyn TextToSpeech>>,
}

pub struct CascadedAgent {
    inner: Arc<Inner>,
}

struct Inner {
    stt: Vec<Arc<dyn SpeechToText>>,
    llm: Vec<Arc<dyn ChatModel>>,
    tts: Vec<Arc<dyn TextToSpeech>>,
    persona: AgentPersona,
    settings: CascadedSettings,
    guard: Arc<PromptGuard>,
    system_prompt: String,
    /// `replay_buffer_ms` of STT audio, in samples (worked out once, not per frame).
    replay_samples: usize,
}

impl CascadedAgent {
    pub fn new(stages: Stages, persona: AgentPersona, settings: CascadedSettings) -> Self {
        let system_prompt = system_prompt(&persona);
        let guard = Arc::new(PromptGuard::new(settings.guard.clone(), &system_prompt));
        let replay_samples =
            (settings.replay_buffer_ms * u64::from(settings.stt_rate) / 1000) as usize;
        Self {
            inner: Arc::new(Inner {
                stt: stages.stt,
                llm: stages.llm,
                tts: stages.tts,
                persona,
                settings,
                guard,
                system_prompt,
                replay_samples,
            }),
        }
    }
}

/// The instructions, plus what every phone agent must know about its medium.
fn system_prompt(persona: &AgentPersona) -> String {
    let language = match persona.language.trim() {
        "" => String::new(),
        l => format!(" Answer in the caller's language ({l})."),
    };
    format!(
        "{}\n\nYou are speaking on a phone call: your words are turned into speech. Answer in short \
         spoken sentences, without lists, markdown, emojis or URLs.{language}",
        persona.instructions.trim()
    )
}

impl Agent for CascadedAgent {
    fn name(&self) -> &'static str {
        "cascaded"
    }

    fn connect(&self, call: CallInfo) -> BoxFuture<'static, Result<AgentSession, AgentError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            if inner.stt.is_empty() || inner.llm.is_empty() || inner.tts.is_empty() {
                return Err(AgentError::Config(
                    "a cascaded agent needs at least one STT, one LLM and one TTS provider".into(),
                ));
            }
            let output_rate = inner.tts[0].sample_rate();
            let (events_tx, events_rx) = mpsc::channel(256);
            let (input_tx, input_rx) = mpsc::channel(256);
            let span = tracing::info_span!("cascaded", call_id = %call.call_id);
            let session = session::Session::open(inner.clone(), call, output_rate, events_tx)
                .await
                .map_err(|e| match e {
                    ProviderError::Timeout => AgentError::Timeout,
                    ProviderError::Config(m) => AgentError::Config(m),
                    ProviderError::Protocol(m) => AgentError::Protocol(m),
                    other => AgentError::Refused(other.to_string()),
                })?;
            tokio::spawn(session.run(input_rx).instrument(span));
            Ok(AgentSession {
                input: input_tx,
                events: events_rx,
                input_rate: inner.settings.stt_rate,
                output_rate,
            })
        })
    }
}
