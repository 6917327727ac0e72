//! Every provider by name: the `[providers.*]` settings of the realtime agents and of the
//! cascaded stages, and the stage instances built once per process (a Piper voice is
//! loaded once, HTTP clients keep their connection pools) and shared by every call.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use super::elevenlabs_agent::ElevenLabsAgentConfig;
use super::gemini_live::GeminiLiveConfig;
use super::llm::anthropic::{AnthropicChat, AnthropicConfig};
use super::llm::openai_chat::{OpenAiChat, OpenAiChatConfig};
use super::llm::ChatModel;
use super::openai_realtime::OpenAiRealtimeConfig;
use super::stt::deepgram::{DeepgramConfig, DeepgramStt, DeepgramTranscriber};
use super::stt::openai_transcribe::{OpenAiTranscribe, OpenAiTranscribeConfig};
use super::stt::{SpeechToText, Transcriber};
use super::tts::elevenlabs::{ElevenLabsTts, ElevenLabsTtsConfig};
use super::tts::openai_speech::{OpenAiSpeech, OpenAiSpeechConfig};
use super::tts::piper::{PiperConfig, PiperTts};
use super::tts::TextToSpeech;
use super::ProviderError;
use crate::agent::cascaded::{CascadedSettings, Stages};

/// A speech-to-text provider, as stage chains name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SttKind {
    Deepgram,
    OpenaiTranscribe,
}

/// A chat model provider, as stage chains name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmKind {
    OpenaiChat,
    Groq,
    Ollama,
    Anthropic,
}

/// A text-to-speech provider, as stage chains name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TtsKind {
    ElevenlabsTts,
    OpenaiSpeech,
    Piper,
}

/// `[providers.*]`: one table per provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    pub openai_realtime: OpenAiRealtimeConfig,
    pub gemini_live: GeminiLiveConfig,
    pub elevenlabs_agent: ElevenLabsAgentConfig,
    pub deepgram: DeepgramConfig,
    pub openai_transcribe: OpenAiTranscribeConfig,
    pub openai_chat: OpenAiChatConfig,
    /// Groq's defaults (URL, model, `GROQ_API_KEY`) under whatever the table sets.
    #[serde(deserialize_with = "groq")]
    pub groq: OpenAiChatConfig,
    /// Ollama's defaults (local URL, no key) under whatever the table sets.
    #[serde(deserialize_with = "ollama")]
    pub ollama: OpenAiChatConfig,
    pub anthropic: AnthropicConfig,
    pub elevenlabs_tts: ElevenLabsTtsConfig,
    pub openai_speech: OpenAiSpeechConfig,
    pub piper: PiperConfig,
    /// Accounts in reserve (a tenant's second OpenAI key, say), one layer per rank: a stage
    /// chain tries each of its kinds in every layer that has it before the next kind.
    /// Set by the tenancy code; a process's TOML has none.
    #[serde(skip)]
    pub standby: Vec<Standby>,
}

/// A layer of reserve accounts: full settings, and the kinds it has its own account for
/// (the other kinds are the layer before's, and are not tried twice).
#[derive(Debug, Clone)]
pub struct Standby {
    pub settings: ProviderSettings,
    pub stt: Vec<SttKind>,
    pub llm: Vec<LlmKind>,
    pub tts: Vec<TtsKind>,
    /// Realtime kinds by name (`openai_realtime`, `gemini_live`, `elevenlabs_agent`).
    pub realtime: Vec<String>,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            openai_realtime: OpenAiRealtimeConfig::default(),
            gemini_live: GeminiLiveConfig::default(),
            elevenlabs_agent: ElevenLabsAgentConfig::default(),
            deepgram: DeepgramConfig::default(),
            openai_transcribe: OpenAiTranscribeConfig::default(),
            openai_chat: OpenAiChatConfig::default(),
            groq: OpenAiChatConfig::groq(),
            ollama: OpenAiChatConfig::ollama(),
            anthropic: AnthropicConfig::default(),
            elevenlabs_tts: ElevenLabsTtsConfig::default(),
            openai_speech: OpenAiSpeechConfig::default(),
            piper: PiperConfig::default(),
            standby: Vec::new(),
        }
    }
}

fn groq<'de, D: Deserializer<'de>>(d: D) -> Result<OpenAiChatConfig, D::Error> {
    with_flavor_defaults(d, "groq", &OpenAiChatConfig::groq())
}

fn ollama<'de, D: Deserializer<'de>>(d: D) -> Result<OpenAiChatConfig, D::Error> {
    with_flavor_defaults(d, "ollama", &OpenAiChatConfig::ollama())
}

/// An OpenAI-compatible table whose missing keys take `defaults` (not OpenAI's).
fn with_flavor_defaults<'de, D: Deserializer<'de>>(
    d: D,
    flavor: &str,
    defaults: &OpenAiChatConfig,
) -> Result<OpenAiChatConfig, D::Error> {
    use serde::de::Error;
    let mut table = serde_json::Map::deserialize(d)?;
    table.entry("flavor").or_insert_with(|| flavor.into());
    table
        .entry("url")
        .or_insert_with(|| defaults.url.clone().into());
    table
        .entry("model")
        .or_insert_with(|| defaults.model.clone().into());
    table
        .entry("api_key_env")
        .or_insert_with(|| defaults.api_key_env.clone().into());
    table
        .entry("connect_timeout_ms")
        .or_insert_with(|| defaults.connect_timeout_ms.into());
    table
        .entry("first_token_timeout_ms")
        .or_insert_with(|| defaults.first_token_timeout_ms.into());
    serde_json::from_value(serde_json::Value::Object(table)).map_err(D::Error::custom)
}

/// Built providers, shared by every call.
#[derive(Default, Clone)]
pub struct StageInstances {
    stt: HashMap<SttKind, Arc<dyn SpeechToText>>,
    llm: HashMap<LlmKind, Arc<dyn ChatModel>>,
    tts: HashMap<TtsKind, Arc<dyn TextToSpeech>>,
    /// The standby layers' providers, in layer order.
    standby: Vec<StageInstances>,
}

impl ProviderSettings {
    /// Builds every provider the `chains` name (once each). A provider that cannot be
    /// built (a Piper voice file missing, a bad URL) is an error now, not mid-call.
    pub fn build<'a>(
        &self,
        chains: impl IntoIterator<Item = &'a CascadedSettings>,
    ) -> Result<StageInstances, ProviderError> {
        let chains: Vec<&CascadedSettings> = chains.into_iter().collect();
        let mut built = self.build_kinds(&chains, None)?;
        for layer in &self.standby {
            let own = layer.settings.build_kinds(&chains, Some(layer))?;
            built.standby.push(own);
        }
        Ok(built)
    }

    /// The providers of `chains`, once each; for a standby `layer`, only the kinds it has
    /// its own account for.
    fn build_kinds(
        &self,
        chains: &[&CascadedSettings],
        layer: Option<&Standby>,
    ) -> Result<StageInstances, ProviderError> {
        let mut built = StageInstances::default();
        for chain in chains {
            let stt = chain
                .stt
                .iter()
                .filter(|k| layer.is_none_or(|l| l.stt.contains(k)));
            for &kind in stt {
                built.stt.entry(kind).or_insert_with(|| self.stt(kind));
            }
            let llm = chain
                .llm
                .iter()
                .filter(|k| layer.is_none_or(|l| l.llm.contains(k)));
            for &kind in llm {
                built.llm.entry(kind).or_insert_with(|| self.llm(kind));
            }
            let tts = chain
                .tts
                .iter()
                .filter(|k| layer.is_none_or(|l| l.tts.contains(k)));
            for &kind in tts {
                if let std::collections::hash_map::Entry::Vacant(slot) = built.tts.entry(kind) {
                    slot.insert(self.tts(kind)?);
                }
            }
        }
        Ok(built)
    }

    fn stt(&self, kind: SttKind) -> Arc<dyn SpeechToText> {
        match kind {
            SttKind::Deepgram => Arc::new(DeepgramStt::new(self.deepgram.clone())),
            SttKind::OpenaiTranscribe => {
                Arc::new(OpenAiTranscribe::new(self.openai_transcribe.clone()))
            }
        }
    }

    fn llm(&self, kind: LlmKind) -> Arc<dyn ChatModel> {
        match kind {
            LlmKind::OpenaiChat => Arc::new(OpenAiChat::new(self.openai_chat.clone())),
            LlmKind::Groq => Arc::new(OpenAiChat::new(self.groq.clone())),
            LlmKind::Ollama => Arc::new(OpenAiChat::new(self.ollama.clone())),
            LlmKind::Anthropic => Arc::new(AnthropicChat::new(self.anthropic.clone())),
        }
    }

    fn tts(&self, kind: TtsKind) -> Result<Arc<dyn TextToSpeech>, ProviderError> {
        Ok(match kind {
            TtsKind::ElevenlabsTts => Arc::new(ElevenLabsTts::new(self.elevenlabs_tts.clone())?),
            TtsKind::OpenaiSpeech => Arc::new(OpenAiSpeech::new(self.openai_speech.clone())?),
            TtsKind::Piper => Arc::new(PiperTts::new(&self.piper)?),
        })
    }

    /// The whole-recording transcribers of `kind`: this account's, then the standby
    /// layers' that have their own.
    pub fn transcribers(&self, kind: SttKind) -> Vec<Arc<dyn Transcriber>> {
        let standby = self.standby.iter().filter(|l| l.stt.contains(&kind));
        std::iter::once(self.transcriber(kind))
            .chain(standby.map(|l| l.settings.transcriber(kind)))
            .collect()
    }

    /// A whole-recording transcriber (turn-api, call insights).
    pub fn transcriber(&self, kind: SttKind) -> Arc<dyn Transcriber> {
        match kind {
            SttKind::Deepgram => Arc::new(DeepgramTranscriber::new(self.deepgram.clone())),
            SttKind::OpenaiTranscribe => {
                Arc::new(OpenAiTranscribe::new(self.openai_transcribe.clone()))
            }
        }
    }
}

impl StageInstances {
    /// The stages of one agent, in its chains' order. Kinds not built are left out
    /// (`build` was given every chain, so this only happens on a programming error).
    /// Each kind is followed by its standby accounts.
    pub fn stages(&self, chains: &CascadedSettings) -> Stages {
        let layers = || std::iter::once(self).chain(&self.standby);
        Stages {
            stt: chains
                .stt
                .iter()
                .flat_map(|k| layers().filter_map(|l| l.stt.get(k).cloned()))
                .collect(),
            llm: chains
                .llm
                .iter()
                .flat_map(|k| layers().filter_map(|l| l.llm.get(k).cloned()))
                .collect(),
            tts: chains
                .tts
                .iter()
                .flat_map(|k| layers().filter_map(|l| l.tts.get(k).cloned()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groq_and_ollama_tables_keep_their_own_defaults() {
        let p: ProviderSettings = toml::from_str(
            r#"
[groq]
model = "openai/gpt-oss-120b"
[ollama]
url = "http://10.0.0.5:11434/v1/chat/completions"
"#,
        )
        .unwrap();
        assert_eq!(p.groq.url, OpenAiChatConfig::groq().url);
        assert_eq!(p.groq.model, "openai/gpt-oss-120b");
        assert_eq!(p.groq.api_key_env, "GROQ_API_KEY");
        assert_eq!(p.ollama.url, "http://10.0.0.5:11434/v1/chat/completions");
        assert_eq!(p.ollama.api_key_env, "");
        let none: ProviderSettings = toml::from_str("").unwrap();
        assert_eq!(none.groq.url, OpenAiChatConfig::groq().url);
        assert!(toml::from_str::<ProviderSettings>("[groq]\nmodle = \"x\"").is_err());
    }

    #[test]
    fn chains_build_each_provider_once_and_keep_their_order() {
        let mut p = ProviderSettings::default();
        p.openai_speech.api_key = crate::config::Secret::new("sk-test");
        p.elevenlabs_tts.api_key = crate::config::Secret::new("xi-test");
        p.elevenlabs_tts.voice_id = "voice-1".into();
        let a = CascadedSettings {
            stt: vec![SttKind::OpenaiTranscribe, SttKind::Deepgram],
            llm: vec![LlmKind::Anthropic, LlmKind::Groq],
            tts: vec![TtsKind::OpenaiSpeech],
            ..Default::default()
        };
        let b = CascadedSettings::default();
        let built = p.build([&a, &b]).unwrap();
        assert_eq!(built.stt.len(), 2);
        assert_eq!(built.llm.len(), 3);
        let stages = built.stages(&a);
        let names: Vec<&str> = stages.llm.iter().map(|m| m.name()).collect();
        assert_eq!(names, vec!["anthropic", "groq"]);
        assert_eq!(stages.stt[0].name(), "openai_transcribe");
    }

    #[test]
    fn a_standby_account_follows_its_kind_in_every_chain() {
        let mut p = ProviderSettings::default();
        p.openai_speech.api_key = crate::config::Secret::new("sk-test");
        p.standby.push(Standby {
            settings: p.clone(),
            stt: vec![SttKind::Deepgram],
            llm: vec![LlmKind::Groq],
            tts: vec![TtsKind::OpenaiSpeech],
            realtime: Vec::new(),
        });
        let chains = CascadedSettings {
            stt: vec![SttKind::Deepgram, SttKind::OpenaiTranscribe],
            llm: vec![LlmKind::Groq, LlmKind::Anthropic],
            // A kind the chains do not use is not built, in reserve either.
            tts: vec![TtsKind::OpenaiSpeech],
            ..Default::default()
        };
        let stages = p.build([&chains]).unwrap().stages(&chains);
        let llm: Vec<&str> = stages.llm.iter().map(|m| m.name()).collect();
        assert_eq!(llm, ["groq", "groq", "anthropic"]);
        let stt: Vec<&str> = stages.stt.iter().map(|m| m.name()).collect();
        assert_eq!(stt, ["deepgram", "deepgram", "openai_transcribe"]);
        assert_eq!(stages.tts.len(), 2);
        assert_eq!(p.transcribers(SttKind::Deepgram).len(), 2);
        assert_eq!(p.transcribers(SttKind::OpenaiTranscribe).len(), 1);
    }

    #[test]
    fn a_missing_piper_voice_fails_at_build_not_mid_call() {
        let mut p = ProviderSettings::default();
        p.piper.model = "/nonexistent/voice.onnx".into();
        let chains = CascadedSettings {
            tts: vec![TtsKind::Piper],
            ..Default::default()
        };
        match p.build([&chains]) {
            Err(ProviderError::Config(m)) => assert!(m.contains("/nonexistent/voice.onnx"), "{m}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("built a Piper voice from nothing"),
        }
    }
}
