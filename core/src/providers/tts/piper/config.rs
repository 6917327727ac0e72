//! `[providers.piper]` settings.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A local Piper voice. Only `model` is required; the rest default to the voice file's
/// own values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiperConfig {
    /// The voice's `.onnx` (e.g. `piper/pt_BR-faber-medium.onnx`). A relative path is
    /// under the models directory (`$VOICE_MODELS_DIR`, else `models/`). No default: a
    /// voice speaks one language, so it is always chosen.
    pub model: PathBuf,
    /// The voice's `.onnx.json`; none: `model` + `.json` (Piper's own lookup).
    pub config: Option<PathBuf>,
    /// A name from the voice's `speaker_id_map` or a speaker number; none: speaker 0.
    /// Only multi-speaker voices use it.
    pub speaker: Option<String>,
    /// Override the voice's `inference.length_scale` (> 1 speaks slower).
    pub length_scale: Option<f32>,
    /// Override `inference.noise_scale` (voice variation).
    pub noise_scale: Option<f32>,
    /// Override `inference.noise_w` (phoneme duration variation).
    pub noise_w: Option<f32>,
    /// Silence after each sentence (Piper's C++ CLI also uses 200 ms).
    pub sentence_silence_ms: u32,
    /// espeak-ng data (`phontab`, the voices); none: the library's built-in path
    /// (`/usr/lib/x86_64-linux-gnu/espeak-ng-data` on Debian). One per process.
    pub espeak_data_dir: Option<PathBuf>,
    /// ONNX Runtime intra-op threads for the voice's one shared session.
    pub threads: usize,
}

impl Default for PiperConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::new(),
            config: None,
            speaker: None,
            length_scale: None,
            noise_scale: None,
            noise_w: None,
            sentence_silence_ms: 200,
            espeak_data_dir: None,
            threads: 2,
        }
    }
}

impl PiperConfig {
    /// The model and its JSON, relative paths resolved under `models_dir`.
    pub fn paths(&self, models_dir: &Path) -> (PathBuf, PathBuf) {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                models_dir.join(p)
            }
        };
        let model = resolve(&self.model);
        let config = match &self.config {
            Some(config) => resolve(config),
            None => {
                let mut name = model.clone().into_os_string();
                name.push(".json");
                PathBuf::from(name)
            }
        };
        (model, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let cfg: PiperConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, PiperConfig::default());
        assert_eq!(cfg.model, PathBuf::new());
        assert_eq!(cfg.sentence_silence_ms, 200);
        assert_eq!(cfg.threads, 2);
        assert!(cfg.config.is_none() && cfg.speaker.is_none());
        assert!(cfg.length_scale.is_none() && cfg.noise_scale.is_none() && cfg.noise_w.is_none());
        assert!(toml::from_str::<PiperConfig>("modle = 'x'").is_err());
    }

    #[test]
    fn the_json_defaults_to_the_model_path_plus_json() {
        let cfg: PiperConfig = toml::from_str("model = 'piper/pt_BR-faber-medium.onnx'").unwrap();
        let (model, json) = cfg.paths(Path::new("/m"));
        assert_eq!(model, Path::new("/m/piper/pt_BR-faber-medium.onnx"));
        assert_eq!(json, Path::new("/m/piper/pt_BR-faber-medium.onnx.json"));
        let cfg: PiperConfig = toml::from_str("model = '/v/a.onnx'\nconfig = 'b.json'").unwrap();
        let (model, json) = cfg.paths(Path::new("/m"));
        assert_eq!(
            (model.as_path(), json.as_path()),
            (Path::new("/v/a.onnx"), Path::new("/m/b.json"))
        );
    }
}
