//! Audio the bridge plays itself, without any provider: the greeting (so the caller hears
//! something while the provider connects), the hold line (while a failed provider is
//! replaced), the hand-over line and the apology (when no provider is left).
//!
//! Prompts are WAV files (16-bit PCM, mono, any rate), read once at start: a missing file
//! is an error at start, not silence in a call. prompts/render makes the pt-BR defaults.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use voice_core::audio::wav;

use crate::config::AgentSettings;

/// One prompt: the file to play and what it says (for the transcript and the agent's
/// memory of the conversation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prompt {
    /// File name in `dir`, or an absolute path. Empty: this prompt is off.
    pub file: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptSettings {
    /// Where relative prompt files are. Empty: the shipped pt-BR prompts
    /// (`$VOICE_PROMPTS_DIR`, else `prompts/pt-BR` here or beside the workspace).
    pub dir: String,
    /// Played as soon as the call starts.
    pub greeting: Prompt,
    /// Played while a failed provider is replaced.
    pub hold: Prompt,
    /// Played before the call is transferred to a human.
    pub handoff: Prompt,
    /// Played before hanging up when no provider is left.
    pub apology: Prompt,
    /// Played before hanging up when the tenant has as many calls as it may.
    pub busy: Prompt,
}

impl Default for PromptSettings {
    fn default() -> Self {
        let prompt = |file: &str, text: &str| Prompt {
            file: file.into(),
            text: text.into(),
        };
        Self {
            dir: String::new(),
            greeting: Prompt::default(),
            hold: prompt("hold.wav", "Só um momento, por favor."),
            handoff: prompt(
                "handoff.wav",
                "Vou transferir você para um atendente. Aguarde um instante.",
            ),
            apology: prompt(
                "apology.wav",
                "Desculpe, estamos com uma instabilidade no momento. Por favor, ligue novamente em alguns minutos.",
            ),
            busy: prompt(
                "busy.wav",
                "Todos os nossos atendentes estão ocupados no momento. Por favor, ligue novamente em alguns minutos.",
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Greeting,
    Hold,
    Handoff,
    Apology,
    Busy,
}

impl PromptKind {
    pub fn name(self) -> &'static str {
        match self {
            PromptKind::Greeting => "greeting",
            PromptKind::Hold => "hold",
            PromptKind::Handoff => "handoff",
            PromptKind::Apology => "apology",
            PromptKind::Busy => "busy",
        }
    }
}

impl PromptSettings {
    pub fn get(&self, kind: PromptKind) -> &Prompt {
        match kind {
            PromptKind::Greeting => &self.greeting,
            PromptKind::Hold => &self.hold,
            PromptKind::Handoff => &self.handoff,
            PromptKind::Apology => &self.apology,
            PromptKind::Busy => &self.busy,
        }
    }

    /// Where `kind`'s file is, or `None` when that prompt is off.
    pub fn path(&self, kind: PromptKind) -> Option<PathBuf> {
        let file = &self.get(kind).file;
        (!file.is_empty()).then(|| self.dir().join(file))
    }

    fn dir(&self) -> PathBuf {
        if !self.dir.is_empty() {
            return PathBuf::from(&self.dir);
        }
        if let Some(dir) = std::env::var_os("VOICE_PROMPTS_DIR") {
            return PathBuf::from(dir);
        }
        let local = PathBuf::from("prompts/pt-BR");
        if local.is_dir() {
            return local;
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts/pt-BR")
    }
}

/// Mono PCM16 audio of a prompt.
#[derive(Debug)]
pub struct PromptAudio {
    pub rate: u32,
    pub samples: Vec<i16>,
}

/// Every prompt of every agent, read at start. Keyed by the settings' own words
/// (`dir`, `file`): where an empty `dir` points is worked out once, at load, not at every
/// play.
#[derive(Debug, Default)]
pub struct Prompts {
    audio: HashMap<(String, String), Arc<PromptAudio>>,
}

fn key(settings: &PromptSettings, kind: PromptKind) -> (String, String) {
    (settings.dir.clone(), settings.get(kind).file.clone())
}

const ALL: [PromptKind; 5] = [
    PromptKind::Greeting,
    PromptKind::Hold,
    PromptKind::Handoff,
    PromptKind::Apology,
    PromptKind::Busy,
];

impl Prompts {
    pub fn load<'a>(agents: impl Iterator<Item = &'a AgentSettings>) -> Result<Self, String> {
        let mut audio = HashMap::new();
        for agent in agents {
            for kind in ALL {
                let Some(path) = agent.prompts.path(kind) else {
                    continue;
                };
                let key = key(&agent.prompts, kind);
                if audio.contains_key(&key) {
                    continue;
                }
                let prompt = read(&path).map_err(|e| {
                    format!(
                        "{} prompt {}: {e} (prompts/render makes the defaults)",
                        kind.name(),
                        path.display()
                    )
                })?;
                audio.insert(key, Arc::new(prompt));
            }
        }
        Ok(Self { audio })
    }

    pub fn get(&self, settings: &PromptSettings, kind: PromptKind) -> Option<Arc<PromptAudio>> {
        self.audio.get(&key(settings, kind)).cloned()
    }
}

fn read(path: &Path) -> Result<PromptAudio, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let wav = wav::parse(&bytes).map_err(|e| e.to_string())?;
    if wav.channels != 1 {
        return Err(format!("{} channels; prompts must be mono", wav.channels));
    }
    if !(8000..=48_000).contains(&wav.rate) {
        return Err(format!(
            "sample rate {} is not between 8000 and 48000",
            wav.rate
        ));
    }
    if wav.samples.is_empty() {
        return Err("no audio".into());
    }
    Ok(PromptAudio {
        rate: wav.rate,
        samples: wav.samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> PromptSettings {
        PromptSettings {
            dir: dir.display().to_string(),
            greeting: Prompt {
                file: "greeting.wav".into(),
                text: "Olá!".into(),
            },
            ..PromptSettings::default()
        }
    }

    fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
        let mut bytes = wav::header(rate, channels, (samples.len() * 2) as u32).to_vec();
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn the_shipped_defaults_load() {
        let agent = crate::config::BridgeConfig::from_env(&[]).unwrap().agent;
        let prompts = Prompts::load(std::iter::once(&agent)).unwrap();
        for kind in [
            PromptKind::Hold,
            PromptKind::Handoff,
            PromptKind::Apology,
            PromptKind::Busy,
        ] {
            let audio = prompts.get(&agent.prompts, kind).unwrap();
            let seconds = audio.samples.len() as f64 / audio.rate as f64;
            assert!(
                (0.5..10.0).contains(&seconds),
                "{}: {seconds} s",
                kind.name()
            );
        }
        assert!(prompts.get(&agent.prompts, PromptKind::Greeting).is_none());
    }

    #[test]
    fn a_missing_or_bad_file_is_an_error_at_start() {
        let dir = std::env::temp_dir().join(format!("prompts-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut agent = crate::config::BridgeConfig::from_env(&[]).unwrap().agent;
        agent.prompts = settings(&dir);
        let err = Prompts::load(std::iter::once(&agent)).unwrap_err();
        assert!(
            err.contains("greeting prompt") && err.contains("prompts/render"),
            "{err}"
        );

        for (file, rate, channels) in [("hold.wav", 16000, 2u16), ("handoff.wav", 4000, 1)] {
            write_wav(&dir.join(file), rate, channels, &[0; 100]);
        }
        write_wav(&dir.join("greeting.wav"), 8000, 1, &[1; 800]);
        std::fs::write(dir.join("apology.wav"), b"not a wav").unwrap();
        let err = Prompts::load(std::iter::once(&agent)).unwrap_err();
        assert!(err.contains("hold") && err.contains("mono"), "{err}");
        write_wav(&dir.join("hold.wav"), 16000, 1, &[0; 100]);
        let err = Prompts::load(std::iter::once(&agent)).unwrap_err();
        assert!(err.contains("handoff") && err.contains("4000"), "{err}");
        write_wav(&dir.join("handoff.wav"), 16000, 1, &[0; 100]);
        let err = Prompts::load(std::iter::once(&agent)).unwrap_err();
        assert!(err.contains("apology"), "{err}");
        write_wav(&dir.join("apology.wav"), 24000, 1, &[0; 100]);
        let err = Prompts::load(std::iter::once(&agent)).unwrap_err();
        assert!(err.contains("busy"), "{err}");
        write_wav(&dir.join("busy.wav"), 16000, 1, &[0; 100]);
        let prompts = Prompts::load(std::iter::once(&agent)).unwrap();
        let greeting = prompts.get(&agent.prompts, PromptKind::Greeting).unwrap();
        assert_eq!((greeting.rate, greeting.samples.len()), (8000, 800));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
