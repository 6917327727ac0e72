//! Opening a Realtime session: upgrade, `session.created`, `session.update`, `session.updated`.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::client_events::{session_update, ClientEvent};
use super::config::{OpenAiRealtimeConfig, Protocol};
use super::server_events::ServerEvent;
use super::wire_audio::WireAudio;
use crate::agent::{AgentError, AgentPersona, Role};
use crate::config::Secret;
use crate::providers::ws_connect::{self, require_ws_url, secret_header, Ws};

/// A socket whose session is configured and ready for audio, all within the connect budget.
pub async fn open(
    cfg: &OpenAiRealtimeConfig,
    persona: &AgentPersona,
    wire: WireAudio,
    history: &[(Role, String)],
) -> Result<Ws, AgentError> {
    let key = api_key(cfg)?;
    let request = build_request(cfg, &key)?;
    ws_connect::within(cfg.connect_timeout_ms, async {
        let mut ws = ws_connect::upgrade(request).await?;
        wait_for(&mut ws, "session.created").await?;
        let update = ClientEvent::SessionUpdate {
            session: session_update(cfg, persona, wire),
        };
        ws.send(Message::text(update.to_json()))
            .await
            .map_err(|e| AgentError::Protocol(format!("sending session.update: {e}")))?;
        wait_for(&mut ws, "session.updated").await?;
        // After a reconnect: the conversation so far, so the model goes on from there. A
        // caller whose last words were not answered yet is answered at once.
        let mut lines: Vec<ClientEvent> = history
            .iter()
            .map(|(role, text)| ClientEvent::history_line(*role, text.as_str(), cfg.protocol))
            .collect();
        if history
            .last()
            .is_some_and(|(role, _)| *role == Role::Caller)
        {
            lines.push(ClientEvent::ResponseCreate {});
        }
        if let (true, Some(instructions)) = (history.is_empty(), persona.greeting_instruction()) {
            lines.push(ClientEvent::ResponseCreateWith {
                response: serde_json::json!({ "instructions": instructions }),
            });
        }
        for line in lines {
            ws.send(Message::text(line.to_json()))
                .await
                .map_err(|e| AgentError::Protocol(format!("sending history: {e}")))?;
        }
        Ok(ws)
    })
    .await
}

/// The configured key, else `OPENAI_API_KEY`.
fn api_key(cfg: &OpenAiRealtimeConfig) -> Result<Secret, AgentError> {
    if !cfg.api_key.is_empty() {
        return Ok(cfg.api_key.clone());
    }
    match std::env::var("OPENAI_API_KEY") {
        Ok(k) if !k.trim().is_empty() => Ok(Secret::new(k.trim())),
        _ => Err(AgentError::Config(
            "no OpenAI API key: set providers.openai_realtime.api_key or OPENAI_API_KEY".into(),
        )),
    }
}

fn build_request(
    cfg: &OpenAiRealtimeConfig,
    key: &Secret,
) -> Result<http::Request<()>, AgentError> {
    let model_ok = !cfg.model.is_empty()
        && cfg
            .model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !model_ok {
        return Err(AgentError::Config(format!(
            "invalid model name {:?}",
            cfg.model
        )));
    }
    require_ws_url(&cfg.url)?;
    let sep = if cfg.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}model={}", cfg.url, cfg.model);
    let mut request = url
        .into_client_request()
        .map_err(|e| AgentError::Config(format!("invalid url {:?}: {e}", cfg.url)))?;
    let auth = secret_header(&format!("Bearer {}", key.expose()))?;
    let headers = request.headers_mut();
    headers.insert(http::header::AUTHORIZATION, auth);
    if cfg.protocol == Protocol::Beta {
        headers.insert("OpenAI-Beta", HeaderValue::from_static("realtime=v1"));
    }
    Ok(request)
}

/// Reads until the event `wanted`; an `error` event or a closed socket fails the set-up.
async fn wait_for(ws: &mut Ws, wanted: &str) -> Result<(), AgentError> {
    while let Some(msg) = ws.next().await {
        let msg = msg.map_err(|e| AgentError::Protocol(format!("waiting for {wanted}: {e}")))?;
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => {
                return Err(AgentError::Protocol(format!(
                    "closed while waiting for {wanted}: {frame:?}"
                )))
            }
            _ => continue,
        };
        match ServerEvent::parse(&text) {
            Ok(ServerEvent::Error { error }) => {
                return Err(AgentError::Protocol(format!("set-up rejected: {error}")))
            }
            Ok(ServerEvent::SessionCreated {}) if wanted == "session.created" => return Ok(()),
            Ok(ServerEvent::SessionUpdated {}) if wanted == "session.updated" => return Ok(()),
            Ok(other) => debug!(?other, wanted, "event ignored during set-up"),
            Err(e) => debug!(error = %e, wanted, "unparseable event during set-up"),
        }
    }
    Err(AgentError::Protocol(format!(
        "connection ended while waiting for {wanted}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::assert_config_errors_hiding;

    #[test]
    fn request_carries_model_auth_and_beta_header() {
        let cfg = OpenAiRealtimeConfig {
            url: "ws://127.0.0.1:1/v1/realtime".into(),
            protocol: Protocol::Beta,
            ..Default::default()
        };
        let req = build_request(&cfg, &Secret::new("sk-test")).unwrap();
        assert_eq!(req.uri().query(), Some("model=gpt-realtime"));
        assert_eq!(req.headers()["authorization"], "Bearer sk-test");
        assert_eq!(req.headers()["openai-beta"], "realtime=v1");
        let ga = OpenAiRealtimeConfig::default();
        let req = build_request(&ga, &Secret::new("k")).unwrap();
        assert!(req.headers().get("openai-beta").is_none());
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let bad_model = OpenAiRealtimeConfig {
            model: "a b&c".into(),
            ..Default::default()
        };
        let bad_url = OpenAiRealtimeConfig {
            url: "https://api.openai.com".into(),
            ..Default::default()
        };
        let results = [
            build_request(&bad_model, &Secret::new("k")),
            build_request(&bad_url, &Secret::new("k")),
            build_request(&Default::default(), &Secret::new("sk\nx")),
        ];
        assert_config_errors_hiding(results, "sk");
    }
}
