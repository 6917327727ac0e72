//! Extractors that answer bad input with [`ApiError`]s (axum's own answer in plain text):
//! [`JsonBody`] for bodies, [`PathIds`] for path segments, [`QueryParams`] for query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{clip, ApiError};

/// A JSON object body as `T` (the store's `New*`/`*Patch` types refuse unknown fields).
/// Not JSON or not an object: 400 `bad_json`. Not the shape of `T`: 422 naming the field,
/// without the value sent (it may be a secret).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = match req.headers().get(header::CONTENT_TYPE) {
            None => true,
            Some(v) => v.to_str().is_ok_and(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            }),
        };
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "body_too_large"
            } else {
                "bad_body"
            };
            ApiError::new(e.status(), code, e.body_text())
        })?;
        decode(&bytes).map(JsonBody)
    }
}

/// `bytes` as a JSON object of the shape of `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde_json's syntax errors name a position, never the text around it.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("bad_json", format!("body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "bad_json",
            "body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = without_values(&e.inner().to_string());
        let code = if message.starts_with("missing field") {
            "missing_field"
        } else if message.starts_with("unknown field") {
            "unknown_field"
        } else {
            "invalid_field"
        };
        let message = if path == "." {
            message
        } else {
            format!("{path}: {message}")
        };
        ApiError::unprocessable(code, message)
    })
}

/// serde's messages with the offending value taken out: `invalid type: string "sk-…",
/// expected a map` becomes `invalid type: string, expected a map`.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (unexpected, expected) = match rest.find(", expected") {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let kind = unexpected.split(['`', '"']).next().unwrap_or("").trim();
            return format!("{prefix}{kind}{expected}");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some(end) = rest.find('`') {
            return format!("unknown variant{}", &rest[end + 1..]);
        }
    }
    message.to_string()
}

/// Path segments as `T` (ids are UUIDs): 400 `invalid_path` otherwise.
pub struct PathIds<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathIds<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathIds(t))
            .map_err(|e| ApiError::bad_request("invalid_path", clip(&e.body_text())))
    }
}

/// The query string as `T`: 400 `invalid_query` otherwise.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| QueryParams(t))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        credentials: Option<BTreeMap<String, String>>,
        mode: Option<Mode>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Realtime,
    }

    #[test]
    fn bad_bodies_say_what_is_wrong_without_the_values() {
        let e = decode::<T>(b"{\"name\": ").unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "bad_json"));
        let e = decode::<T>(b"[1]").unwrap_err();
        assert_eq!(e.code, "bad_json");
        let e = decode::<T>(b"{}").unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "missing_field")
        );
        assert!(e.message.contains("name"), "{}", e.message);
        let e = decode::<T>(br#"{"name": "a", "nmae": 1}"#).unwrap_err();
        assert_eq!(e.code, "unknown_field");
        assert!(e.message.contains("nmae"), "{}", e.message);
        let e = decode::<T>(br#"{"name": "a", "credentials": "sk-secret-1"}"#).unwrap_err();
        assert_eq!(e.code, "invalid_field");
        assert!(e
            .message
            .starts_with("credentials: invalid type: string, expected"));
        assert!(!e.message.contains("sk-secret-1"), "{}", e.message);
        let e = decode::<T>(br#"{"name": "a", "credentials": {"api_key": 12345}}"#).unwrap_err();
        assert!(
            e.message.starts_with("credentials.api_key:"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("12345"), "{}", e.message);
        let e = decode::<T>(br#"{"name": "a", "mode": "sk-secret-2"}"#).unwrap_err();
        assert!(!e.message.contains("sk-secret-2"), "{}", e.message);
        assert!(e.message.contains("realtime"), "{}", e.message);
    }

    #[test]
    fn values_are_taken_out_of_serde_messages() {
        assert_eq!(
            without_values("invalid value: integer `-5`, expected u32"),
            "invalid value: integer, expected u32"
        );
        assert_eq!(
            without_values("invalid type: floating point `1.5`, expected i32"),
            "invalid type: floating point, expected i32"
        );
        assert_eq!(without_values("missing field `x`"), "missing field `x`");
    }
}
