//! The engine behind [`Turns`] ([`EngineTurns`]): its `Conversation` goes to and from the session store as
//! JSON.

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::turns::{NextAction, Reply, Turns, TurnsError};
use voice_core::config::Secret;
use voice_core::providers::catalog::{LlmKind, ProviderSettings, SttKind, TtsKind};

use crate::engine::{Action, Conversation, EngineError, EngineSettings, TurnEngine, TurnOutcome};

fn load(state: &serde_json::Value) -> Result<Conversation, TurnsError> {
    if state.is_null() {
        return Ok(Conversation::default());
    }
    serde_json::from_value(state.clone()).map_err(|e| TurnsError::State(e.to_string()))
}

fn store(conv: &Conversation) -> Result<serde_json::Value, TurnsError> {
    serde_json::to_value(conv).map_err(|e| TurnsError::State(e.to_string()))
}

fn error(e: EngineError) -> TurnsError {
    match e.http_status() {
        400 => TurnsError::BadAudio(e.to_string()),
        503 => TurnsError::Unavailable(e.to_string()),
        502 => TurnsError::Provider(e.to_string()),
        _ => TurnsError::State(e.to_string()),
    }
}

fn reply(out: TurnOutcome, rate: u32) -> Reply {
    Reply {
        caller_text: out.caller_text,
        reply_text: out.reply_text,
        audio: out.audio,
        audio_rate: rate,
        action: match out.action {
            Action::Continue => NextAction::Continue,
            Action::Transfer { target } => NextAction::Transfer { target },
            Action::Hangup => NextAction::Hangup,
        },
        timings: serde_json::to_value(out.timings).unwrap_or_default(),
    }
}

/// The engine with what `/healthz` says of its providers.
pub struct EngineTurns {
    engine: TurnEngine,
    providers: serde_json::Map<String, serde_json::Value>,
}

impl EngineTurns {
    pub fn new(engine: TurnEngine, settings: &ProviderSettings) -> Self {
        let providers = provider_status(engine.settings(), settings, |name| {
            std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
        });
        Self { engine, providers }
    }
}

/// Each provider of the chains: `configured`, or `no API key` when neither its table nor
/// its environment variable has one (every network provider reads its key per request;
/// Piper needs none).
fn provider_status(
    engine: &EngineSettings,
    p: &ProviderSettings,
    env_set: impl Fn(&str) -> bool,
) -> serde_json::Map<String, serde_json::Value> {
    let keyed = |key: &Secret, env: &str| {
        if !key.is_empty() || env.is_empty() || env_set(env) {
            "configured"
        } else {
            "no API key"
        }
    };
    let mut out = serde_json::Map::new();
    for &kind in &engine.stt {
        let status = match kind {
            SttKind::Deepgram => keyed(&p.deepgram.api_key, "DEEPGRAM_API_KEY"),
            SttKind::OpenaiTranscribe => keyed(
                &p.openai_transcribe.api_key,
                &p.openai_transcribe.api_key_env,
            ),
        };
        out.insert(name(&kind), status.into());
    }
    for &kind in &engine.llm {
        let status = match kind {
            LlmKind::OpenaiChat => keyed(&p.openai_chat.api_key, &p.openai_chat.api_key_env),
            LlmKind::Groq => keyed(&p.groq.api_key, &p.groq.api_key_env),
            LlmKind::Ollama => keyed(&p.ollama.api_key, &p.ollama.api_key_env),
            LlmKind::Anthropic => keyed(&p.anthropic.api_key, &p.anthropic.api_key_env),
        };
        out.insert(name(&kind), status.into());
    }
    for &kind in &engine.tts {
        let status = match kind {
            TtsKind::ElevenlabsTts => keyed(&p.elevenlabs_tts.api_key, "ELEVENLABS_API_KEY"),
            TtsKind::OpenaiSpeech => keyed(&p.openai_speech.api_key, "OPENAI_API_KEY"),
            TtsKind::Piper => "configured",
        };
        out.insert(name(&kind), status.into());
    }
    out
}

impl Turns for EngineTurns {
    fn greeting<'a>(
        &'a self,
        conversation: &'a mut serde_json::Value,
    ) -> BoxFuture<'a, Result<Reply, TurnsError>> {
        async move {
            let mut conv = load(conversation)?;
            let out = self.engine.greeting(&mut conv).await.map_err(error)?;
            *conversation = store(&conv)?;
            Ok(reply(out, self.engine.settings().audio_rate))
        }
        .boxed()
    }

    fn turn<'a>(
        &'a self,
        conversation: &'a mut serde_json::Value,
        audio: &'a [i16],
        rate: u32,
    ) -> BoxFuture<'a, Result<Reply, TurnsError>> {
        async move {
            let mut conv = load(conversation)?;
            let out = self
                .engine
                .turn(&mut conv, audio, rate)
                .await
                .map_err(error)?;
            *conversation = store(&conv)?;
            Ok(reply(out, self.engine.settings().audio_rate))
        }
        .boxed()
    }

    fn providers(&self) -> serde_json::Map<String, serde_json::Value> {
        self.providers.clone()
    }
}

/// A provider kind's config name (`deepgram`, `groq`, …).
fn name(kind: &impl serde::Serialize) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_without_a_key_anywhere_are_reported() {
        let engine = EngineSettings {
            stt: vec![SttKind::Deepgram, SttKind::OpenaiTranscribe],
            llm: vec![LlmKind::Groq, LlmKind::Ollama],
            tts: vec![
                TtsKind::ElevenlabsTts,
                TtsKind::OpenaiSpeech,
                TtsKind::Piper,
            ],
            ..EngineSettings::default()
        };
        let mut p = ProviderSettings::default();
        p.deepgram.api_key = Secret::new("dg-key");
        let status = provider_status(&engine, &p, |name| name == "GROQ_API_KEY");
        assert_eq!(status["deepgram"], "configured");
        assert_eq!(status["openai_transcribe"], "no API key");
        assert_eq!(status["groq"], "configured");
        // Ollama and Piper need no key.
        assert_eq!(status["ollama"], "configured");
        assert_eq!(status["piper"], "configured");
        assert_eq!(status["elevenlabs_tts"], "no API key");
    }
}
