//! `GET {api_base}/v1/convai/conversation/get_signed_url?agent_id=…` (providers.md §3.2):
//! private agents are reached through a one-use signed WebSocket URL.
//!
//! The signed URL carries a token: it is never logged, and errors mention only statuses.

use serde::Deserialize;

use crate::agent::AgentError;
use crate::config::Secret;

const PATH: &str = "/v1/convai/conversation/get_signed_url";

#[derive(Deserialize)]
struct SignedUrl {
    signed_url: String,
}

/// The request URL (no secret in it: the key goes in a header).
pub fn request_url(api_base: &str, agent_id: &str) -> String {
    format!(
        "{}{PATH}?agent_id={agent_id}",
        api_base.trim_end_matches('/')
    )
}

pub async fn fetch(
    http: &reqwest::Client,
    api_base: &str,
    agent_id: &str,
    key: &Secret,
) -> Result<String, AgentError> {
    let mut key_header = reqwest::header::HeaderValue::from_str(key.expose()).map_err(|_| {
        AgentError::Config("API key contains characters not allowed in a header".into())
    })?;
    key_header.set_sensitive(true);
    let response = http
        .get(request_url(api_base, agent_id))
        .header("xi-api-key", key_header)
        .send()
        .await
        .map_err(|e| {
            AgentError::Refused(format!("cannot reach get_signed_url: {}", e.without_url()))
        })?;
    let status = response.status();
    if !status.is_success() {
        // Only the status: bodies can echo request details.
        return Err(match status.as_u16() {
            400 | 404 | 422 => AgentError::Config(format!(
                "get_signed_url rejected agent_id {agent_id:?}: HTTP {status}"
            )),
            _ => AgentError::Refused(format!("get_signed_url: HTTP {status}")),
        });
    }
    let body: SignedUrl = response.json().await.map_err(|e| {
        AgentError::Protocol(format!(
            "get_signed_url answer is not {{\"signed_url\": …}}: {}",
            e.without_url()
        ))
    })?;
    if !(body.signed_url.starts_with("wss://") || body.signed_url.starts_with("ws://")) {
        return Err(AgentError::Protocol(
            "get_signed_url returned a URL that is not ws:// or wss://".into(),
        ));
    }
    Ok(body.signed_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_url_joins_base_and_agent() {
        assert_eq!(
            request_url("https://api.elevenlabs.io/", "agent_1"),
            "https://api.elevenlabs.io/v1/convai/conversation/get_signed_url?agent_id=agent_1"
        );
    }
}
