//! One text piece rendered: the POST, its status, and the body's bytes passed on as they
//! arrive. Runs in its own task so the next piece can be asked for while this one still
//! streams; dropping the [`InFlight`] aborts it and so closes its connection.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::OpenAiSpeechConfig;
use crate::config::Secret;
use crate::providers::ProviderError;

/// Body chunks read ahead of the consumer (a pipelined piece waits here).
const CHUNKS_AHEAD: usize = 32;
/// Most of an error body read.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// Longest service message kept in an error.
const MAX_MESSAGE: usize = 200;

/// What a request task reports, in order.
#[derive(Debug)]
pub enum Chunk {
    /// The next bytes of PCM16 (a chunk may end in the middle of a sample).
    Audio(Bytes),
    /// The body is complete.
    End,
    Failed(ProviderError),
}

/// A piece being rendered.
pub struct InFlight {
    pub chunks: mpsc::Receiver<Chunk>,
    task: JoinHandle<()>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What every request needs.
pub struct Target {
    pub http: reqwest::Client,
    pub cfg: OpenAiSpeechConfig,
    pub key: Secret,
}

/// Starts rendering `text`.
pub fn start(target: std::sync::Arc<Target>, text: String) -> InFlight {
    let (tx, chunks) = mpsc::channel(CHUNKS_AHEAD);
    let task = tokio::spawn(async move {
        let last = match fetch(&target, &text, &tx).await {
            Ok(()) => Chunk::End,
            Err(e) => Chunk::Failed(e),
        };
        let _ = tx.send(last).await;
    });
    InFlight { chunks, task }
}

/// The JSON body for `text` (providers.md §6.2): raw 24 kHz PCM16 back.
pub fn body(cfg: &OpenAiSpeechConfig, text: &str) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(cfg.model));
    body.insert("input".into(), json!(text));
    body.insert("voice".into(), json!(cfg.voice));
    body.insert("response_format".into(), json!("pcm"));
    body.insert("speed".into(), json!(cfg.speed));
    if !cfg.instructions.is_empty() && cfg.takes_instructions() {
        body.insert("instructions".into(), json!(cfg.instructions));
    }
    Value::Object(body)
}

async fn fetch(target: &Target, text: &str, tx: &mpsc::Sender<Chunk>) -> Result<(), ProviderError> {
    let timeout = Duration::from_millis(target.cfg.timeout_ms);
    let send = target
        .http
        .post(&target.cfg.url)
        .bearer_auth(target.key.expose())
        .json(&body(&target.cfg, text))
        .send();
    let mut response = tokio::time::timeout(timeout, send)
        .await
        .map_err(|_| ProviderError::Timeout)?
        .map_err(network_error)?;
    let status = response.status();
    if !status.is_success() {
        let body = error_body(&mut response, timeout).await;
        return Err(status_error(status, &body, &target.key));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/") {
        return Err(ProviderError::Protocol(format!(
            "OpenAI speech answered {content_type:?} instead of audio"
        )));
    }
    let mut any = false;
    loop {
        let chunk = tokio::time::timeout(timeout, response.chunk())
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(|e| {
                ProviderError::Unavailable(format!("OpenAI speech body broke off: {}", chain(&e)))
            })?;
        match chunk {
            None if any => return Ok(()),
            None => {
                return Err(ProviderError::Protocol(
                    "OpenAI speech sent no audio for the text".into(),
                ))
            }
            Some(bytes) if bytes.is_empty() => {}
            Some(bytes) => {
                any = true;
                if tx.send(Chunk::Audio(bytes)).await.is_err() {
                    return Ok(()); // nobody listens any more
                }
            }
        }
    }
}

/// Up to `MAX_ERROR_BODY` of an error response, within `timeout` (best effort).
async fn error_body(response: &mut reqwest::Response, timeout: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = tokio::time::timeout(timeout, async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    })
    .await;
    body.truncate(MAX_ERROR_BODY);
    body
}

/// An HTTP failure as a [`ProviderError`], with OpenAI's `error.code` and message (keys
/// taken out: OpenAI's 401 quotes part of the key it got).
pub fn status_error(status: StatusCode, body: &[u8], key: &Secret) -> ProviderError {
    let error = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned())
        .unwrap_or(Value::Null);
    let field = |name: &str| error.get(name).and_then(Value::as_str).unwrap_or("");
    let code = field("code");
    let code = if code.is_empty() { field("type") } else { code };
    let message = redact(field("message"), key);
    let mut what = format!("OpenAI speech: HTTP {status}");
    for part in [code, message.as_str()] {
        if !part.is_empty() {
            what.push_str(": ");
            what.push_str(part);
        }
    }
    match status.as_u16() {
        // Out of credit is not cured by waiting.
        429 if code == "insufficient_quota" => ProviderError::Refused(what),
        429 | 500..=599 => ProviderError::Unavailable(what),
        400..=499 => ProviderError::Refused(what),
        _ => ProviderError::Protocol(what),
    }
}

/// `message` without the key or anything that looks like one, cut short.
fn redact(message: &str, key: &Secret) -> String {
    let mut out: Vec<&str> = Vec::new();
    for word in message.split(' ') {
        let keyish = word.contains("sk-") || (!key.is_empty() && word.contains(key.expose()));
        out.push(if keyish { "***" } else { word });
    }
    let joined = out.join(" ");
    let mut end = joined.len().min(MAX_MESSAGE);
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    joined[..end].to_string()
}

fn network_error(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout;
    }
    if e.is_builder() {
        return ProviderError::Config(format!("openai_speech: {}", chain(&e)));
    }
    ProviderError::Unavailable(format!("cannot reach OpenAI speech: {}", chain(&e)))
}

/// The error and its causes in one line, without the URL.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_follows_the_reference() {
        let cfg = OpenAiSpeechConfig {
            instructions: "Fale de forma calorosa".into(),
            ..Default::default()
        };
        assert_eq!(
            body(&cfg, "Olá!"),
            json!({"model": "gpt-4o-mini-tts", "input": "Olá!", "voice": "marin",
                   "response_format": "pcm", "speed": 1.0,
                   "instructions": "Fale de forma calorosa"})
        );
        let tts1 = OpenAiSpeechConfig {
            model: "tts-1".into(),
            ..cfg
        };
        assert!(body(&tts1, "x").get("instructions").is_none());
    }

    #[test]
    fn statuses_map_to_errors_without_the_key() {
        let key = Secret::new("sk-proj-abcdef123456");
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-proj-***3456. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let e = status_error(StatusCode::UNAUTHORIZED, body, &key);
        let ProviderError::Refused(m) = &e else {
            panic!("{e}")
        };
        assert!(m.starts_with("OpenAI speech: HTTP 401 Unauthorized: invalid_api_key: Incorrect API key provided: ***"), "{m}");
        assert!(!m.contains("sk-") && !m.contains("3456"), "{m}");
        assert!(m.len() < 300);
        let e = status_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            b"<html>oops</html>",
            &key,
        );
        assert_eq!(
            e,
            ProviderError::Unavailable("OpenAI speech: HTTP 500 Internal Server Error".into())
        );
        let quota = br#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#;
        assert!(matches!(
            status_error(StatusCode::TOO_MANY_REQUESTS, quota, &key),
            ProviderError::Refused(_)
        ));
        let slow = br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#;
        assert!(matches!(
            status_error(StatusCode::TOO_MANY_REQUESTS, slow, &key),
            ProviderError::Unavailable(_)
        ));
        let echoed = format!(r#"{{"error":{{"message":"bad key {}"}}}}"#, key.expose());
        let e = status_error(
            StatusCode::FORBIDDEN,
            echoed.as_bytes(),
            &Secret::new("plainkey"),
        );
        assert!(!e.to_string().contains("abcdef"), "{e}");
        assert!(matches!(
            status_error(StatusCode::FOUND, b"", &key),
            ProviderError::Protocol(_)
        ));
    }
}
