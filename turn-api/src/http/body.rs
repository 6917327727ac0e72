//! Request bodies as FreeSWITCH sends them. mod_curl posts
//! `application/x-www-form-urlencoded` unless told otherwise, and URL-decodes the data
//! before sending, so a JSON body may arrive with the form content type and form values
//! arrive already decoded (`+` stays `+`).

use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{clip, ApiError};

/// The kind of body, from its content type and, when that is missing, its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    Wav,
}

pub fn kind(headers: &HeaderMap, body: &[u8]) -> Result<BodyKind, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    match ct.as_str() {
        "application/json" | "text/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" | "text/plain" if looks_json => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" | "text/plain" => Ok(BodyKind::Form),
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => Ok(BodyKind::Wav),
        "" | "application/octet-stream" if body.starts_with(b"RIFF") => Ok(BodyKind::Wav),
        "" if looks_json => Ok(BodyKind::Json),
        "" => Ok(BodyKind::Form),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type {:?} not accepted: send application/json, \
                 application/x-www-form-urlencoded or audio/wav",
                clip(other)
            ),
        )),
    }
}

/// A JSON or form body as `T`, with errors that name the problem.
pub fn decode<T: DeserializeOwned>(kind: BodyKind, body: &[u8]) -> Result<T, ApiError> {
    let value = match kind {
        BodyKind::Json => serde_json::from_slice::<serde_json::Value>(body).map_err(|e| {
            ApiError::bad_request("bad_json", format!("body is not valid JSON: {e}"))
        })?,
        BodyKind::Form => form(body)?,
        BodyKind::Wav => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "this endpoint takes JSON or form fields, not audio",
            ))
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "bad_json",
            "body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let code = if message.starts_with("missing field") {
            "missing_field"
        } else {
            "invalid_field"
        };
        ApiError::bad_request(code, message)
    })
}

/// `a=1&b=2` as a JSON object of strings. Values are percent-decoded (`%XX` only: mod_curl
/// already decoded them, and a literal `+` in a path must stay a `+`).
fn form(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("bad_form", "form body is not UTF-8"))?;
    let mut map = serde_json::Map::new();
    for pair in text.trim().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            ApiError::bad_request(
                "bad_form",
                format!("form field {:?} has no `=`", clip(pair)),
            )
        })?;
        map.insert(percent_decode(k.trim()), percent_decode(v.trim()).into());
    }
    Ok(serde_json::Value::Object(map))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        audio_path: String,
    }

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, v.parse().unwrap());
        h
    }

    #[test]
    fn form_bodies_and_json_sent_as_form_both_decode() {
        let form_ct = ct("application/x-www-form-urlencoded");
        let b = b"audio_path=/tmp/a+b%20c.wav&x=1";
        let t: T = decode(kind(&form_ct, b).unwrap(), b).unwrap();
        assert_eq!(t.audio_path, "/tmp/a+b c.wav");
        let b = br#" {"audio_path": "/tmp/x y.wav"}"#;
        assert_eq!(kind(&form_ct, b).unwrap(), BodyKind::Json);
        let t: T = decode(BodyKind::Json, b).unwrap();
        assert_eq!(t.audio_path, "/tmp/x y.wav");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let e = decode::<T>(BodyKind::Json, b"{\"audio_path\": ").unwrap_err();
        assert_eq!(e.code, "bad_json");
        let e = decode::<T>(BodyKind::Json, b"{}").unwrap_err();
        assert_eq!(e.code, "missing_field");
        assert!(e.message.contains("audio_path"), "{}", e.message);
        let e = decode::<T>(BodyKind::Json, b"[1]").unwrap_err();
        assert_eq!(e.code, "bad_json");
        let e = decode::<T>(BodyKind::Form, b"audio_path").unwrap_err();
        assert_eq!(e.code, "bad_form");
        let e = kind(&ct("image/png"), b"x").unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(kind(&HeaderMap::new(), b"RIFF....").unwrap(), BodyKind::Wav);
    }
}
