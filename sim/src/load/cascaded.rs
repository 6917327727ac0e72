//! The fakes a cascaded agent talks to in a load run: Deepgram (STT), an OpenAI-style chat
//! model and ElevenLabs streaming TTS, each with a fixed delay, so the run's answer time is
//! the bridge's turn decision + the three delays + the bridge's own overhead.

use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Value};

use crate::fake_deepgram::{FakeDeepgram, FakeDeepgramConfig};
use crate::fake_elevenlabs_tts::{FakeElevenLabsTts, FakeElevenLabsTtsConfig, Voice};
use crate::fake_llm::{FakeLlm, FakeLlmConfig};

/// The LLM's pace after its first token: about what a fast hosted model streams.
const TOKEN_INTERVAL_MS: u64 = 20;
/// How many error messages of each fake go into the summary (the counts are whole).
const ERRORS_SHOWN: usize = 3;

/// The fixed delays of the cascaded fakes (issue 5: STT final 150 ms, LLM first token
/// 300 ms, TTS first byte 120 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CascadedDelays {
    /// Deepgram holds every final back this long.
    pub stt_final_ms: u64,
    /// The chat model's first token comes this long after the response headers.
    pub llm_first_token_ms: u64,
    /// TTS audio starts this long after a text is complete.
    pub tts_first_byte_ms: u64,
}

impl Default for CascadedDelays {
    fn default() -> Self {
        Self {
            stt_final_ms: 150,
            llm_first_token_ms: 300,
            tts_first_byte_ms: 120,
        }
    }
}

impl CascadedDelays {
    /// What a turn waits on the fakes in all: subtracted from each answer time.
    pub fn total_ms(&self) -> u64 {
        self.stt_final_ms + self.llm_first_token_ms + self.tts_first_byte_ms
    }
}

/// How the cascaded fakes behave.
#[derive(Debug, Clone, Default)]
pub struct CascadedOptions {
    pub delays: CascadedDelays,
    /// What Deepgram hears the caller say, one line per utterance, cycled (the run's caller
    /// script); empty: the common caller transcript.
    pub utterances: Vec<String>,
}

/// The three running fakes.
pub struct CascadedFakes {
    pub deepgram: FakeDeepgram,
    pub llm: FakeLlm,
    pub tts: FakeElevenLabsTts,
}

impl CascadedFakes {
    /// Starts the fakes: Deepgram transcribes `options.utterances` (or `caller_transcript`),
    /// the model answers `reply_text`, TTS speaks it as a cheap tone faster than real time.
    pub async fn start(
        options: &CascadedOptions,
        reply_text: &str,
        caller_transcript: &str,
    ) -> anyhow::Result<Self> {
        let utterances = if options.utterances.is_empty() {
            vec![caller_transcript.to_string()]
        } else {
            options.utterances.clone()
        };
        let d = options.delays;
        let deepgram = FakeDeepgram::start(FakeDeepgramConfig {
            utterances,
            final_delay_ms: d.stt_final_ms,
            ..FakeDeepgramConfig::default()
        })
        .await
        .context("starting the fake Deepgram")?;
        let llm = FakeLlm::start(FakeLlmConfig {
            reply_text: reply_text.to_string(),
            // Any model: the bridge's configured one is not under test.
            models: Vec::new(),
            first_token_ms: d.llm_first_token_ms,
            token_interval_ms: TOKEN_INTERVAL_MS,
            ..FakeLlmConfig::default()
        })
        .await
        .context("starting the fake chat model")?;
        let tts = FakeElevenLabsTts::start(FakeElevenLabsTtsConfig {
            voice: Voice::default(), // the tone: free to make, fine for 100 calls
            first_byte_ms: d.tts_first_byte_ms,
            ..FakeElevenLabsTtsConfig::default()
        })
        .await
        .context("starting the fake ElevenLabs TTS")?;
        Ok(Self { deepgram, llm, tts })
    }

    /// The bridge's environment: a cascaded agent with one provider per stage, each
    /// pointed at its fake.
    pub fn bridge_env(&self) -> Vec<(String, String)> {
        let var = |k: &str, v: &str| (format!("VOICE_BRIDGE__{k}"), v.to_string());
        vec![
            var("AGENT__PROVIDER", "cascaded"),
            var("AGENT__CASCADED__STT", r#"["deepgram"]"#),
            var("AGENT__CASCADED__LLM", r#"["openai_chat"]"#),
            var("AGENT__CASCADED__TTS", r#"["elevenlabs_tts"]"#),
            var("PROVIDERS__DEEPGRAM__URL", &self.deepgram.url()),
            var("PROVIDERS__DEEPGRAM__API_KEY", &self.deepgram.api_key()),
            var(
                "PROVIDERS__OPENAI_CHAT__URL",
                &self.llm.chat_completions_url(),
            ),
            var("PROVIDERS__OPENAI_CHAT__API_KEY", &self.llm.api_key()),
            var("PROVIDERS__ELEVENLABS_TTS__URL", &self.tts.url()),
            var("PROVIDERS__ELEVENLABS_TTS__VOICE_ID", &self.tts.voice_id()),
            var("PROVIDERS__ELEVENLABS_TTS__API_KEY", &self.tts.api_key()),
        ]
    }

    /// Where the fakes listen, for the start-up line.
    pub fn urls(&self) -> String {
        format!(
            "STT {}, LLM {}, TTS {}",
            self.deepgram.url(),
            self.llm.chat_completions_url(),
            self.tts.url()
        )
    }

    /// What each fake saw, for the run's report.
    pub fn summary(&self) -> Value {
        let first = |errors: &[String]| -> Vec<String> {
            errors.iter().take(ERRORS_SHOWN).cloned().collect()
        };
        let stt = self.deepgram.stats();
        let llm = self.llm.stats();
        let tts = self.tts.stats();
        json!({
            "provider": "cascaded",
            "stt": {"provider": "deepgram", "sessions": stt.sessions,
                "refused": stt.refused, "audio_s": stt.audio_ms_received / 1000,
                "finals": stt.finals_sent, "speech_finals": stt.speech_finals_sent,
                "finalizes": stt.finalizes, "utterance_ends": stt.utterance_ends_sent,
                "idle_closes": stt.idle_closes,
                "protocol_errors": stt.protocol_errors.len(),
                "first_errors": first(&stt.protocol_errors)},
            "llm": {"provider": "openai_chat", "requests": llm.requests,
                "streams": llm.streams_started, "completed": llm.streams_completed,
                "cancelled": llm.streams_cancelled, "faulted": llm.streams_faulted,
                "rejections": llm.rejections.len(), "first_errors": first(&llm.rejections)},
            "tts": {"provider": "elevenlabs_tts", "sessions": tts.sessions,
                "refused": tts.refused_upgrades, "generations": tts.generations,
                "flushes": tts.flushes, "finals": tts.finals,
                "closed_by_client": tts.closed_by_client,
                "inactivity_closes": tts.inactivity_closes,
                "audio_s": tts.audio_ms_sent / 1000,
                "protocol_errors": tts.protocol_errors.len(),
                "first_errors": first(&tts.protocol_errors)},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bridge_env_points_each_stage_at_its_fake() {
        let options = CascadedOptions {
            utterances: vec!["Bom dia.".into()],
            ..CascadedOptions::default()
        };
        assert_eq!(options.delays.total_ms(), 570);
        let fakes = CascadedFakes::start(&options, "Olá.", "(caller)")
            .await
            .unwrap();
        let env = fakes.bridge_env();
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == &format!("VOICE_BRIDGE__{k}"))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} not set"))
        };
        assert_eq!(get("AGENT__PROVIDER"), "cascaded");
        assert_eq!(get("AGENT__CASCADED__LLM"), r#"["openai_chat"]"#);
        assert_eq!(get("PROVIDERS__DEEPGRAM__URL"), fakes.deepgram.url());
        assert!(get("PROVIDERS__OPENAI_CHAT__URL").ends_with("/v1/chat/completions"));
        assert_eq!(get("PROVIDERS__ELEVENLABS_TTS__VOICE_ID"), "fake_voice_pt");
        let summary = fakes.summary();
        assert_eq!(summary["provider"], "cascaded");
        assert_eq!(summary["stt"]["sessions"], 0);
        assert_eq!(summary["llm"]["rejections"], 0);
        assert_eq!(summary["tts"]["protocol_errors"], 0);
    }
}
