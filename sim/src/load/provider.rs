//! Which fake provider a run's bridge talks to: OpenAI Realtime, Gemini Live, an
//! ElevenLabs agent, or a cascaded agent's three fakes (STT, LLM, TTS). Each is started with
//! the same reply and caller transcript (the realtime fakes with the think time, the
//! cascaded ones with their own delays), and the bridge is pointed at it through its
//! environment.

use anyhow::Context;
use serde_json::{json, Value};

use super::cascaded::{CascadedFakes, CascadedOptions};
use crate::fake_elevenlabs::{FakeElevenLabs, FakeElevenLabsConfig};
use crate::fake_gemini::{FakeGemini, FakeGeminiConfig};
use crate::fake_openai::{FakeOpenAi, FakeOpenAiConfig};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProviderChoice {
    #[default]
    OpenAi,
    Gemini,
    ElevenLabs,
    /// STT → LLM → TTS (needs local turn detection in the bridge's profile).
    Cascaded,
}

impl std::str::FromStr for ProviderChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "openai" | "openai_realtime" => Ok(Self::OpenAi),
            "gemini" | "gemini_live" => Ok(Self::Gemini),
            "elevenlabs" | "elevenlabs_agent" => Ok(Self::ElevenLabs),
            "cascaded" => Ok(Self::Cascaded),
            other => Err(format!(
                "unknown provider {other:?} (openai, gemini, elevenlabs or cascaded)"
            )),
        }
    }
}

/// A running fake provider.
pub enum RunningFake {
    OpenAi(FakeOpenAi),
    Gemini(FakeGemini),
    ElevenLabs(FakeElevenLabs),
    Cascaded(Box<CascadedFakes>),
}

impl RunningFake {
    /// Starts `choice`, taking reply, caller transcript and think time from `common`; the
    /// cascaded fakes take their delays and caller script from `cascaded`.
    pub async fn start(
        choice: ProviderChoice,
        common: FakeOpenAiConfig,
        cascaded: &CascadedOptions,
    ) -> anyhow::Result<Self> {
        Ok(match choice {
            ProviderChoice::OpenAi => Self::OpenAi(
                FakeOpenAi::start(common)
                    .await
                    .context("starting the fake OpenAI Realtime provider")?,
            ),
            ProviderChoice::Gemini => Self::Gemini(
                FakeGemini::start(FakeGeminiConfig {
                    reply_text: common.reply_text,
                    caller_transcript: common.caller_transcript,
                    think_ms: common.think_ms,
                    ..FakeGeminiConfig::default()
                })
                .await
                .context("starting the fake Gemini Live provider")?,
            ),
            ProviderChoice::ElevenLabs => Self::ElevenLabs(
                FakeElevenLabs::start(FakeElevenLabsConfig {
                    reply_text: common.reply_text,
                    caller_transcript: common.caller_transcript,
                    think_ms: common.think_ms,
                    // The bridge plays its own greeting, if any.
                    first_message: String::new(),
                    ..FakeElevenLabsConfig::default()
                })
                .await
                .context("starting the fake ElevenLabs agent")?,
            ),
            ProviderChoice::Cascaded => Self::Cascaded(Box::new(
                CascadedFakes::start(cascaded, &common.reply_text, &common.caller_transcript)
                    .await?,
            )),
        })
    }

    /// The bridge's environment for this provider: its kind, address and key.
    pub fn bridge_env(&self) -> Vec<(String, String)> {
        let var = |k: &str, v: &str| (format!("VOICE_BRIDGE__{k}"), v.to_string());
        match self {
            Self::OpenAi(f) => vec![
                var("AGENT__PROVIDER", "openai_realtime"),
                var("PROVIDERS__OPENAI_REALTIME__URL", &f.url()),
                var("PROVIDERS__OPENAI_REALTIME__API_KEY", &f.api_key()),
            ],
            Self::Gemini(f) => vec![
                var("AGENT__PROVIDER", "gemini_live"),
                var("PROVIDERS__GEMINI_LIVE__URL", &f.url()),
                var("PROVIDERS__GEMINI_LIVE__API_KEY", &f.api_key()),
            ],
            Self::ElevenLabs(f) => vec![
                var("AGENT__PROVIDER", "elevenlabs_agent"),
                var("PROVIDERS__ELEVENLABS_AGENT__URL", &f.ws_url()),
                var("PROVIDERS__ELEVENLABS_AGENT__API_BASE", &f.api_base()),
                var("PROVIDERS__ELEVENLABS_AGENT__AGENT_ID", &f.agent_id()),
                var("PROVIDERS__ELEVENLABS_AGENT__API_KEY", &f.api_key()),
            ],
            Self::Cascaded(f) => f.bridge_env(),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::OpenAi(f) => f.url(),
            Self::Gemini(f) => f.url(),
            Self::ElevenLabs(f) => f.ws_url(),
            Self::Cascaded(f) => f.urls(),
        }
    }

    pub fn openai(&self) -> Option<&FakeOpenAi> {
        match self {
            Self::OpenAi(f) => Some(f),
            _ => None,
        }
    }

    /// What the fake saw, for the run's report.
    pub fn summary(&self) -> Value {
        match self {
            Self::OpenAi(f) => {
                let s = f.stats();
                json!({"provider": "openai_realtime", "sessions": s.sessions_opened,
                    "responses": s.turns, "cancelled": s.responses_cancelled,
                    "client_commits": s.client_commits, "protocol_errors": s.protocol_errors})
            }
            Self::Gemini(f) => {
                let s = f.stats();
                json!({"provider": "gemini_live", "sessions": s.sessions,
                    "caller_turns": s.caller_turns, "responses": s.responses,
                    "interrupted": s.interrupted, "activity_ends": s.activity_ends,
                    "protocol_errors": s.protocol_errors})
            }
            Self::ElevenLabs(f) => {
                let s = f.stats();
                json!({"provider": "elevenlabs_agent", "sessions": s.sessions,
                    "caller_turns": s.caller_turns, "answers": s.answers,
                    "interruptions": s.interruptions, "pings": s.pings_sent,
                    "pongs_ok": s.pongs_ok, "missing_pongs": s.missing_pongs,
                    "protocol_errors": s.protocol_errors})
            }
            Self::Cascaded(f) => f.summary(),
        }
    }
}
