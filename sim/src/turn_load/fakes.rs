//! The turn-api's three providers as fakes with fixed delays, and the turn-api config that
//! points at them.

use std::path::Path;

use anyhow::Context;

use crate::fake_elevenlabs_tts::{FakeElevenLabsTts, FakeElevenLabsTtsConfig, Voice};
use crate::fake_llm::{FakeLlm, FakeLlmConfig};
use crate::fake_openai_audio::{FakeOpenAiAudio, FakeOpenAiAudioConfig};

/// The tenant every load session belongs to, and its key.
pub const DOMAIN: &str = "load.example.com";
pub const API_KEY: &str = "turn-load-key-0123456789abcdef";
/// What the fake STT hears and the fake model answers.
pub const HEARD: &str = "Eu gostaria de marcar uma consulta.";
pub const REPLY: &str = "Claro. Para qual dia?";

/// The providers' fixed delays (the cascaded issue's figures by default).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct TurnDelays {
    /// Each transcription is answered this long after its upload arrived.
    pub stt_ms: u64,
    /// From the chat response's headers to its first token.
    pub llm_first_token_ms: u64,
    /// Between the model's tokens.
    pub llm_token_interval_ms: u64,
    /// From a text being complete to its first TTS audio.
    pub tts_first_byte_ms: u64,
}

impl Default for TurnDelays {
    /// STT 150 ms, first token 300 ms then one every 10 ms, TTS first byte 120 ms.
    fn default() -> Self {
        Self {
            stt_ms: 150,
            llm_first_token_ms: 300,
            llm_token_interval_ms: 10,
            tts_first_byte_ms: 120,
        }
    }
}

impl TurnDelays {
    /// Zero everywhere: for API checks that do not measure time.
    pub fn none() -> Self {
        Self {
            stt_ms: 0,
            llm_first_token_ms: 0,
            llm_token_interval_ms: 0,
            tts_first_byte_ms: 0,
        }
    }
}

/// The three running fakes (stopped when dropped).
pub struct TurnFakes {
    pub stt: FakeOpenAiAudio,
    pub llm: FakeLlm,
    pub tts: FakeElevenLabsTts,
    pub delays: TurnDelays,
}

impl TurnFakes {
    pub async fn start(delays: TurnDelays) -> anyhow::Result<Self> {
        let stt = FakeOpenAiAudio::start(FakeOpenAiAudioConfig {
            transcripts: vec![HEARD.into()],
            transcribe_delay_ms: delays.stt_ms,
            ..FakeOpenAiAudioConfig::default()
        })
        .await
        .context("starting the fake OpenAI transcription")?;
        let llm = FakeLlm::start(FakeLlmConfig {
            reply_text: REPLY.into(),
            // Any model: the turn-api's configured one is not under test.
            models: Vec::new(),
            first_token_ms: delays.llm_first_token_ms,
            token_interval_ms: delays.llm_token_interval_ms,
            ..FakeLlmConfig::default()
        })
        .await
        .context("starting the fake chat model")?;
        let tts = FakeElevenLabsTts::start(FakeElevenLabsTtsConfig {
            // A cheap tone sent far faster than real time: the first byte is the delay.
            voice: Voice::Tone { ms_per_char: 20 },
            realtime_factor: 50.0,
            first_byte_ms: delays.tts_first_byte_ms,
            ..FakeElevenLabsTtsConfig::default()
        })
        .await
        .context("starting the fake ElevenLabs TTS")?;
        Ok(Self {
            stt,
            llm,
            tts,
            delays,
        })
    }

    /// A complete turn-api config: listening on `listen`, answers written under
    /// `dir/audio`, recordings allowed from `dir/rec`, one tenant ([`DOMAIN`], [`API_KEY`]),
    /// sessions in memory and no turn or age limit within a run.
    pub fn turn_api_config(&self, listen: &str, dir: &Path, log_level: &str) -> String {
        format!(
            r#"
[server]
listen = "{listen}"
public_url = "http://{listen}"

[log]
level = "{log_level}"

[audio]
dir = "{audio}"
recordings_dirs = ["{rec}"]
keep_secs = 0

[limits]
max_turns = 1000000
max_session_secs = 86400

[engine]
stt = ["openai_transcribe"]
llm = ["openai_chat"]
tts = ["elevenlabs_tts"]
stt_timeout_ms = 10000
llm_timeout_ms = 10000
tts_timeout_ms = 10000
greeting = "Olá."

[providers.openai_transcribe]
url = "{transcriptions}"
api_key = "{stt_key}"

[providers.openai_chat]
url = "{llm_url}"
api_key = "{llm_key}"

[providers.elevenlabs_tts]
url = "{tts_url}"
voice_id = "{voice}"
api_key = "{tts_key}"

[tenants."{DOMAIN}"]
api_keys = ["{API_KEY}"]
"#,
            audio = dir.join("audio").display(),
            rec = dir.join("rec").display(),
            transcriptions = self.stt.transcriptions_url(),
            stt_key = self.stt.api_key(),
            llm_url = self.llm.chat_completions_url(),
            llm_key = self.llm.api_key(),
            tts_url = self.tts.url(),
            voice = self.tts.voice_id(),
            tts_key = self.tts.api_key(),
        )
    }
}

/// Writes the caller's recording (espeak-ng pt-BR, half a second of silence around it,
/// 16 kHz WAV) as `dir/rec/caller.wav` and returns its path.
pub fn write_caller_wav(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let rate = 16_000;
    let speech = crate::speech::synthesize(HEARD, crate::speech::PT_BR, rate)?;
    let pad = vec![0i16; rate as usize / 2];
    let samples = [pad.as_slice(), speech.as_slice(), pad.as_slice()].concat();
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec).with_context(|| format!("creating {}", rec.display()))?;
    let path = rec.join("caller.wav");
    std::fs::write(&path, voice_core::audio::wav::encode(rate, 1, &samples))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
