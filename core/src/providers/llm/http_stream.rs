//! POSTing a chat request and turning its event stream into [`ChatEvent`]s on a channel.
//! Shared by the OpenAI-compatible and Anthropic clients, which differ only in headers,
//! body and how they read each event ([`EventParser`]).
//!
//! One task per answer reads the body. It stops as soon as the receiver is dropped
//! (barge-in): dropping the response closes the connection, so the provider stops
//! generating. After a normal end it reads what is left (usage, `[DONE]`) for a moment so
//! the connection goes back to the pool and the next turn skips the TLS handshake.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::sse::{SseDecoder, SseEvent};
use super::ChatEvent;
use crate::config::Secret;
use crate::providers::ProviderError;

/// Events buffered between the reading task and the consumer.
const CHANNEL: usize = 64;
/// Most of an error body read (for its `error.type` / `error.message`).
const MAX_ERROR_BODY: usize = 16 * 1024;
/// How long reading an error body may take.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// Reading the rest of a finished stream, for connection reuse.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_DRAIN: usize = 64 * 1024;
/// Longest provider message kept in an error.
const MAX_MESSAGE: usize = 200;

/// How one provider reads its events.
pub(crate) trait EventParser: Send + 'static {
    /// Reads one event, pushing what it means onto `out`. After a `Done` or `Error` the
    /// parser is not called again.
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<ChatEvent>);
    /// The body ended: pushes what is still owed, which must end with `Done` or `Error`.
    fn on_end(&mut self, out: &mut Vec<ChatEvent>);
    /// Some of the answer (text or a tool-call fragment) has arrived.
    fn answering(&self) -> bool;
}

/// Deadlines of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Until the HTTP status is known.
    pub connect: Duration,
    /// From sending the request until the first piece of the answer.
    pub first_token: Duration,
    /// Longest silence between body chunks once the answer flows.
    pub idle: Duration,
}

impl Timeouts {
    pub fn from_ms(connect: u64, first_token: u64, idle: u64) -> Result<Self, ProviderError> {
        if connect == 0 || first_token == 0 || idle == 0 {
            return Err(ProviderError::Config(
                "connect_timeout_ms, first_token_timeout_ms and idle_timeout_ms must be positive"
                    .into(),
            ));
        }
        Ok(Self {
            connect: Duration::from_millis(connect),
            first_token: Duration::from_millis(first_token),
            idle: Duration::from_millis(idle),
        })
    }
}

/// One request to send.
pub(crate) struct Post {
    /// `openai_chat`, `anthropic`, …: names the provider in errors.
    pub provider: &'static str,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Scrubbed from any provider message quoted in an error.
    pub key: Option<Secret>,
}

/// The HTTP client kept in `cell`, built on first use (its pool keeps connections warm
/// between turns). No redirects: a POST must not turn into a GET elsewhere.
pub(crate) fn http_client(
    cell: &OnceLock<reqwest::Client>,
) -> Result<reqwest::Client, ProviderError> {
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProviderError::Config(format!("cannot build the HTTP client: {e}")))?;
    Ok(cell.get_or_init(|| client).clone())
}

/// The configured key, else the one in the environment variable `env` (none when `env`
/// is empty or unset).
pub(crate) fn resolve_key(configured: &Secret, env: &str) -> Option<Secret> {
    if !configured.is_empty() {
        return Some(configured.clone());
    }
    if env.is_empty() {
        return None;
    }
    match std::env::var(env) {
        Ok(k) if !k.trim().is_empty() => Some(Secret::new(k.trim())),
        _ => None,
    }
}

/// A header carrying a secret: marked sensitive, and the error never shows it.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::Config("API key contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// `url` must be http(s).
pub(crate) fn check_url(url: &str) -> Result<(), ProviderError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(ProviderError::Config(format!(
            "url {url:?} is not an http(s) URL"
        ))),
    }
}

/// Sends `post`; once the provider accepted it (2xx, an event stream), the answer streams
/// into the returned receiver.
pub(crate) async fn start<P: EventParser>(
    http: reqwest::Client,
    post: Post,
    timeouts: Timeouts,
    parser: P,
) -> Result<mpsc::Receiver<ChatEvent>, ProviderError> {
    let started = Instant::now();
    let provider = post.provider;
    let request = http
        .post(&post.url)
        .headers(post.headers)
        .header(CONTENT_TYPE, "application/json")
        .body(post.body)
        .send();
    let response = match tokio::time::timeout(timeouts.connect, request).await {
        Err(_) => return Err(ProviderError::Timeout),
        Ok(Err(e)) => {
            return Err(ProviderError::Unavailable(format!(
                "cannot reach {provider}: {}",
                e.without_url()
            )))
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        return Err(refusal(response, provider, post.key.as_ref()).await);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/event-stream") {
        return Err(ProviderError::Protocol(format!(
            "{provider} answered {content_type:?}, not an event stream"
        )));
    }
    let (tx, rx) = mpsc::channel(CHANNEL);
    let first_token_at = started + timeouts.first_token;
    tokio::spawn(pump(response, parser, tx, first_token_at, timeouts.idle));
    Ok(rx)
}

/// The error for a non-2xx answer: its status, and the provider's `error.type` (and, but
/// for auth failures, which can echo part of the key, its message).
async fn refusal(
    mut response: reqwest::Response,
    provider: &str,
    key: Option<&Secret>,
) -> ProviderError {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    })
    .await;
    let (kind, message) = error_fields(&serde_json::from_slice(&body).unwrap_or(Value::Null));
    let mut text = format!("{provider}: HTTP {status}");
    if let Some(kind) = kind {
        text.push_str(&format!(" {kind}"));
    }
    if let (Some(message), false) = (message, matches!(status, 401 | 403)) {
        text.push_str(&format!(": {}", scrub(&message, key)));
    }
    match status {
        408 | 429 | 500..=599 => ProviderError::Unavailable(text),
        _ => ProviderError::Refused(text),
    }
}

/// `error.type` (with OpenAI's `error.code`) and `error.message` of an OpenAI- or
/// Anthropic-style error body.
pub(crate) fn error_fields(body: &Value) -> (Option<String>, Option<String>) {
    let error = &body["error"];
    let field = |name: &str| {
        error[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|s| cut(s, 60))
    };
    // OpenAI's `code` is the precise one (`invalid_api_key`, `model_not_found`).
    let kind = match (field("type"), field("code")) {
        (Some(t), Some(c)) if t != c => Some(format!("{t} ({c})")),
        (t, c) => t.or(c),
    };
    let message = error["message"]
        .as_str()
        .or_else(|| error.as_str())
        .map(|s| cut(s, MAX_MESSAGE));
    (kind, message)
}

/// An error the provider sent inside the stream: bad requests are refusals, the rest
/// (overloaded, server errors, rate limits) are worth a retry elsewhere.
pub(crate) fn stream_error(provider: &str, body: &Value, key: Option<&Secret>) -> ProviderError {
    let (kind, message) = error_fields(body);
    let kind = kind.unwrap_or_else(|| "error".into());
    let text = match message {
        Some(m) => format!("{provider} {kind}: {}", scrub(&m, key)),
        None => format!("{provider} {kind}"),
    };
    let refused = [
        "invalid_request",
        "authentication",
        "permission",
        "not_found",
        "too_large",
        "invalid_api_key",
    ]
    .iter()
    .any(|k| kind.contains(k));
    if refused {
        ProviderError::Refused(text)
    } else {
        ProviderError::Unavailable(text)
    }
}

/// `message` without the key in it.
fn scrub(message: &str, key: Option<&Secret>) -> String {
    match key {
        Some(k) if k.expose().len() >= 4 => message.replace(k.expose(), "***"),
        _ => message.to_string(),
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Reads the body into events until the answer ends, the stream breaks, a deadline
/// passes or the receiver goes away.
async fn pump<P: EventParser>(
    mut response: reqwest::Response,
    mut parser: P,
    tx: mpsc::Sender<ChatEvent>,
    first_token_at: Instant,
    idle: Duration,
) {
    let mut decoder = SseDecoder::default();
    let mut out = Vec::new();
    loop {
        let deadline = if parser.answering() {
            Instant::now() + idle
        } else {
            first_token_at
        };
        let read = tokio::select! {
            _ = tx.closed() => {
                debug!("chat answer dropped by its receiver: request aborted");
                return;
            }
            read = tokio::time::timeout_at(deadline, response.chunk()) => read,
        };
        match read {
            Err(_) => out.push(ChatEvent::Error(ProviderError::Timeout)),
            Ok(Err(e)) => out.push(ChatEvent::Error(ProviderError::Unavailable(format!(
                "stream broke: {}",
                e.without_url()
            )))),
            Ok(Ok(Some(bytes))) => match decoder.push(&bytes) {
                Ok(events) => feed(&mut parser, events, &mut out),
                Err(e) => out.push(ChatEvent::Error(e)),
            },
            Ok(Ok(None)) => {
                match decoder.finish() {
                    Ok(last) => feed(&mut parser, last.into_iter().collect(), &mut out),
                    Err(e) => out.push(ChatEvent::Error(e)),
                }
                if !ends(&out) {
                    parser.on_end(&mut out);
                }
                if !ends(&out) {
                    out.push(early_end());
                }
            }
        }
        for event in out.drain(..) {
            let done = matches!(event, ChatEvent::Done(_));
            let end = done || matches!(event, ChatEvent::Error(_));
            if tx.send(event).await.is_err() {
                return;
            }
            if end {
                // The receiver sees the channel close right after the end.
                drop(tx);
                if done {
                    drain(response).await;
                }
                return;
            }
        }
    }
}

/// Feeds `events` to the parser until one ends the answer (the rest is ignored).
fn feed<P: EventParser>(parser: &mut P, events: Vec<SseEvent>, out: &mut Vec<ChatEvent>) {
    for event in events {
        if ends(out) {
            return;
        }
        parser.on_event(event, out);
    }
}

/// `out` holds the answer's last event.
fn ends(out: &[ChatEvent]) -> bool {
    out.iter()
        .any(|e| matches!(e, ChatEvent::Done(_) | ChatEvent::Error(_)))
}

/// The body ended before the answer did.
pub(crate) fn early_end() -> ChatEvent {
    ChatEvent::Error(ProviderError::Unavailable("stream ended early".into()))
}

/// Reads (and drops) what is left of a finished answer, briefly.
async fn drain(mut response: reqwest::Response) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > MAX_DRAIN {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stream_errors_are_classified_and_scrubbed() {
        let key = Secret::new("sk-secret-123");
        let overloaded = json!({"type": "error", "error": {"type": "overloaded_error",
            "message": "Overloaded"}});
        assert_eq!(
            stream_error("anthropic", &overloaded, None),
            ProviderError::Unavailable("anthropic overloaded_error: Overloaded".into())
        );
        let bad =
            json!({"error": {"message": "bad key sk-secret-123", "type": "invalid_request_error"}});
        let err = stream_error("openai_chat", &bad, Some(&key));
        assert!(
            matches!(&err, ProviderError::Refused(m) if !m.contains("sk-secret")),
            "{err}"
        );
        let bare = json!({"error": "boom"});
        assert_eq!(
            stream_error("ollama", &bare, None),
            ProviderError::Unavailable("ollama error: boom".into())
        );
    }

    #[test]
    fn keys_come_from_config_then_env_and_urls_must_be_http() {
        assert_eq!(
            resolve_key(&Secret::new("k1"), "PATH"),
            Some(Secret::new("k1"))
        );
        assert_eq!(resolve_key(&Secret::default(), ""), None);
        assert_eq!(
            resolve_key(&Secret::default(), "VOICE_TEST_SURELY_UNSET_KEY"),
            None
        );
        assert!(check_url("https://api.openai.com/v1/chat/completions").is_ok());
        assert!(check_url("http://127.0.0.1:1/v1/messages").is_ok());
        for bad in ["ws://x/y", "api.openai.com", ""] {
            assert!(matches!(check_url(bad), Err(ProviderError::Config(_))));
        }
        assert!(matches!(
            secret_header("Bearer a\nb"),
            Err(ProviderError::Config(m)) if !m.contains("a\nb")
        ));
        assert!(Timeouts::from_ms(1, 1, 0).is_err());
    }

    #[test]
    fn long_messages_are_cut_at_characters() {
        let s = "é".repeat(300);
        let c = cut(&s, MAX_MESSAGE);
        assert!(c.len() <= MAX_MESSAGE && s.starts_with(&c));
    }
}
