//! What the HTTP speech-to-text clients (Deepgram pre-recorded, OpenAI-style
//! transcription) share: the key from config or environment, the auth header, one time
//! budget per request, and HTTP failures in [`ProviderError`] terms. Errors carry the
//! status only: response bodies can echo request details (OpenAI's 401 quotes the key).

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::StatusCode;

use crate::config::Secret;
use crate::providers::ProviderError;

/// The configured key, else the environment variable `env`; `setting` names the config
/// key in the error.
pub fn api_key(configured: &Secret, env: &str, setting: &str) -> Result<Secret, ProviderError> {
    if !configured.is_empty() {
        return Ok(configured.clone());
    }
    match std::env::var(env) {
        Ok(k) if !k.trim().is_empty() => Ok(Secret::new(k.trim())),
        _ => Err(ProviderError::Config(format!(
            "no API key: set {setting} or {env}"
        ))),
    }
}

/// An `Authorization` value (`"Token …"`, `"Bearer …"`), marked sensitive.
pub fn auth_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::Config("API key contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// The client kept in `cell`, built on first use and then reused (connection pool, TLS
/// roots).
pub fn client(cell: &OnceLock<reqwest::Client>) -> Result<&reqwest::Client, ProviderError> {
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .build()
        .map_err(|e| ProviderError::Config(format!("cannot build the HTTP client: {e}")))?;
    let _ = cell.set(built);
    cell.get()
        .ok_or_else(|| ProviderError::Config("HTTP client unavailable".into()))
}

/// An `http(s)://` URL, else a `Config` error.
pub fn require_http_url(url: &str) -> Result<(), ProviderError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(());
    }
    Err(ProviderError::Config(format!(
        "url must start with https:// or http://, got {url:?}"
    )))
}

/// Runs one whole request (send and read) within `budget_ms`, else `Timeout`.
pub async fn within<T>(
    budget_ms: u64,
    request: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    tokio::time::timeout(Duration::from_millis(budget_ms), request)
        .await
        .map_err(|_| ProviderError::Timeout)?
}

/// A non-success status: 429 and 5xx may pass (another provider, a later try), other
/// 4xx will not.
pub fn status_error(service: &str, status: StatusCode) -> ProviderError {
    let message = format!("{service}: HTTP {status}");
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        ProviderError::Unavailable(message)
    } else if status.is_client_error() {
        ProviderError::Refused(message)
    } else {
        ProviderError::Protocol(message)
    }
}

/// A request that failed on the way (connect, reset, body cut off).
pub fn transport_error(service: &str, e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout;
    }
    ProviderError::Unavailable(format!("{service}: {}", e.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_a_fallback_needs() {
        let kind = |code: u16| match status_error("x", StatusCode::from_u16(code).unwrap()) {
            ProviderError::Refused(_) => "refused",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Protocol(_) => "protocol",
            _ => "other",
        };
        assert_eq!(
            [400, 401, 403, 413, 429, 408, 500, 503, 302].map(kind),
            [
                "refused",
                "refused",
                "refused",
                "refused",
                "unavailable",
                "unavailable",
                "unavailable",
                "unavailable",
                "protocol"
            ]
        );
        let err = status_error("Deepgram", StatusCode::UNAUTHORIZED);
        assert_eq!(
            err.to_string(),
            "provider refused: Deepgram: HTTP 401 Unauthorized"
        );
    }

    #[test]
    fn keys_headers_and_urls_are_checked() {
        let key = api_key(&Secret::new("k1"), "VOICE_TEST_UNSET_KEY_VAR", "x.api_key");
        assert_eq!(key.unwrap().expose(), "k1");
        let err = api_key(&Secret::default(), "VOICE_TEST_UNSET_KEY_VAR", "x.api_key");
        assert!(matches!(err, Err(ProviderError::Config(m)) if m.contains("x.api_key")));
        assert!(auth_header("Token k").unwrap().is_sensitive());
        let err = auth_header("Token sk\nsecret").unwrap_err();
        assert!(matches!(&err, ProviderError::Config(m) if !m.contains("secret")));
        assert!(require_http_url("http://127.0.0.1:1/v1").is_ok());
        assert!(require_http_url("wss://x").is_err());
    }

    #[tokio::test]
    async fn a_request_past_its_budget_is_a_timeout() {
        let slow = within(1, std::future::pending::<Result<(), ProviderError>>());
        assert_eq!(slow.await, Err(ProviderError::Timeout));
    }
}
