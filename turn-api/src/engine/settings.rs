//! `[engine]` settings: the stage chains and their timeouts, the audio the IVR plays, the
//! silence trim, who the agent is, and the fixed lines it says without asking the LLM.

use serde::Deserialize;
use voice_core::agent::cascaded::GuardSettings;
use voice_core::providers::catalog::{LlmKind, SttKind, TtsKind};

/// The tools an engine may offer the model. `lookup_knowledge` is offered only when the
/// engine was given a knowledge lookup ([`super::TurnEngine::with_knowledge`]),
/// `transfer_to_human` only with a `handoff_target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineTool {
    TransferToHuman,
    EndCall,
    TakeMessage,
    LookupKnowledge,
}

/// How a turn's recording is trimmed before STT.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrimSettings {
    /// WebRTC VAD aggressiveness, 0 (keeps most) … 3 (cuts most).
    pub vad_mode: u8,
    /// Silence kept before the first voiced frame.
    pub leading_ms: u32,
    /// Silence kept after the last voiced frame.
    pub trailing_ms: u32,
    /// Less voice than this in the whole recording counts as silence (a click, a breath).
    /// The VAD's hangover adds ~80 ms to any sound, so a 40 ms click counts as 120.
    pub min_speech_ms: u32,
}

impl Default for TrimSettings {
    /// Mode 2, 200 ms either side, 200 ms of voice at least (a short "sim" has more).
    fn default() -> Self {
        Self {
            vad_mode: 2,
            leading_ms: 200,
            trailing_ms: 200,
            min_speech_ms: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Transcribers, tried in order (`[providers.<name>]` configures each).
    pub stt: Vec<SttKind>,
    /// Chat models, tried in order.
    pub llm: Vec<LlmKind>,
    /// Speech providers, tried in order.
    pub tts: Vec<TtsKind>,
    /// Budget of one transcriber for the whole recording.
    pub stt_timeout_ms: u64,
    /// Budget of one chat model for one whole answer round (request to its end).
    pub llm_timeout_ms: u64,
    /// Budget of one speech provider for the whole reply.
    pub tts_timeout_ms: u64,
    /// Rate of the reply audio: 8000 (what FreeSWITCH plays on a narrowband call without
    /// resampling) or 16000.
    pub audio_rate: u32,
    /// Longest caller recording accepted.
    pub max_turn_audio_ms: u64,
    pub trim: TrimSettings,
    /// Lines of history sent to the LLM and kept with the conversation (oldest dropped).
    pub max_history_messages: usize,
    /// Tool rounds in one turn before the model must answer in words.
    pub max_tool_rounds: u32,
    pub guard: GuardSettings,
    /// Tools offered to the model.
    pub tools: Vec<EngineTool>,
    /// Extension or queue a `transfer_to_human` (or a guard hand-over) goes to. Empty:
    /// `transfer_to_human` is not offered and the guard never hands over.
    pub handoff_target: String,
    /// Said on a transfer when the model said nothing itself.
    pub handoff_text: String,
    /// Said when the model ends the call.
    pub goodbye: String,
    /// Said first by [`super::TurnEngine::greeting`] (empty: the greeting is silent).
    pub greeting: String,
    /// Said when the recording held no speech (or STT heard no words).
    pub no_speech_reply: String,
    /// Said when the model answered nothing at all.
    pub empty_reply: String,
    /// The agent's instructions (system prompt).
    pub instructions: String,
    /// Caller language, BCP-47 (`pt-BR`): given to STT and to the prompt.
    pub language: String,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            stt: vec![SttKind::Deepgram, SttKind::OpenaiTranscribe],
            llm: vec![LlmKind::Groq, LlmKind::OpenaiChat],
            tts: vec![TtsKind::ElevenlabsTts, TtsKind::OpenaiSpeech],
            stt_timeout_ms: 8000,
            llm_timeout_ms: 15_000,
            tts_timeout_ms: 15_000,
            audio_rate: 8000,
            max_turn_audio_ms: 60_000,
            trim: TrimSettings::default(),
            max_history_messages: 40,
            max_tool_rounds: 3,
            guard: GuardSettings::default(),
            tools: vec![
                EngineTool::TransferToHuman,
                EngineTool::EndCall,
                EngineTool::TakeMessage,
                EngineTool::LookupKnowledge,
            ],
            handoff_target: String::new(),
            handoff_text: "Vou transferir você para um atendente. Um momento, por favor.".into(),
            goodbye: "Obrigado pela ligação. Até logo!".into(),
            greeting: "Olá! Como posso ajudar?".into(),
            no_speech_reply: "Desculpe, não ouvi. Pode repetir, por favor?".into(),
            empty_reply: "Desculpe, não entendi. Pode repetir, por favor?".into(),
            instructions: "Você é um atendente telefônico cordial. Responda em poucas frases."
                .into(),
            language: "pt-BR".into(),
        }
    }
}

impl EngineSettings {
    /// Everything that can be wrong before a call.
    pub fn validate(&self) -> Result<(), String> {
        if self.stt.is_empty() || self.llm.is_empty() || self.tts.is_empty() {
            return Err("stt, llm and tts each need at least one provider".into());
        }
        if !matches!(self.audio_rate, 8000 | 16000) {
            return Err(format!(
                "audio_rate {} is not 8000 or 16000",
                self.audio_rate
            ));
        }
        for (name, v) in [
            ("stt_timeout_ms", self.stt_timeout_ms),
            ("llm_timeout_ms", self.llm_timeout_ms),
            ("tts_timeout_ms", self.tts_timeout_ms),
        ] {
            if !(50..=120_000).contains(&v) {
                return Err(format!("{name} {v} is not 50–120000"));
            }
        }
        if !(1000..=600_000).contains(&self.max_turn_audio_ms) {
            return Err("max_turn_audio_ms must be 1000–600000".into());
        }
        if self.trim.vad_mode > 3 {
            return Err("trim.vad_mode must be 0–3".into());
        }
        if self.trim.leading_ms > 5000 || self.trim.trailing_ms > 5000 {
            return Err("trim.leading_ms and trim.trailing_ms must be at most 5000".into());
        }
        if self.max_history_messages < 2 {
            return Err("max_history_messages must be at least 2".into());
        }
        if !(1..=10).contains(&self.max_tool_rounds) {
            return Err("max_tool_rounds must be 1–10".into());
        }
        for (name, text) in [
            ("no_speech_reply", &self.no_speech_reply),
            ("empty_reply", &self.empty_reply),
            ("goodbye", &self.goodbye),
            ("handoff_text", &self.handoff_text),
        ] {
            if text.trim().is_empty() {
                return Err(format!("{name} must not be empty"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        let mut s = EngineSettings::default();
        assert!(s.validate().is_ok());
        s.audio_rate = 44_100;
        assert!(s.validate().unwrap_err().contains("audio_rate"));
        let parsed: EngineSettings = toml::from_str(
            "handoff_target = \"fila\"\nllm = [\"anthropic\"]\n[trim]\nleading_ms = 100",
        )
        .unwrap();
        assert_eq!(parsed.llm, vec![LlmKind::Anthropic]);
        assert_eq!(
            (parsed.trim.leading_ms, parsed.trim.trailing_ms),
            (100, 200)
        );
        assert!(parsed.validate().is_ok());
        assert!(toml::from_str::<EngineSettings>("audio = 8000").is_err());
        assert!(toml::from_str::<EngineSettings>("[trim]\nlead = 1").is_err());
    }
}
