//! The `setup` message (providers.md §2.2), checked the way proto-JSON parsing would:
//! unknown fields, wrong types and bad enum values make it invalid (the real server then
//! closes the socket with 1007).

use serde_json::{Map, Value};

use super::messages::{get, known_keys, object, opt_bool, opt_str};

/// What a session was set up with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionSetup {
    pub model: String,
    /// `automaticActivityDetection.disabled`: the client sends activityStart/activityEnd.
    pub manual_activity: bool,
    /// End of turn after this much quiet (automatic detection).
    pub silence_ms: u64,
    /// `START_SENSITIVITY_LOW` makes the fake's VAD need twice the energy.
    pub low_start_sensitivity: bool,
    /// `activityHandling: NO_INTERRUPTION` turns barge-in off.
    pub barge_in: bool,
    pub input_transcription: bool,
    pub output_transcription: bool,
    /// Names of the declared functions.
    pub functions: Vec<String>,
    pub voice: Option<String>,
    pub language: Option<String>,
}

/// Gemini's default end-of-speech silence when the client gives none (the fake's guess).
const DEFAULT_SILENCE_MS: u64 = 800;

const SETUP_KEYS: &[&str] = &[
    "model",
    "generationConfig",
    "systemInstruction",
    "tools",
    "realtimeInputConfig",
    "inputAudioTranscription",
    "outputAudioTranscription",
    "sessionResumption",
    "contextWindowCompression",
    "proactivity",
    "historyConfig",
];
const GENERATION_KEYS: &[&str] = &[
    "responseModalities",
    "speechConfig",
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "seed",
    "mediaResolution",
    "thinkingConfig",
    "enableAffectiveDialog",
    "candidateCount",
    "presencePenalty",
    "frequencyPenalty",
];

pub(crate) fn parse(v: &Value) -> Result<SessionSetup, String> {
    let s = object(v, "setup")?;
    known_keys(s, SETUP_KEYS, "setup")?;
    let model = opt_str(s, "model", "setup")?.ok_or("setup.model is required")?;
    if !model.starts_with("models/") || model.len() <= "models/".len() {
        return Err(format!(
            "setup.model must look like models/{{model}}, got {model:?}"
        ));
    }
    let mut setup = SessionSetup {
        model: model.to_string(),
        manual_activity: false,
        silence_ms: DEFAULT_SILENCE_MS,
        low_start_sensitivity: false,
        barge_in: true,
        input_transcription: false,
        output_transcription: false,
        functions: Vec::new(),
        voice: None,
        language: None,
    };
    if let Some(g) = non_null(s, "generationConfig") {
        generation_config(g, &mut setup)?;
    }
    if let Some(si) = non_null(s, "systemInstruction") {
        content(si, "setup.systemInstruction")?;
    }
    if let Some(tools) = non_null(s, "tools") {
        setup.functions = functions(tools)?;
    }
    if let Some(r) = non_null(s, "realtimeInputConfig") {
        realtime_input_config(r, &mut setup)?;
    }
    for (key, flag) in [
        ("inputAudioTranscription", &mut setup.input_transcription),
        ("outputAudioTranscription", &mut setup.output_transcription),
    ] {
        if let Some(t) = non_null(s, key) {
            object(t, key)?;
            *flag = true;
        }
    }
    Ok(setup)
}

fn non_null<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    get(obj, camel).filter(|v| !v.is_null())
}

fn generation_config(v: &Value, setup: &mut SessionSetup) -> Result<(), String> {
    let what = "setup.generationConfig";
    let g = object(v, what)?;
    known_keys(g, GENERATION_KEYS, what)?;
    if let Some(m) = non_null(g, "responseModalities") {
        let modalities = m.as_array().ok_or("responseModalities must be an array")?;
        // A native-audio model only speaks.
        if modalities.as_slice() != [Value::from("AUDIO")] {
            return Err(format!(
                "responseModalities must be [\"AUDIO\"] for {}, got {m}",
                setup.model
            ));
        }
    }
    if let Some(sc) = non_null(g, "speechConfig") {
        let what = "setup.generationConfig.speechConfig";
        let sc = object(sc, what)?;
        known_keys(
            sc,
            &["voiceConfig", "languageCode", "multiSpeakerVoiceConfig"],
            what,
        )?;
        setup.language = opt_str(sc, "languageCode", what)?.map(str::to_string);
        if let Some(vc) = non_null(sc, "voiceConfig") {
            let vc = object(vc, "voiceConfig")?;
            known_keys(
                vc,
                &["prebuiltVoiceConfig", "replicatedVoiceConfig"],
                "voiceConfig",
            )?;
            if let Some(p) = non_null(vc, "prebuiltVoiceConfig") {
                let p = object(p, "prebuiltVoiceConfig")?;
                known_keys(p, &["voiceName"], "prebuiltVoiceConfig")?;
                setup.voice = opt_str(p, "voiceName", "prebuiltVoiceConfig")?.map(str::to_string);
            }
        }
    }
    Ok(())
}

/// A `Content`: `{role?, parts: [{text}…]}`.
fn content(v: &Value, what: &str) -> Result<(), String> {
    let c = object(v, what)?;
    known_keys(c, &["role", "parts"], what)?;
    opt_str(c, "role", what)?;
    let parts = non_null(c, "parts")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what}.parts must be an array"))?;
    for p in parts {
        let p = object(p, "part")?;
        if opt_str(p, "text", what)?.is_none() {
            return Err(format!("{what}: the fake only takes text parts"));
        }
    }
    Ok(())
}

/// Declared function names; other tools (search, code execution) are allowed.
fn functions(v: &Value) -> Result<Vec<String>, String> {
    let tools = v.as_array().ok_or("setup.tools must be an array")?;
    let mut names = Vec::new();
    for tool in tools {
        let t = object(tool, "setup.tools[]")?;
        let Some(decls) = non_null(t, "functionDeclarations") else {
            continue;
        };
        for d in decls
            .as_array()
            .ok_or("functionDeclarations must be an array")?
        {
            let what = "functionDeclarations[]";
            let d = object(d, what)?;
            known_keys(
                d,
                &[
                    "name",
                    "description",
                    "parameters",
                    "parametersJsonSchema",
                    "behavior",
                    "response",
                ],
                what,
            )?;
            let name = opt_str(d, "name", what)?.ok_or("a function declaration needs a name")?;
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
            if !valid {
                return Err(format!("invalid function name {name:?}"));
            }
            if let Some(p) = non_null(d, "parameters") {
                object(p, "parameters")?;
            }
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn realtime_input_config(v: &Value, setup: &mut SessionSetup) -> Result<(), String> {
    let what = "setup.realtimeInputConfig";
    let r = object(v, what)?;
    known_keys(
        r,
        &[
            "automaticActivityDetection",
            "activityHandling",
            "turnCoverage",
        ],
        what,
    )?;
    if let Some(h) = opt_str(r, "activityHandling", what)? {
        one_of(
            h,
            &[
                "ACTIVITY_HANDLING_UNSPECIFIED",
                "START_OF_ACTIVITY_INTERRUPTS",
                "NO_INTERRUPTION",
            ],
        )?;
        setup.barge_in = h != "NO_INTERRUPTION";
    }
    if let Some(t) = opt_str(r, "turnCoverage", what)? {
        one_of(
            t,
            &[
                "TURN_COVERAGE_UNSPECIFIED",
                "TURN_INCLUDES_ONLY_ACTIVITY",
                "TURN_INCLUDES_ALL_INPUT",
            ],
        )?;
    }
    let Some(aad) = non_null(r, "automaticActivityDetection") else {
        return Ok(());
    };
    let what = "automaticActivityDetection";
    let a = object(aad, what)?;
    known_keys(
        a,
        &[
            "disabled",
            "startOfSpeechSensitivity",
            "endOfSpeechSensitivity",
            "prefixPaddingMs",
            "silenceDurationMs",
        ],
        what,
    )?;
    setup.manual_activity = opt_bool(a, "disabled", what)?.unwrap_or(false);
    if let Some(s) = opt_str(a, "startOfSpeechSensitivity", what)? {
        one_of(
            s,
            &[
                "START_SENSITIVITY_UNSPECIFIED",
                "START_SENSITIVITY_HIGH",
                "START_SENSITIVITY_LOW",
            ],
        )?;
        setup.low_start_sensitivity = s == "START_SENSITIVITY_LOW";
    }
    if let Some(s) = opt_str(a, "endOfSpeechSensitivity", what)? {
        one_of(
            s,
            &[
                "END_SENSITIVITY_UNSPECIFIED",
                "END_SENSITIVITY_HIGH",
                "END_SENSITIVITY_LOW",
            ],
        )?;
    }
    millis(a, "prefixPaddingMs")?;
    if let Some(ms) = millis(a, "silenceDurationMs")? {
        setup.silence_ms = ms;
    }
    Ok(())
}

fn one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "Invalid value {value:?}; expected one of {allowed:?}"
        ))
    }
}

/// An int32 field (proto-JSON also takes it as a decimal string).
fn millis(obj: &Map<String, Value>, camel: &str) -> Result<Option<u64>, String> {
    let parsed = match non_null(obj, camel) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(_) => None,
    };
    parsed
        .filter(|ms| *ms <= i32::MAX as u64)
        .map(Some)
        .ok_or_else(|| format!("{camel} must be a non-negative integer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference() -> Value {
        json!({
          "model":"models/gemini-2.5-flash-native-audio-preview-12-2025",
          "generationConfig":{"responseModalities":["AUDIO"],
            "speechConfig":{"voiceConfig":{"prebuiltVoiceConfig":{"voiceName":"Charon"}},"languageCode":"pt-BR"}},
          "systemInstruction":{"parts":[{"text":"Você é um atendente…"}]},
          "tools":[{"functionDeclarations":[{"name":"lookup_customer","description":"…",
                    "parameters":{"type":"object","properties":{"phone":{"type":"string"}},"required":["phone"]}}]}],
          "realtimeInputConfig":{"automaticActivityDetection":{"disabled":false,
              "startOfSpeechSensitivity":"START_SENSITIVITY_HIGH","endOfSpeechSensitivity":"END_SENSITIVITY_LOW",
              "prefixPaddingMs":20,"silenceDurationMs":500},
            "activityHandling":"START_OF_ACTIVITY_INTERRUPTS","turnCoverage":"TURN_INCLUDES_ONLY_ACTIVITY"},
          "inputAudioTranscription":{},"outputAudioTranscription":{}})
    }

    #[test]
    fn the_reference_setup_is_valid() {
        let s = parse(&reference()).unwrap();
        assert!(!s.manual_activity && s.barge_in);
        assert_eq!(s.silence_ms, 500);
        assert!(s.input_transcription && s.output_transcription);
        assert_eq!(s.functions, vec!["lookup_customer"]);
        assert_eq!(s.voice.as_deref(), Some("Charon"));
        assert_eq!(s.language.as_deref(), Some("pt-BR"));
        // snake_case spellings are the same message.
        let snake = json!({"model": "models/m", "realtime_input_config":
            {"automatic_activity_detection": {"disabled": true}}, "input_audio_transcription": {}});
        let s = parse(&snake).unwrap();
        assert!(s.manual_activity && s.input_transcription && !s.output_transcription);
    }

    #[test]
    fn invalid_setups_are_rejected() {
        let mutate = |f: fn(&mut Value)| {
            let mut v = reference();
            f(&mut v);
            parse(&v)
        };
        assert!(mutate(|v| v["model"] = "gemini-live".into()).is_err());
        assert!(mutate(|v| {
            v.as_object_mut().unwrap().remove("model");
        })
        .is_err());
        assert!(
            mutate(|v| v["temperature"] = 0.5.into()).is_err(),
            "belongs in generationConfig"
        );
        assert!(mutate(|v| v["generationConfig"]["responseModalities"] = json!(["TEXT"])).is_err());
        assert!(
            mutate(|v| v["realtimeInputConfig"]["automaticActivityDetection"]
                ["startOfSpeechSensitivity"] = "HIGH".into())
            .is_err()
        );
        assert!(
            mutate(|v| v["realtimeInputConfig"]["automaticActivityDetection"]
                ["silenceDurationMs"] = (-5).into())
            .is_err()
        );
        assert!(
            mutate(|v| v["tools"][0]["functionDeclarations"][0]["name"] = "a b".into()).is_err()
        );
        assert!(mutate(|v| v["systemInstruction"] = "plain string".into()).is_err());
        assert!(mutate(|v| v["generationConfig"]["speechConfig"]["voice"] = "x".into()).is_err());
    }
}
