//! Client message envelopes and field checks (providers.md §2.1–2.4).
//!
//! Proto-JSON accepts both spellings of every field, so `get` looks for the camelCase
//! name and its snake_case twin (`realtimeInput`/`realtime_input`, `mimeType`/`mime_type`).

use base64::Engine;
use serde_json::{Map, Value};

/// The one top-level key of a client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelope {
    Setup,
    ClientContent,
    RealtimeInput,
    ToolResponse,
}

impl Envelope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::ClientContent => "clientContent",
            Self::RealtimeInput => "realtimeInput",
            Self::ToolResponse => "toolResponse",
        }
    }
}

/// A message the fake cannot parse at all; the real server closes the socket (1007).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unparseable(pub String);

/// Splits a client frame into its envelope and body.
pub(crate) fn envelope(bytes: &[u8]) -> Result<(Envelope, Value), Unparseable> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Unparseable(format!("Invalid JSON payload received: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(Unparseable("the message must be a JSON object".into()));
    };
    if obj.len() != 1 {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        return Err(Unparseable(format!(
            "a message needs exactly one of setup, clientContent, realtimeInput, toolResponse; got {keys:?}"
        )));
    }
    let Some((key, body)) = obj.into_iter().next() else {
        return Err(Unparseable("empty message".into()));
    };
    let kind = match key.as_str() {
        "setup" => Envelope::Setup,
        "clientContent" | "client_content" => Envelope::ClientContent,
        "realtimeInput" | "realtime_input" => Envelope::RealtimeInput,
        "toolResponse" | "tool_response" => Envelope::ToolResponse,
        other => {
            return Err(Unparseable(format!(
                "Unknown name \"{other}\": Cannot find field."
            )))
        }
    };
    if !body.is_object() {
        return Err(Unparseable(format!("{key} must be an object")));
    }
    Ok((kind, body))
}

/// `camelCase` → `snake_case`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `obj[camel]`, or its snake_case spelling.
pub(crate) fn get<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(&snake(camel)))
}

/// The object inside `v`, or an error naming `what`.
pub(crate) fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be an object"))
}

/// Fails on keys that are not in `known` (in either spelling), as proto-JSON does.
pub(crate) fn known_keys(
    obj: &Map<String, Value>,
    known: &[&str],
    what: &str,
) -> Result<(), String> {
    for key in obj.keys() {
        if !known.iter().any(|k| *k == key || snake(k) == *key) {
            return Err(format!(
                "Unknown name \"{key}\" at '{what}': Cannot find field."
            ));
        }
    }
    Ok(())
}

/// An optional string field.
pub(crate) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    camel: &str,
    what: &str,
) -> Result<Option<&'a str>, String> {
    match get(obj, camel) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{what}.{camel} must be a string")),
    }
}

/// An optional boolean field.
pub(crate) fn opt_bool(
    obj: &Map<String, Value>,
    camel: &str,
    what: &str,
) -> Result<Option<bool>, String> {
    match get(obj, camel) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{what}.{camel} must be a boolean")),
    }
}

/// Caller audio from a `Blob` (`{data, mimeType}`): PCM16 LE mono at 16 kHz only.
pub(crate) fn audio_blob(v: &Value, what: &str) -> Result<Vec<i16>, String> {
    let obj = object(v, what)?;
    known_keys(obj, &["data", "mimeType"], what)?;
    let mime =
        opt_str(obj, "mimeType", what)?.ok_or_else(|| format!("{what}.mimeType is required"))?;
    check_pcm16k(mime).map_err(|e| format!("{what}.mimeType: {e}"))?;
    let data = opt_str(obj, "data", what)?.ok_or_else(|| format!("{what}.data is required"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("{what}.data is not valid base64: {e}"))?;
    if bytes.len() % 2 != 0 {
        return Err(format!(
            "{what}.data: PCM16 needs an even number of bytes, got {}",
            bytes.len()
        ));
    }
    Ok(voice_core::audio::pcm::from_le_bytes(&bytes))
}

/// `audio/pcm;rate=16000` (parameters may have spaces).
fn check_pcm16k(mime: &str) -> Result<(), String> {
    let mut parts = mime.split(';').map(str::trim);
    let kind = parts.next().unwrap_or("");
    if !kind.eq_ignore_ascii_case("audio/pcm") {
        return Err(format!("expected audio/pcm, got {mime:?}"));
    }
    let rate = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("rate"))
        .map(|(_, v)| v.trim());
    match rate {
        Some("16000") => Ok(()),
        Some(other) => Err(format!("the fake takes rate=16000 only, got rate={other}")),
        None => Err(format!("no rate in {mime:?}; send audio/pcm;rate=16000")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_in_both_spellings() {
        for (raw, kind) in [
            (r#"{"setup":{}}"#, Envelope::Setup),
            (r#"{"realtimeInput":{}}"#, Envelope::RealtimeInput),
            (r#"{"realtime_input":{}}"#, Envelope::RealtimeInput),
            (r#"{"client_content":{}}"#, Envelope::ClientContent),
            (r#"{"tool_response":{}}"#, Envelope::ToolResponse),
        ] {
            assert_eq!(envelope(raw.as_bytes()).unwrap().0, kind, "{raw}");
        }
        for bad in [
            "nope",
            "[1]",
            "{}",
            r#"{"setup":{},"realtimeInput":{}}"#,
            r#"{"realtimeInputs":{}}"#,
            r#"{"setup":1}"#,
        ] {
            assert!(envelope(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_in_both_spellings_and_unknown_keys() {
        let v = json!({"mime_type": "audio/pcm;rate=16000", "data": "AAA="});
        let obj = v.as_object().unwrap();
        assert_eq!(
            opt_str(obj, "mimeType", "x").unwrap(),
            Some("audio/pcm;rate=16000")
        );
        assert!(known_keys(obj, &["mimeType", "data"], "x").is_ok());
        assert!(known_keys(obj, &["data"], "x").is_err());
        assert!(opt_bool(obj, "data", "x").is_err());
    }

    #[test]
    fn audio_blobs_are_checked() {
        let ok = json!({"data": "AQD//w==", "mimeType": "audio/pcm; rate=16000"});
        assert_eq!(audio_blob(&ok, "audio").unwrap(), vec![1, -1]);
        for bad in [
            json!({"data": "AAA=", "mimeType": "audio/pcm;rate=24000"}),
            json!({"data": "AAA=", "mimeType": "audio/pcm"}),
            json!({"data": "AAA=", "mimeType": "audio/wav;rate=16000"}),
            json!({"data": "AAA="}),
            json!({"data": "!!", "mimeType": "audio/pcm;rate=16000"}),
            json!({"data": "AAAA", "mimeType": "audio/pcm;rate=16000"}),
            json!({"data": "AAA=", "mimeType": "audio/pcm;rate=16000", "extra": 1}),
        ] {
            assert!(audio_blob(&bad, "audio").is_err(), "{bad}");
        }
    }
}
