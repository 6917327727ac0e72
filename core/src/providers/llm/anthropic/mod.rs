//! Anthropic Messages streaming as a [`ChatModel`].
//!
//! Wire facts: /work/shared/reference/providers.md §5.2. `request.rs` builds the body
//! (system apart, alternating roles, tool results as `tool_result` blocks), `events.rs`
//! reads the `event:`/`data:` stream; the HTTP and SSE plumbing is shared with the
//! OpenAI-compatible client (`llm::http_stream`, `llm::sse`).

mod config;
mod events;
mod request;

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use tokio::sync::mpsc;

pub use config::AnthropicConfig;

use super::http_stream::{self, Post, Timeouts};
use super::{ChatEvent, ChatModel, ChatRequest};
use crate::providers::ProviderError;

/// A streaming Anthropic chat client; cheap to share.
pub struct AnthropicChat {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: AnthropicConfig,
    /// Built on the first request and reused (connection pool, TLS roots).
    http: OnceLock<reqwest::Client>,
}

impl AnthropicChat {
    pub fn new(cfg: AnthropicConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                http: OnceLock::new(),
            }),
        }
    }
}

impl ChatModel for AnthropicChat {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn stream(
        &self,
        request: ChatRequest,
    ) -> BoxFuture<'static, Result<mpsc::Receiver<ChatEvent>, ProviderError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let cfg = &inner.cfg;
            let timeouts = Timeouts::from_ms(
                cfg.connect_timeout_ms,
                cfg.first_token_timeout_ms,
                cfg.idle_timeout_ms,
            )?;
            let post = prepare(cfg, &request)?;
            let parser = events::EventsParser::new(post.key.clone());
            let http = http_stream::http_client(&inner.http)?;
            http_stream::start(http, post, timeouts, parser).await
        })
    }
}

/// The request to send, checked: URL, model, key, version, body.
fn prepare(cfg: &AnthropicConfig, request: &ChatRequest) -> Result<Post, ProviderError> {
    http_stream::check_url(&cfg.url)?;
    if cfg.model.trim().is_empty() {
        return Err(ProviderError::Config("anthropic: no model set".into()));
    }
    let key = http_stream::resolve_key(&cfg.api_key, &cfg.api_key_env).ok_or_else(|| {
        ProviderError::Config(format!(
            "no Anthropic API key: set api_key or {}",
            if cfg.api_key_env.is_empty() {
                "api_key_env"
            } else {
                &cfg.api_key_env
            }
        ))
    })?;
    let version = HeaderValue::from_str(&cfg.anthropic_version)
        .ok()
        .filter(|_| !cfg.anthropic_version.is_empty())
        .ok_or_else(|| ProviderError::Config("invalid anthropic_version".into()))?;
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    headers.insert("x-api-key", http_stream::secret_header(key.expose())?);
    headers.insert("anthropic-version", version);
    let body = request::body(cfg, request)?;
    Ok(Post {
        provider: "anthropic",
        url: cfg.url.clone(),
        headers,
        body: body.to_string().into_bytes(),
        key: Some(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn headers_and_settings_are_checked_before_sending() {
        let keyed = AnthropicConfig {
            api_key: Secret::new("sk-ant-test"),
            ..Default::default()
        };
        let post = prepare(&keyed, &ChatRequest::default()).unwrap();
        assert_eq!(post.headers["x-api-key"], "sk-ant-test");
        assert!(post.headers["x-api-key"].is_sensitive());
        assert_eq!(post.headers["anthropic-version"], "2023-06-01");
        for bad in [
            AnthropicConfig {
                api_key_env: String::new(),
                ..Default::default()
            },
            AnthropicConfig {
                anthropic_version: String::new(),
                ..keyed.clone()
            },
            AnthropicConfig {
                url: "ftp://x".into(),
                ..keyed.clone()
            },
            AnthropicConfig {
                api_key: Secret::new("sk\nsecret"),
                ..keyed.clone()
            },
        ] {
            let err = prepare(&bad, &ChatRequest::default()).err().unwrap();
            assert!(
                matches!(&err, ProviderError::Config(m) if !m.contains("secret")),
                "{err}"
            );
        }
        assert_eq!(AnthropicChat::new(keyed).name(), "anthropic");
    }
}
