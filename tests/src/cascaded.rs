//! The fakes a cascaded agent talks to: Deepgram (STT), the OpenAI audio API (backup STT
//! and backup TTS), two chat models (primary as OpenAI, backup as Groq) and ElevenLabs
//! TTS, with the bridge config that points a cascaded agent with local turns at them.

use voice_sim::fake_deepgram::{FakeDeepgram, FakeDeepgramConfig};
use voice_sim::fake_elevenlabs_tts::{FakeElevenLabsTts, FakeElevenLabsTtsConfig};
use voice_sim::fake_llm::{FakeLlm, FakeLlmConfig};
use voice_sim::fake_openai_audio::{FakeOpenAiAudio, FakeOpenAiAudioConfig};

pub struct CascadedFakes {
    pub deepgram: FakeDeepgram,
    pub openai_audio: FakeOpenAiAudio,
    pub llm: FakeLlm,
    pub llm_backup: FakeLlm,
    pub tts: FakeElevenLabsTts,
}

/// What each fake is started with.
pub struct CascadedScript {
    pub deepgram: FakeDeepgramConfig,
    pub openai_audio: FakeOpenAiAudioConfig,
    pub llm: FakeLlmConfig,
    pub llm_backup: FakeLlmConfig,
    pub tts: FakeElevenLabsTtsConfig,
}

impl CascadedScript {
    /// Every fake says `transcript` for the caller and `reply` for the agent, at once.
    pub fn new(transcript: &str, reply: &str) -> Self {
        let llm = FakeLlmConfig {
            reply_text: reply.into(),
            models: Vec::new(),
            first_token_ms: 0,
            ..FakeLlmConfig::default()
        };
        Self {
            deepgram: FakeDeepgramConfig {
                utterances: vec![transcript.into()],
                final_delay_ms: 0,
                ..FakeDeepgramConfig::default()
            },
            openai_audio: FakeOpenAiAudioConfig {
                transcripts: vec![transcript.into()],
                transcribe_delay_ms: 0,
                speech_first_byte_ms: 0,
                ..FakeOpenAiAudioConfig::default()
            },
            llm_backup: llm.clone(),
            llm,
            tts: FakeElevenLabsTtsConfig {
                first_byte_ms: 0,
                ..FakeElevenLabsTtsConfig::default()
            },
        }
    }
}

impl CascadedFakes {
    pub async fn start(script: CascadedScript) -> anyhow::Result<Self> {
        Ok(Self {
            deepgram: FakeDeepgram::start(script.deepgram).await?,
            openai_audio: FakeOpenAiAudio::start(script.openai_audio).await?,
            llm: FakeLlm::start(script.llm).await?,
            llm_backup: FakeLlm::start(script.llm_backup).await?,
            tts: FakeElevenLabsTts::start(script.tts).await?,
        })
    }

    /// A bridge config: 16 kHz calls, local turns, a cascaded agent whose stages try the
    /// primary fake, then the backup. `cascaded` goes into `[agent.cascaded]`; `extra` is
    /// appended (other sections).
    pub fn bridge_toml(&self, cascaded: &str, extra: &str) -> String {
        format!(
            r#"
[call]
sample_rate = 16000

[agent]
provider = "cascaded"

[agent.turn]
detection = "local"

[agent.cascaded]
stt = ["deepgram", "openai_transcribe"]
llm = ["openai_chat", "groq"]
tts = ["elevenlabs_tts", "openai_speech"]
{cascaded}

[providers.deepgram]
url = "{deepgram}"
api_key = "{deepgram_key}"

[providers.openai_transcribe]
url = "{transcriptions}"
api_key = "{audio_key}"

[providers.openai_speech]
url = "{speech}"
api_key = "{audio_key}"

[providers.openai_chat]
url = "{llm}"
api_key = "{llm_key}"

[providers.groq]
url = "{llm_backup}"
api_key = "{llm_backup_key}"

[providers.elevenlabs_tts]
url = "{tts}"
voice_id = "{voice}"
api_key = "{tts_key}"

{extra}
"#,
            deepgram = self.deepgram.url(),
            deepgram_key = self.deepgram.api_key(),
            transcriptions = self.openai_audio.transcriptions_url(),
            speech = self.openai_audio.speech_url(),
            audio_key = self.openai_audio.api_key(),
            llm = self.llm.chat_completions_url(),
            llm_key = self.llm.api_key(),
            llm_backup = self.llm_backup.chat_completions_url(),
            llm_backup_key = self.llm_backup.api_key(),
            tts = self.tts.url(),
            voice = self.tts.voice_id(),
            tts_key = self.tts.api_key(),
        )
    }
}
