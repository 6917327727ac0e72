//! A real call-insights on a real port, against a fresh migrated database (ScratchDb), with a
//! platform token and (optionally) a credentials key.

#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine;
use call_insights::config::InsightsConfig;
use call_insights::state::{AppState, PlatformToken};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use voice_core::config::Secret;
use voice_core::db::scratch::ScratchDb;
use voice_core::tenancy::crypto::CredentialKey;

pub const PLATFORM_TOKEN: &str = "platform-token-for-tests-0123456789";

pub struct Stack {
    pub scratch: ScratchDb,
    pub state: Arc<AppState>,
    pub base: String,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An answer: status, headers and the JSON body (`Null` when empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

pub fn test_key() -> CredentialKey {
    CredentialKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([42u8; 32]))
        .unwrap()
}

impl Stack {
    /// With a credentials key and the default settings.
    pub async fn start() -> Self {
        Self::start_with("", Some(test_key())).await
    }

    /// `toml`: settings over the default.
    pub async fn start_with(toml: &str, key: Option<CredentialKey>) -> Self {
        Self::start_config(InsightsConfig::from_toml(toml).unwrap(), key).await
    }

    /// With `config` as it is (for what only the environment sets, such as secrets).
    pub async fn start_config(config: InsightsConfig, key: Option<CredentialKey>) -> Self {
        let scratch = ScratchDb::create(8)
            .await
            .expect("a scratch database (is PostgreSQL running?)");
        let platform = PlatformToken::new(&Secret::new(PLATFORM_TOKEN)).unwrap();
        let state = AppState::new(config, scratch.db.clone(), key, platform);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server_state = state.clone();
        let server = tokio::spawn(async move {
            let _ =
                call_insights::http::serve(listener, server_state, std::future::pending()).await;
        });
        Self {
            scratch,
            state,
            base,
            client: reqwest::Client::new(),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with `Authorization: Bearer <token>` (none when `token` is empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, token, None).await
    }

    /// A tenant made with the platform token; returns its id.
    pub async fn tenant(&self, domain: &str) -> String {
        let a = self
            .post(
                "/v1/tenants",
                PLATFORM_TOKEN,
                &json!({"domain_uuid": uuid::Uuid::new_v4(), "domain_name": domain}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["id"].as_str().unwrap().to_string()
    }

    /// A key of `role` in `tenant`, made with the platform token; returns its text.
    pub async fn key(&self, tenant: &str, role: &str) -> String {
        let a = self
            .post(
                &format!("/v1/tenants/{tenant}/api-keys"),
                PLATFORM_TOKEN,
                &json!({"name": format!("{role} key"), "role": role}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["key"].as_str().unwrap().to_string()
    }
}
