//! A Piper voice's `.onnx.json`: the keys the runtime reads (providers.md §7.1), checked
//! once at load so a bad file is one clear error at start.
//!
//! Unknown keys are ignored (voice files carry `language`, `dataset`, `piper_version`, …).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::ids::IdMap;

/// How text becomes phonemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhonemeType {
    /// espeak-ng IPA (almost every voice).
    Espeak,
    /// The text's own codepoints.
    Text,
}

/// What synthesis needs from a voice file.
#[derive(Debug, Clone)]
pub struct Voice {
    pub sample_rate: u32,
    /// espeak-ng voice name (`en-us`, `pt-br`).
    pub espeak_voice: String,
    pub phoneme_type: PhonemeType,
    pub ids: IdMap,
    pub num_speakers: u32,
    pub speaker_id_map: HashMap<String, i64>,
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
}

#[derive(Deserialize)]
struct Raw {
    audio: Option<RawAudio>,
    espeak: Option<RawEspeak>,
    phoneme_type: Option<String>,
    phoneme_id_map: Option<HashMap<String, Vec<i64>>>,
    phoneme_map: Option<HashMap<String, Vec<String>>>,
    num_symbols: Option<u32>,
    num_speakers: Option<u32>,
    speaker_id_map: Option<HashMap<String, i64>>,
    inference: Option<RawInference>,
}

#[derive(Deserialize)]
struct RawAudio {
    sample_rate: Option<u32>,
}

#[derive(Deserialize)]
struct RawEspeak {
    voice: Option<String>,
}

#[derive(Deserialize)]
struct RawInference {
    noise_scale: Option<f32>,
    length_scale: Option<f32>,
    noise_w: Option<f32>,
}

/// piper-phonemize's built-in substitution for `pt-br` voices whose file has no
/// `phoneme_map` (pt_BR-faber-medium ships the same map).
const PT_BR_DEFAULT_MAP: (char, char) = ('c', 'k');

impl Voice {
    /// Reads and checks `path`. Errors name the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read Piper voice config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("Piper voice config {}: {e}", path.display()))
    }

    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: Raw = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
        let sample_rate = raw
            .audio
            .and_then(|a| a.sample_rate)
            .ok_or("audio.sample_rate is missing")?;
        if !(4000..=96000).contains(&sample_rate) {
            return Err(format!("audio.sample_rate {sample_rate} is out of range"));
        }
        let phoneme_type = match raw.phoneme_type.as_deref().unwrap_or("espeak") {
            "espeak" => PhonemeType::Espeak,
            "text" => PhonemeType::Text,
            other => {
                return Err(format!(
                    "phoneme_type {other:?} is not supported (espeak or text)"
                ))
            }
        };
        let espeak_voice = raw.espeak.and_then(|e| e.voice).unwrap_or_default();
        if phoneme_type == PhonemeType::Espeak && espeak_voice.trim().is_empty() {
            return Err("espeak.voice is missing".into());
        }
        let id_map = raw.phoneme_id_map.ok_or("phoneme_id_map is missing")?;
        let phoneme_map = match raw.phoneme_map {
            Some(map) => single_codepoint_map(map)?,
            None if espeak_voice == "pt-br" => {
                HashMap::from([(PT_BR_DEFAULT_MAP.0, vec![PT_BR_DEFAULT_MAP.1])])
            }
            None => HashMap::new(),
        };
        let ids = IdMap::new(id_map, phoneme_map, raw.num_symbols)?;
        let num_speakers = raw.num_speakers.unwrap_or(1).max(1);
        let speaker_id_map = raw.speaker_id_map.unwrap_or_default();
        if let Some((name, id)) = speaker_id_map
            .iter()
            .find(|(_, &id)| id < 0 || id >= i64::from(num_speakers))
        {
            return Err(format!(
                "speaker_id_map: {name:?} = {id} is outside 0..{num_speakers}"
            ));
        }
        let inference = raw.inference.unwrap_or(RawInference {
            noise_scale: None,
            length_scale: None,
            noise_w: None,
        });
        let voice = Self {
            sample_rate,
            espeak_voice,
            phoneme_type,
            ids,
            num_speakers,
            speaker_id_map,
            noise_scale: inference.noise_scale.unwrap_or(0.667),
            length_scale: inference.length_scale.unwrap_or(1.0),
            noise_w: inference.noise_w.unwrap_or(0.8),
        };
        check_scales(voice.noise_scale, voice.length_scale, voice.noise_w)
            .map_err(|e| format!("inference: {e}"))?;
        Ok(voice)
    }

    /// The `sid` for `speaker`: a name from `speaker_id_map` or a number below
    /// `num_speakers`; none means speaker 0.
    pub fn speaker_id(&self, speaker: Option<&str>) -> Result<i64, String> {
        let Some(speaker) = speaker.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(0);
        };
        if let Some(&id) = self.speaker_id_map.get(speaker) {
            return Ok(id);
        }
        match speaker.parse::<i64>() {
            Ok(id) if (0..i64::from(self.num_speakers)).contains(&id) => Ok(id),
            _ => Err(format!(
                "speaker {speaker:?} is neither in speaker_id_map nor a number below {}",
                self.num_speakers
            )),
        }
    }
}

/// Scales the model accepts: positive and finite (`noise_*` may be 0 for a flat voice).
pub fn check_scales(noise_scale: f32, length_scale: f32, noise_w: f32) -> Result<(), String> {
    let ok = |v: f32, min_exclusive: bool| {
        v.is_finite() && if min_exclusive { v > 0.0 } else { v >= 0.0 }
    };
    if !ok(length_scale, true) || length_scale > 10.0 {
        return Err(format!("length_scale {length_scale} must be in (0, 10]"));
    }
    if !ok(noise_scale, false) || !ok(noise_w, false) {
        return Err(format!(
            "noise_scale {noise_scale} and noise_w {noise_w} must be finite and >= 0"
        ));
    }
    Ok(())
}

/// `{"c": ["k"]}` → `'c' → ['k']`: phonemes are single codepoints after the NFD split, so a
/// longer key could never match.
fn single_codepoint_map(
    map: HashMap<String, Vec<String>>,
) -> Result<HashMap<char, Vec<char>>, String> {
    map.into_iter()
        .map(|(from, to)| {
            let from = single_char(&from).map_err(|e| format!("phoneme_map key {e}"))?;
            let to = to
                .iter()
                .map(|p| single_char(p).map_err(|e| format!("phoneme_map value {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((from, to))
        })
        .collect()
}

pub(super) fn single_char(s: &str) -> Result<char, String> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("{s:?} is not one codepoint")),
    }
}
