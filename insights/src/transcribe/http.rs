//! What the provider clients share: one failure type that says whether another try may
//! succeed, and a response body read with a size cap.

use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use voice_core::config::Secret;

/// Largest provider answer read; a bigger one is a provider failure.
pub const MAX_RESPONSE_BYTES: usize = 20 * 1024 * 1024;

/// Why one provider did not transcribe. Messages never carry keys or response bodies.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Timeout, 5xx, 429, network: a later try may work.
    Transient(String),
    /// Refused (4xx), malformed answer, unreadable audio: the same request will fail again.
    Permanent(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Transient(m) | Failure::Permanent(m) => m,
        }
    }
}

// voice-core's `providers::stt::rest` has these helpers but is private to that crate, so
// the few lines are repeated here.

/// The configured key, else the environment variable `env`; `None`: no key anywhere.
pub fn api_key(configured: &Secret, env: &str) -> Option<Secret> {
    if !configured.is_empty() {
        return Some(configured.clone());
    }
    match std::env::var(env) {
        Ok(k) if !k.trim().is_empty() => Some(Secret::new(k.trim())),
        _ => None,
    }
}

/// An `Authorization` value, marked sensitive so it never shows in debug output.
pub fn auth_header(value: &str) -> Result<HeaderValue, String> {
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| "API key contains characters not allowed in a header".to_string())?;
    header.set_sensitive(true);
    Ok(header)
}

/// A non-success status, without the body (OpenAI's 401 quotes the key).
fn status_failure(service: &str, status: StatusCode) -> Failure {
    let message = format!("{service}: HTTP {status}");
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        Failure::Transient(message)
    } else {
        Failure::Permanent(message)
    }
}

/// A request that failed on the way (connect, reset, timeout, body cut off).
fn transport_failure(service: &str, e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Transient(format!("{service}: no answer in time"));
    }
    Failure::Transient(format!("{service}: {}", e.without_url()))
}

/// Sends `request`, checks the status and reads at most [`MAX_RESPONSE_BYTES`].
pub async fn send(service: &str, request: reqwest::RequestBuilder) -> Result<Vec<u8>, Failure> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_failure(service, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(status_failure(service, status));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(Failure::Permanent(format!("{service}: answer over 20 MB")));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_failure(service, e))?;
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Failure::Permanent(format!("{service}: answer over 20 MB")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body as JSON of type `T`; a malformed one is this provider's failure.
pub fn json<T: serde::de::DeserializeOwned>(service: &str, body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| Failure::Permanent(format!("{service}: malformed answer: {e}")))
}
