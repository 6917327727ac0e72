//! Opening a conversation: (signed URL,) upgrade, `conversation_initiation_client_data`,
//! `conversation_initiation_metadata` with the audio formats, all within the connect budget.

use std::sync::OnceLock;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

use super::client_messages::{self, ClientMessage};
use super::config::ElevenLabsAgentConfig;
use super::server_messages::{describe_error, Metadata, ServerMessage};
use super::signed_url;
use super::wire_audio::WireFormat;
use crate::agent::{AgentError, AgentPersona, CallInfo, Role};
use crate::config::Secret;
use crate::providers::ws_connect::{self, require_ws_url, Ws};
use crate::providers::ws_session::close_reason;

/// Messages kept when they arrive before the metadata (they are replayed afterwards).
const MAX_EARLY: usize = 64;

/// A conversation ready for audio.
pub struct Opened {
    pub ws: Ws,
    pub input: WireFormat,
    pub output: WireFormat,
    /// Server text frames that came before the metadata, in order.
    pub early: Vec<String>,
}

/// Settings that can be wrong before any network traffic.
pub fn check(cfg: &ElevenLabsAgentConfig, persona: &AgentPersona) -> Result<(), AgentError> {
    if persona.local_turns {
        return Err(AgentError::Config(
            "ElevenLabs agents detect turns themselves and have no manual commit: \
             local_turns is not supported by the elevenlabs_agent provider"
                .into(),
        ));
    }
    if cfg.agent_id.is_empty() {
        return Err(AgentError::Config(
            "providers.elevenlabs_agent.agent_id is required".into(),
        ));
    }
    if !cfg
        .agent_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(AgentError::Config(format!(
            "invalid agent_id {:?}",
            cfg.agent_id
        )));
    }
    require_ws_url(&cfg.url)?;
    if !(cfg.api_base.starts_with("https://") || cfg.api_base.starts_with("http://")) {
        return Err(AgentError::Config(format!(
            "api_base must start with https:// or http://, got {:?}",
            cfg.api_base
        )));
    }
    Ok(())
}

/// The configured key, else `ELEVENLABS_API_KEY`; `None`: a public agent.
pub fn api_key(cfg: &ElevenLabsAgentConfig) -> Option<Secret> {
    if !cfg.api_key.is_empty() {
        return Some(cfg.api_key.clone());
    }
    match std::env::var("ELEVENLABS_API_KEY") {
        Ok(k) if !k.trim().is_empty() => Some(Secret::new(k.trim())),
        _ => None,
    }
}

/// The conversation URL of a public agent.
pub fn public_url(cfg: &ElevenLabsAgentConfig) -> String {
    let sep = if cfg.url.contains('?') { '&' } else { '?' };
    format!("{}{sep}agent_id={}", cfg.url, cfg.agent_id)
}

pub async fn open(
    cfg: &ElevenLabsAgentConfig,
    persona: &AgentPersona,
    call: &CallInfo,
    http: &OnceLock<reqwest::Client>,
) -> Result<Opened, AgentError> {
    check(cfg, persona)?;
    let key = api_key(cfg);
    let http = match key {
        Some(_) => Some(http_client(http)?),
        None => None,
    };
    let init = ClientMessage::Init(client_messages::initiation(cfg, persona, call));
    ws_connect::within(cfg.connect_timeout_ms, async {
        let url = match (&key, http) {
            (Some(key), Some(http)) => {
                signed_url::fetch(http, &cfg.api_base, &cfg.agent_id, key).await?
            }
            _ => public_url(cfg),
        };
        // Never in an error: a signed URL carries a token.
        let request = url
            .into_client_request()
            .map_err(|_| AgentError::Config("invalid conversation URL".into()))?;
        let mut ws = ws_connect::upgrade(request).await?;
        send(&mut ws, &init).await?;
        let (input, output, early) = wait_for_metadata(&mut ws).await?;
        if !cfg.override_prompt && !call.history.is_empty() {
            send(&mut ws, &client_messages::history_update(&call.history)).await?;
        }
        // The caller spoke last and the old session died before answering: ask again.
        if let Some((Role::Caller, text)) = call.history.last() {
            send(&mut ws, &ClientMessage::UserMessage(text.clone())).await?;
        }
        Ok(Opened {
            ws,
            input,
            output,
            early,
        })
    })
    .await
}

fn http_client(cell: &OnceLock<reqwest::Client>) -> Result<&reqwest::Client, AgentError> {
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| AgentError::Config(format!("cannot build the HTTP client: {e}")))?;
    let _ = cell.set(client);
    cell.get()
        .ok_or_else(|| AgentError::Config("HTTP client unavailable".into()))
}

async fn send(ws: &mut Ws, msg: &ClientMessage) -> Result<(), AgentError> {
    ws.send(Message::text(msg.to_json()))
        .await
        .map_err(|e| AgentError::Protocol(format!("sending during set-up: {e}")))
}

/// Reads until `conversation_initiation_metadata`, answering pings and keeping anything
/// else for later. A close or an `error` fails the set-up.
async fn wait_for_metadata(
    ws: &mut Ws,
) -> Result<(WireFormat, WireFormat, Vec<String>), AgentError> {
    let mut early = Vec::new();
    while let Some(msg) = ws.next().await {
        let msg = msg.map_err(|e| AgentError::Protocol(format!("waiting for metadata: {e}")))?;
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => {
                let why = close_reason(frame.as_ref());
                // How the service rejects a conversation it will not hold (e.g. overrides
                // the agent forbids).
                return Err(AgentError::Refused(format!(
                    "closed before the conversation started: {why}"
                )));
            }
            Message::Ping(_) => {
                let _ = ws.flush().await;
                continue;
            }
            _ => continue,
        };
        match ServerMessage::parse(&text) {
            Ok(ServerMessage::ConversationInitiationMetadata {
                conversation_initiation_metadata_event: meta,
            }) => {
                let (input, output) = formats(&meta)?;
                debug!(conversation_id = %meta.conversation_id, ?input, ?output, "conversation started");
                return Ok((input, output, early));
            }
            Ok(ServerMessage::Ping { ping_event }) if !ping_event.event_id.is_null() => {
                let pong = ClientMessage::Pong {
                    event_id: ping_event.event_id,
                };
                send(ws, &pong).await?;
            }
            Ok(ServerMessage::Error(body)) => {
                return Err(AgentError::Protocol(format!(
                    "set-up rejected: {}",
                    describe_error(&body)
                )))
            }
            Ok(_) if early.len() < MAX_EARLY => early.push(text.to_string()),
            Ok(other) => debug!(?other, "message before metadata dropped"),
            Err(e) => debug!(error = %e, "unparseable message before metadata"),
        }
    }
    Err(AgentError::Protocol(
        "connection ended before conversation_initiation_metadata".into(),
    ))
}

/// (input, output) formats; a missing one is the documented default `pcm_16000`.
fn formats(meta: &Metadata) -> Result<(WireFormat, WireFormat), AgentError> {
    let pick = |name: &Option<String>, which: &str| match name.as_deref() {
        None => {
            warn!(
                which,
                "metadata without an audio format; assuming pcm_16000"
            );
            Ok(WireFormat::Pcm(16_000))
        }
        Some(n) => WireFormat::parse(n)
            .ok_or_else(|| AgentError::Protocol(format!("unsupported {which} audio format {n:?}"))),
    };
    Ok((
        pick(&meta.user_input_audio_format, "user_input")?,
        pick(&meta.agent_output_audio_format, "agent_output")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ElevenLabsAgentConfig {
        ElevenLabsAgentConfig {
            agent_id: "agent_1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bad_settings_are_config_errors() {
        assert!(check(&cfg(), &AgentPersona::default()).is_ok());
        let local = AgentPersona {
            local_turns: true,
            ..Default::default()
        };
        let err = check(&cfg(), &local).unwrap_err();
        assert!(matches!(&err, AgentError::Config(m) if m.contains("local_turns")));
        for bad in [
            ElevenLabsAgentConfig::default(),
            ElevenLabsAgentConfig {
                agent_id: "a&b=c".into(),
                ..Default::default()
            },
            ElevenLabsAgentConfig {
                url: "https://api.elevenlabs.io".into(),
                ..cfg()
            },
            ElevenLabsAgentConfig {
                api_base: "ftp://x".into(),
                ..cfg()
            },
        ] {
            assert!(matches!(
                check(&bad, &AgentPersona::default()),
                Err(AgentError::Config(_))
            ));
        }
    }

    #[test]
    fn public_url_carries_the_agent() {
        assert_eq!(
            public_url(&cfg()),
            "wss://api.elevenlabs.io/v1/convai/conversation?agent_id=agent_1"
        );
        let with_query = ElevenLabsAgentConfig {
            url: "ws://127.0.0.1:9/c?x=1".into(),
            ..cfg()
        };
        assert_eq!(
            public_url(&with_query),
            "ws://127.0.0.1:9/c?x=1&agent_id=agent_1"
        );
    }

    #[test]
    fn formats_are_read_and_unknown_ones_refused() {
        let meta = |i: Option<&str>, o: Option<&str>| Metadata {
            conversation_id: "c".into(),
            user_input_audio_format: i.map(Into::into),
            agent_output_audio_format: o.map(Into::into),
        };
        assert_eq!(
            formats(&meta(Some("ulaw_8000"), Some("pcm_24000"))).unwrap(),
            (WireFormat::Ulaw8k, WireFormat::Pcm(24_000))
        );
        assert_eq!(
            formats(&meta(None, None)).unwrap(),
            (WireFormat::Pcm(16_000), WireFormat::Pcm(16_000))
        );
        assert!(matches!(
            formats(&meta(Some("pcm_16000"), Some("mp3_44100_128"))),
            Err(AgentError::Protocol(_))
        ));
    }
}
