//! Opening a Gemini Live session: upgrade, `setup`, `setupComplete`, then the history.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::client_messages::{self, ClientMessage};
use super::config::GeminiLiveConfig;
use super::server_messages::ServerMessage;
use crate::agent::{AgentError, AgentPersona, Role};
use crate::config::Secret;
use crate::providers::ws_connect::{self, require_ws_url, secret_header, Ws};
use crate::providers::ws_session::close_reason;

/// A socket whose session is set up (and primed with `history`), all within the budget.
pub async fn open(
    cfg: &GeminiLiveConfig,
    persona: &AgentPersona,
    history: &[(Role, String)],
) -> Result<Ws, AgentError> {
    let key = api_key(cfg, |name| std::env::var(name).ok())?;
    let request = build_request(cfg, &key)?;
    let setup = ClientMessage::Setup(client_messages::setup(cfg, persona));
    let history = history_message(history).or_else(|| greeting_message(persona));
    ws_connect::within(cfg.connect_timeout_ms, async {
        let mut ws = ws_connect::upgrade(request).await?;
        send(&mut ws, &setup, "setup").await?;
        wait_for_setup_complete(&mut ws).await?;
        if let Some(history) = history {
            send(&mut ws, &history, "the history").await?;
        }
        Ok(ws)
    })
    .await
}

async fn send(ws: &mut Ws, msg: &ClientMessage, what: &str) -> Result<(), AgentError> {
    ws.send(Message::text(msg.to_json()))
        .await
        .map_err(|e| AgentError::Protocol(format!("sending {what}: {e}")))
}

/// A new conversation with a greeting: a user turn asking the model to say it.
fn greeting_message(persona: &AgentPersona) -> Option<ClientMessage> {
    Some(ClientMessage::Content {
        turns: vec![(Role::Caller, persona.greeting_instruction()?)],
        turn_complete: true,
    })
}

/// The conversation so far as one `clientContent`. It asks for an answer only when the
/// caller spoke last: they are waiting for one (the old session died before answering).
fn history_message(history: &[(Role, String)]) -> Option<ClientMessage> {
    let turns: Vec<(Role, String)> = history
        .iter()
        .filter(|(_, text)| !text.trim().is_empty())
        .cloned()
        .collect();
    let turn_complete = turns.last().is_some_and(|(role, _)| *role == Role::Caller);
    (!turns.is_empty()).then_some(ClientMessage::Content {
        turns,
        turn_complete,
    })
}

/// The configured key, else `GEMINI_API_KEY`, else `GOOGLE_API_KEY`.
fn api_key(
    cfg: &GeminiLiveConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Secret, AgentError> {
    if !cfg.api_key.is_empty() {
        return Ok(cfg.api_key.clone());
    }
    ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
        .iter()
        .find_map(|name| env(name).filter(|k| !k.trim().is_empty()))
        .map(|k| Secret::new(k.trim()))
        .ok_or_else(|| {
            AgentError::Config(
                "no Gemini API key: set providers.gemini_live.api_key, GEMINI_API_KEY or \
                 GOOGLE_API_KEY"
                    .into(),
            )
        })
}

fn build_request(cfg: &GeminiLiveConfig, key: &Secret) -> Result<http::Request<()>, AgentError> {
    let model = cfg.model_path();
    let model_ok = model.len() > "models/".len()
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if !model_ok {
        return Err(AgentError::Config(format!(
            "invalid model name {:?}",
            cfg.model
        )));
    }
    require_ws_url(&cfg.url)?;
    let mut request = cfg
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| AgentError::Config(format!("invalid url {:?}: {e}", cfg.url)))?;
    let header = secret_header(key.expose())?;
    request.headers_mut().insert("x-goog-api-key", header);
    Ok(request)
}

/// Reads until `setupComplete`; a close (Gemini closes on a bad setup, code 1007 with the
/// reason) fails the set-up. Other messages are skipped.
async fn wait_for_setup_complete(ws: &mut Ws) -> Result<(), AgentError> {
    while let Some(msg) = ws.next().await {
        let msg =
            msg.map_err(|e| AgentError::Protocol(format!("waiting for setupComplete: {e}")))?;
        let parsed = match &msg {
            Message::Text(t) => ServerMessage::parse(t.as_bytes()),
            Message::Binary(b) => ServerMessage::parse(b),
            Message::Close(frame) => {
                let why = close_reason(frame.as_ref());
                return Err(AgentError::Protocol(format!(
                    "closed while waiting for setupComplete: {why}"
                )));
            }
            _ => continue,
        };
        match parsed {
            Ok(m) if m.setup_complete.is_some() => return Ok(()),
            Ok(other) => debug!(?other, "message ignored during set-up"),
            Err(e) => debug!(error = %e, "unparseable message during set-up"),
        }
    }
    Err(AgentError::Protocol(
        "connection ended while waiting for setupComplete".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::assert_config_errors_hiding;

    #[test]
    fn request_carries_the_key_header_only() {
        let cfg = GeminiLiveConfig {
            url: "ws://127.0.0.1:1/ws/x".into(),
            ..Default::default()
        };
        let req = build_request(&cfg, &Secret::new("AIza-test")).unwrap();
        assert_eq!(req.headers()["x-goog-api-key"], "AIza-test");
        assert!(req.headers()["x-goog-api-key"].is_sensitive());
        assert_eq!(req.uri().query(), None, "the key is not put in the url");
        assert!(build_request(&GeminiLiveConfig::default(), &Secret::new("k")).is_ok());
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let bad_model = GeminiLiveConfig {
            model: "a b&c".into(),
            ..Default::default()
        };
        let bad_url = GeminiLiveConfig {
            url: "https://generativelanguage.googleapis.com".into(),
            ..Default::default()
        };
        let results = [
            build_request(&bad_model, &Secret::new("k")),
            build_request(&bad_url, &Secret::new("k")),
            build_request(&Default::default(), &Secret::new("AIza\nx")),
        ];
        assert_config_errors_hiding(results, "AIza");
    }

    #[test]
    fn key_comes_from_config_then_gemini_then_google_env() {
        let cfg = GeminiLiveConfig::default();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = env(&[("GEMINI_API_KEY", "g1"), ("GOOGLE_API_KEY", "g2")]);
        assert_eq!(api_key(&cfg, both).unwrap().expose(), "g1");
        let google = env(&[("GEMINI_API_KEY", " "), ("GOOGLE_API_KEY", "g2")]);
        assert_eq!(api_key(&cfg, google).unwrap().expose(), "g2");
        assert!(matches!(
            api_key(&cfg, env(&[])),
            Err(AgentError::Config(_))
        ));
        let configured = GeminiLiveConfig {
            api_key: Secret::new("c"),
            ..Default::default()
        };
        assert_eq!(api_key(&configured, env(&[])).unwrap().expose(), "c");
    }

    #[test]
    fn a_text_greeting_is_asked_for_as_a_first_turn() {
        let persona = AgentPersona {
            greeting: "Olá, aqui é a clínica.".into(),
            ..AgentPersona::default()
        };
        let Some(ClientMessage::Content {
            turns,
            turn_complete,
        }) = greeting_message(&persona)
        else {
            panic!("no greeting turn");
        };
        assert!(turn_complete);
        assert_eq!(turns.len(), 1);
        assert!(
            turns[0].1.contains("\"Olá, aqui é a clínica.\""),
            "{}",
            turns[0].1
        );
        assert_eq!(greeting_message(&AgentPersona::default()), None);
    }

    #[test]
    fn history_skips_empty_lines_and_asks_for_an_answer_only_after_the_caller() {
        assert_eq!(history_message(&[]), None);
        assert_eq!(history_message(&[(Role::Caller, "  ".into())]), None);
        let h = history_message(&[
            (Role::Caller, "Oi".into()),
            (Role::Agent, String::new()),
            (Role::Agent, "Olá".into()),
        ]);
        assert_eq!(
            h,
            Some(ClientMessage::Content {
                turns: vec![(Role::Caller, "Oi".into()), (Role::Agent, "Olá".into())],
                turn_complete: false
            })
        );
        let waiting = history_message(&[(Role::Agent, "Olá".into()), (Role::Caller, "Oi".into())]);
        assert!(matches!(
            waiting,
            Some(ClientMessage::Content {
                turn_complete: true,
                ..
            })
        ));
    }
}
