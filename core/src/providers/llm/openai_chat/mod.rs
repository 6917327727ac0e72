//! OpenAI-compatible Chat Completions streaming (OpenAI, Groq, Ollama) as a [`ChatModel`].
//!
//! Wire facts: /work/shared/reference/providers.md §5.1. The three services differ only
//! in settings ([`OpenAiChatConfig::groq`], [`OpenAiChatConfig::ollama`]): URL, model,
//! where the key comes from (Ollama needs none) and the name in logs. `request.rs` builds
//! the body, `chunks.rs` reads the answer; the HTTP and SSE plumbing is shared with the
//! Anthropic client (`llm::http_stream`, `llm::sse`).

mod chunks;
mod config;
mod request;

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use tokio::sync::mpsc;

pub use config::{ChatFlavor, OpenAiChatConfig};

use super::http_stream::{self, Post, Timeouts};
use super::{ChatEvent, ChatModel, ChatRequest};
use crate::providers::ProviderError;

/// A streaming chat client for one OpenAI-compatible endpoint; cheap to share.
pub struct OpenAiChat {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: OpenAiChatConfig,
    /// Built on the first request and reused (connection pool, TLS roots).
    http: OnceLock<reqwest::Client>,
}

impl OpenAiChat {
    pub fn new(cfg: OpenAiChatConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                http: OnceLock::new(),
            }),
        }
    }
}

impl ChatModel for OpenAiChat {
    fn name(&self) -> &'static str {
        self.inner.cfg.name()
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
            let parser = chunks::ChunkParser::new(cfg.name(), post.key.clone());
            let http = http_stream::http_client(&inner.http)?;
            http_stream::start(http, post, timeouts, parser).await
        })
    }
}

/// The request to send, checked: URL, model, key (none only for Ollama), body.
fn prepare(cfg: &OpenAiChatConfig, request: &ChatRequest) -> Result<Post, ProviderError> {
    http_stream::check_url(&cfg.url)?;
    if cfg.model.trim().is_empty() {
        return Err(ProviderError::Config(format!(
            "{}: no model set",
            cfg.name()
        )));
    }
    let key = http_stream::resolve_key(&cfg.api_key, &cfg.api_key_env);
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    match &key {
        Some(k) => {
            let auth = http_stream::secret_header(&format!("Bearer {}", k.expose()))?;
            headers.insert(AUTHORIZATION, auth);
        }
        None if cfg.flavor == ChatFlavor::Ollama => {}
        None => {
            return Err(ProviderError::Config(format!(
                "no API key for {}: set api_key or {}",
                cfg.name(),
                if cfg.api_key_env.is_empty() {
                    "api_key_env"
                } else {
                    &cfg.api_key_env
                }
            )))
        }
    }
    let body = request::body(cfg, request)?;
    Ok(Post {
        provider: cfg.name(),
        url: cfg.url.clone(),
        headers,
        body: body.to_string().into_bytes(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn keys_urls_and_models_are_checked_before_sending() {
        let keyless = OpenAiChatConfig {
            api_key_env: String::new(),
            ..Default::default()
        };
        let err = prepare(&keyless, &ChatRequest::default()).err().unwrap();
        assert!(matches!(err, ProviderError::Config(_)), "{err}");
        let ollama = prepare(&OpenAiChatConfig::ollama(), &ChatRequest::default()).unwrap();
        assert!(ollama.headers.get(AUTHORIZATION).is_none());
        assert_eq!(ollama.provider, "ollama");
        let keyed = OpenAiChatConfig {
            api_key: Secret::new("sk-test"),
            ..Default::default()
        };
        let post = prepare(&keyed, &ChatRequest::default()).unwrap();
        assert_eq!(post.headers[AUTHORIZATION], "Bearer sk-test");
        assert!(post.headers[AUTHORIZATION].is_sensitive());
        for bad in [
            OpenAiChatConfig {
                url: "ws://x".into(),
                ..keyed.clone()
            },
            OpenAiChatConfig {
                model: " ".into(),
                ..keyed.clone()
            },
            OpenAiChatConfig {
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
        assert_eq!(OpenAiChat::new(OpenAiChatConfig::groq()).name(), "groq");
    }
}
