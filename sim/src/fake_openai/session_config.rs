//! The session object: defaults, strict validation of `session.update`, and merging
//! (providers.md §1.2–1.3). Beta field names in a GA session (and the reverse) are
//! rejected as unknown parameters, as the real API does.

use crate::fake_common::encoding::Encoding;
use serde_json::{json, Map, Value};

/// Audio format of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    Pcm24k,
    Pcmu,
    Pcma,
}

impl Format {
    pub fn rate(self) -> u32 {
        match self {
            Self::Pcm24k => 24_000,
            Self::Pcmu | Self::Pcma => 8_000,
        }
    }

    pub fn bytes_per_ms(self) -> u64 {
        match self {
            Self::Pcm24k => 48,
            Self::Pcmu | Self::Pcma => 8,
        }
    }

    pub fn encoding(self) -> Encoding {
        match self {
            Self::Pcm24k => Encoding::Pcm16,
            Self::Pcmu => Encoding::Ulaw,
            Self::Pcma => Encoding::Alaw,
        }
    }

    /// Samples of a client chunk; `None` for PCM16 with an odd byte count.
    pub fn decode(self, bytes: &[u8]) -> Option<Vec<i16>> {
        self.encoding().decode(bytes)
    }
}

/// server_vad settings in effect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TurnDetection {
    pub threshold: f64,
    pub prefix_padding_ms: u64,
    pub silence_duration_ms: u64,
    pub create_response: bool,
    pub interrupt_response: bool,
}

/// What the session's JSON means for the fake's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Effective {
    pub input: Format,
    pub output: Format,
    /// `None`: turn detection off, the client commits and asks for responses itself.
    pub turn_detection: Option<TurnDetection>,
    pub transcription: bool,
}

pub(crate) struct SessionConfig {
    beta: bool,
    value: Value,
    effective: Effective,
}

const GA_KEYS: &[&str] = &[
    "type",
    "model",
    "output_modalities",
    "instructions",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "prompt",
    "include",
];
const GA_INPUT_KEYS: &[&str] = &[
    "format",
    "transcription",
    "turn_detection",
    "noise_reduction",
];
const GA_OUTPUT_KEYS: &[&str] = &["format", "voice", "speed"];
const BETA_KEYS: &[&str] = &[
    "model",
    "modalities",
    "instructions",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "turn_detection",
    "input_audio_noise_reduction",
    "tools",
    "tool_choice",
    "temperature",
    "max_response_output_tokens",
    "speed",
    "tracing",
    "include",
];
const VAD_KEYS: &[&str] = &[
    "type",
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "idle_timeout_ms",
    "create_response",
    "interrupt_response",
];
const SEMANTIC_VAD_KEYS: &[&str] = &["type", "eagerness", "create_response", "interrupt_response"];

impl SessionConfig {
    /// The session as `session.created` shows it.
    pub fn initial(beta: bool, id: &str, model: &str) -> Self {
        let turn_detection = json!({"type": "server_vad", "threshold": 0.5,
            "prefix_padding_ms": 300, "silence_duration_ms": 200,
            "create_response": true, "interrupt_response": true});
        let value = if beta {
            json!({"id": id, "object": "realtime.session", "model": model,
                "modalities": ["audio", "text"], "instructions": "", "voice": "alloy",
                "input_audio_format": "pcm16", "output_audio_format": "pcm16",
                "input_audio_transcription": null, "turn_detection": turn_detection,
                "tools": [], "tool_choice": "auto", "temperature": 0.8,
                "max_response_output_tokens": "inf"})
        } else {
            json!({"type": "realtime", "object": "realtime.session", "id": id, "model": model,
                "output_modalities": ["audio"], "instructions": "",
                "audio": {
                    "input": {"format": {"type": "audio/pcm", "rate": 24000},
                              "transcription": null, "noise_reduction": null,
                              "turn_detection": turn_detection},
                    "output": {"format": {"type": "audio/pcm", "rate": 24000},
                               "voice": "alloy", "speed": 1.0}},
                "tools": [], "tool_choice": "auto", "max_output_tokens": "inf"})
        };
        let effective = derive(beta, &value).unwrap_or(Effective {
            input: Format::Pcm24k,
            output: Format::Pcm24k,
            turn_detection: None,
            transcription: false,
        });
        Self {
            beta,
            value,
            effective,
        }
    }

    pub fn json(&self) -> &Value {
        &self.value
    }

    pub fn effective(&self) -> &Effective {
        &self.effective
    }

    /// Validates `update` and merges it in; on error nothing changes.
    pub fn apply_update(&mut self, update: &Value) -> Result<(), String> {
        let update = update
            .as_object()
            .ok_or("session must be an object".to_string())?;
        let mut merged = self.value.clone();
        if self.beta {
            check_keys(update, BETA_KEYS, "session")?;
            merge_into(&mut merged, update);
        } else {
            check_keys(update, GA_KEYS, "session")?;
            match update.get("type").and_then(Value::as_str) {
                Some("realtime") => {}
                Some("transcription") => {
                    return Err("the fake only serves session.type 'realtime'".into())
                }
                _ => return Err("Missing required parameter: 'session.type'.".into()),
            }
            let audio = update.get("audio").cloned();
            let rest: Map<String, Value> = update
                .iter()
                .filter(|(k, _)| k.as_str() != "audio")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            merge_into(&mut merged, &rest);
            if let Some(audio) = audio {
                merge_ga_audio(&mut merged, &audio)?;
            }
        }
        check_common(&merged)?;
        self.effective = derive(self.beta, &merged)?;
        self.value = merged;
        Ok(())
    }
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("Unknown parameter: '{path}.{k}'.")),
        None => Ok(()),
    }
}

/// Top-level replace: nested objects such as `turn_detection` are replaced whole.
fn merge_into(target: &mut Value, update: &Map<String, Value>) {
    if let Some(t) = target.as_object_mut() {
        for (k, v) in update {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// GA `audio.input` / `audio.output` merge key by key.
fn merge_ga_audio(target: &mut Value, audio: &Value) -> Result<(), String> {
    let audio = audio.as_object().ok_or("session.audio must be an object")?;
    check_keys(audio, &["input", "output"], "session.audio")?;
    for (dir, keys) in [("input", GA_INPUT_KEYS), ("output", GA_OUTPUT_KEYS)] {
        let Some(part) = audio.get(dir) else { continue };
        let part = part
            .as_object()
            .ok_or(format!("session.audio.{dir} must be an object"))?;
        check_keys(part, keys, &format!("session.audio.{dir}"))?;
        if let Some(slot) = target.pointer_mut(&format!("/audio/{dir}")) {
            merge_into(slot, part);
        }
    }
    Ok(())
}

fn check_common(s: &Value) -> Result<(), String> {
    if let Some(i) = s.get("instructions") {
        if !i.is_string() {
            return Err("session.instructions must be a string".into());
        }
    }
    if let Some(tools) = s.get("tools") {
        let tools = tools.as_array().ok_or("session.tools must be an array")?;
        for (n, t) in tools.iter().enumerate() {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(format!("session.tools[{n}].type must be 'function'"));
            }
            if t.get("function").is_some() {
                return Err(format!(
                    "Unknown parameter: 'session.tools[{n}].function' (realtime tools are flat)."
                ));
            }
            if t.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(format!("session.tools[{n}].name is required"));
            }
            if t.get("parameters").is_some_and(|p| !p.is_object()) {
                return Err(format!("session.tools[{n}].parameters must be an object"));
            }
        }
    }
    match s.get("tool_choice") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(Value::String(c)) if ["auto", "none", "required"].contains(&c.as_str()) => Ok(()),
        Some(other) => Err(format!("Invalid value for session.tool_choice: {other}")),
    }
}

fn derive(beta: bool, s: &Value) -> Result<Effective, String> {
    let (input, output, transcription, td) = if beta {
        let modalities = s.get("modalities").and_then(Value::as_array);
        if modalities.is_some_and(|m| {
            m.iter()
                .any(|x| !matches!(x.as_str(), Some("audio" | "text")))
        }) {
            return Err("session.modalities may only hold 'audio' and 'text'".into());
        }
        (
            beta_format(s.get("input_audio_format"), "input_audio_format")?,
            beta_format(s.get("output_audio_format"), "output_audio_format")?,
            s.get("input_audio_transcription"),
            s.get("turn_detection"),
        )
    } else {
        match s.get("output_modalities").and_then(Value::as_array) {
            Some(m) if m == &[json!("audio")] || m == &[json!("text")] => {}
            _ => return Err("session.output_modalities must be ['audio'] or ['text']".into()),
        }
        (
            ga_format(
                s.pointer("/audio/input/format"),
                "session.audio.input.format",
            )?,
            ga_format(
                s.pointer("/audio/output/format"),
                "session.audio.output.format",
            )?,
            s.pointer("/audio/input/transcription"),
            s.pointer("/audio/input/turn_detection"),
        )
    };
    Ok(Effective {
        input,
        output,
        turn_detection: turn_detection(td)?,
        transcription: transcription_on(transcription)?,
    })
}

fn ga_format(v: Option<&Value>, path: &str) -> Result<Format, String> {
    let Some(Value::Object(f)) = v else {
        return Err(format!("{path} must be an object"));
    };
    check_keys(f, &["type", "rate"], path)?;
    let rate = f.get("rate");
    match f.get("type").and_then(Value::as_str) {
        Some("audio/pcm") => match rate {
            None => Ok(Format::Pcm24k),
            Some(r) if r.as_u64() == Some(24_000) => Ok(Format::Pcm24k),
            Some(r) => Err(format!("Invalid value for {path}.rate: {r} (only 24000)")),
        },
        Some(t @ ("audio/pcmu" | "audio/pcma")) if rate.is_some() => {
            Err(format!("Unknown parameter: '{path}.rate' for {t}."))
        }
        Some("audio/pcmu") => Ok(Format::Pcmu),
        Some("audio/pcma") => Ok(Format::Pcma),
        other => Err(format!("Invalid value for {path}.type: {other:?}")),
    }
}

fn beta_format(v: Option<&Value>, path: &str) -> Result<Format, String> {
    match v.and_then(Value::as_str) {
        Some("pcm16") => Ok(Format::Pcm24k),
        Some("g711_ulaw") => Ok(Format::Pcmu),
        Some("g711_alaw") => Ok(Format::Pcma),
        other => Err(format!("Invalid value for session.{path}: {other:?}")),
    }
}

fn transcription_on(v: Option<&Value>) -> Result<bool, String> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(t)) => {
            check_keys(t, &["model", "language", "prompt"], "transcription")?;
            if t.get("model")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err("transcription.model is required".into());
            }
            if let Some(lang) = t.get("language") {
                let ok = lang.as_str().is_some_and(|l| {
                    (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase())
                });
                if !ok {
                    return Err(format!(
                        "Invalid value for transcription.language: {lang} (ISO-639-1, e.g. 'pt')"
                    ));
                }
            }
            Ok(true)
        }
        Some(other) => Err(format!(
            "transcription must be an object or null, got {other}"
        )),
    }
}

fn turn_detection(v: Option<&Value>) -> Result<Option<TurnDetection>, String> {
    let t = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(t)) => t,
        Some(other) => {
            return Err(format!(
                "turn_detection must be an object or null, got {other}"
            ))
        }
    };
    let flag = |k: &str| t.get(k).and_then(Value::as_bool).unwrap_or(true);
    match t.get("type").and_then(Value::as_str) {
        Some("server_vad") => {
            check_keys(t, VAD_KEYS, "turn_detection")?;
            let threshold = t.get("threshold").and_then(Value::as_f64).unwrap_or(0.5);
            if !(0.0..=1.0).contains(&threshold) {
                return Err(format!("turn_detection.threshold out of 0..1: {threshold}"));
            }
            let ms = |k: &str, default: u64| -> Result<u64, String> {
                match t.get(k) {
                    None => Ok(default),
                    Some(v) => v
                        .as_u64()
                        .ok_or(format!("turn_detection.{k} must be a non-negative integer")),
                }
            };
            Ok(Some(TurnDetection {
                threshold,
                prefix_padding_ms: ms("prefix_padding_ms", 300)?,
                silence_duration_ms: ms("silence_duration_ms", 200)?,
                create_response: flag("create_response"),
                interrupt_response: flag("interrupt_response"),
            }))
        }
        // Semantic VAD is approximated with energy VAD and a longer pause.
        Some("semantic_vad") => {
            check_keys(t, SEMANTIC_VAD_KEYS, "turn_detection")?;
            Ok(Some(TurnDetection {
                threshold: 0.5,
                prefix_padding_ms: 300,
                silence_duration_ms: 800,
                create_response: flag("create_response"),
                interrupt_response: flag("interrupt_response"),
            }))
        }
        other => Err(format!("Invalid value for turn_detection.type: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ga() -> SessionConfig {
        SessionConfig::initial(false, "sess_1", "gpt-realtime")
    }

    #[test]
    fn ga_update_merges_and_derives() {
        let mut s = ga();
        s.apply_update(&json!({"type": "realtime", "instructions": "Oi",
            "audio": {"input": {"format": {"type": "audio/pcmu"},
                                "transcription": {"model": "gpt-4o-transcribe", "language": "pt"},
                                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500,
                                                   "create_response": true, "interrupt_response": true}},
                      "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}}}))
            .unwrap();
        let e = s.effective();
        assert_eq!((e.input, e.output), (Format::Pcmu, Format::Pcmu));
        assert!(e.transcription);
        assert_eq!(e.turn_detection.as_ref().unwrap().silence_duration_ms, 500);
        assert_eq!(s.json()["audio"]["output"]["voice"], "marin");
        assert_eq!(
            s.json()["audio"]["output"]["speed"],
            1.0,
            "untouched keys stay"
        );
        assert_eq!(s.json()["instructions"], "Oi");
    }

    #[test]
    fn ga_rejects_beta_fields_bad_rates_and_missing_type() {
        let mut s = ga();
        for bad in [
            json!({"instructions": "no type"}),
            json!({"type": "realtime", "modalities": ["audio"]}),
            json!({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}),
            json!({"type": "realtime", "audio": {"output": {"format": "pcm16"}}}),
            json!({"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1", "language": "pt-BR"}}}}),
            json!({"type": "realtime", "tools": [{"type": "function", "function": {"name": "x"}}]}),
            json!({"type": "realtime", "output_modalities": ["audio", "text"]}),
        ] {
            assert!(s.apply_update(&bad).is_err(), "accepted {bad}");
        }
        assert_eq!(
            s.effective().input,
            Format::Pcm24k,
            "failed updates change nothing"
        );
    }

    #[test]
    fn beta_update_and_rejections() {
        let mut s = SessionConfig::initial(true, "sess_1", "m");
        s.apply_update(
            &json!({"modalities": ["audio", "text"], "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_ulaw", "turn_detection": null, "voice": "alloy"}),
        )
        .unwrap();
        assert_eq!(s.effective().input, Format::Pcmu);
        assert_eq!(s.effective().turn_detection, None);
        assert!(s.apply_update(&json!({"type": "realtime"})).is_err());
        assert!(s
            .apply_update(&json!({"input_audio_format": "pcm24"}))
            .is_err());
    }

    #[test]
    fn decodes_formats() {
        assert_eq!(Format::Pcm24k.decode(&[1, 0, 2]), None);
        assert_eq!(Format::Pcm24k.decode(&[1, 0]), Some(vec![1]));
        assert_eq!(Format::Pcmu.decode(&[0xff, 0x7f]).map(|s| s.len()), Some(2));
    }
}
