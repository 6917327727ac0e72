//! Opening one answer's socket: the URL with its query, the `xi-api-key` header, the
//! upgrade within the connect budget, and failed upgrades as errors a fallback chain
//! understands (never carrying the key).

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::config::ElevenLabsTtsConfig;
use crate::config::Secret;
use crate::providers::ProviderError;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// `{url}/{voice_id}/stream-input?model_id=…&output_format=…&inactivity_timeout=…`
/// (+ `language_code`). The settings were checked to need no escaping.
pub fn url(cfg: &ElevenLabsTtsConfig) -> String {
    let mut url = format!(
        "{}/{}/stream-input?model_id={}&output_format={}&inactivity_timeout={}",
        cfg.url.trim_end_matches('/'),
        cfg.voice_id,
        cfg.model_id,
        cfg.output_format,
        cfg.inactivity_timeout_s,
    );
    if !cfg.language_code.is_empty() {
        url.push_str("&language_code=");
        url.push_str(&cfg.language_code);
    }
    url
}

/// The upgraded socket, within `connect_timeout_ms`.
pub async fn open(cfg: &ElevenLabsTtsConfig, key: &Secret) -> Result<Ws, ProviderError> {
    let mut request = url(cfg)
        .into_client_request()
        .map_err(|e| ProviderError::Config(format!("elevenlabs_tts: invalid url: {e}")))?;
    let mut header = HeaderValue::from_str(key.expose()).map_err(|_| {
        ProviderError::Config("the ElevenLabs key has characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    request.headers_mut().insert("xi-api-key", header);
    // No Nagle: small text frames must leave now. A small read buffer: tungstenite
    // zero-fills all of it on every read.
    let ws_config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let upgrade = tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
    match tokio::time::timeout(Duration::from_millis(cfg.connect_timeout_ms), upgrade).await {
        Err(_) => Err(ProviderError::Timeout),
        Ok(Err(e)) => Err(upgrade_error(e)),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// Refused upgrades report only the HTTP status: bodies can echo what we sent.
fn upgrade_error(e: WsError) -> ProviderError {
    match e {
        WsError::Http(response) => {
            let status = response.status();
            let what = format!("ElevenLabs refused the stream: HTTP {status}");
            if status.as_u16() == 429 || status.is_server_error() {
                ProviderError::Unavailable(what)
            } else if status.is_client_error() {
                ProviderError::Refused(what)
            } else {
                ProviderError::Protocol(what)
            }
        }
        WsError::Url(UrlError::UnableToConnect(_)) | WsError::Io(_) => {
            ProviderError::Unavailable("cannot connect to ElevenLabs".into())
        }
        WsError::Url(e) => ProviderError::Config(format!("elevenlabs_tts: invalid url: {e}")),
        WsError::Tls(e) => ProviderError::Unavailable(format!("TLS with ElevenLabs failed: {e}")),
        other => ProviderError::Unavailable(format!("cannot open the ElevenLabs stream: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_voice_model_format_and_language() {
        let cfg = ElevenLabsTtsConfig {
            voice_id: "voice_1".into(),
            ..Default::default()
        };
        assert_eq!(
            url(&cfg),
            "wss://api.elevenlabs.io/v1/text-to-speech/voice_1/stream-input?\
             model_id=eleven_flash_v2_5&output_format=pcm_16000&inactivity_timeout=20\
             &language_code=pt"
        );
        let cfg = ElevenLabsTtsConfig {
            url: "ws://127.0.0.1:9/v1/text-to-speech/".into(),
            language_code: String::new(),
            output_format: "ulaw_8000".into(),
            ..cfg
        };
        assert_eq!(
            url(&cfg),
            "ws://127.0.0.1:9/v1/text-to-speech/voice_1/stream-input?\
             model_id=eleven_flash_v2_5&output_format=ulaw_8000&inactivity_timeout=20"
        );
    }

    #[test]
    fn upgrade_errors_are_classified_without_bodies() {
        let refused = |status: u16| {
            let response = http::Response::builder()
                .status(status)
                .body(Some(b"bad key xi-secret".to_vec()))
                .unwrap();
            upgrade_error(WsError::Http(Box::new(response)))
        };
        let e = refused(401);
        assert!(
            matches!(&e, ProviderError::Refused(m) if m.contains("401") && !m.contains("xi-secret"))
        );
        assert!(matches!(refused(429), ProviderError::Unavailable(_)));
        assert!(matches!(refused(503), ProviderError::Unavailable(_)));
        assert!(matches!(refused(302), ProviderError::Protocol(_)));
        let e = upgrade_error(WsError::Url(UrlError::UnableToConnect(
            "ws://x?k=secret".into(),
        )));
        assert!(matches!(&e, ProviderError::Unavailable(m) if !m.contains("secret")));
        assert!(matches!(
            upgrade_error(WsError::Url(UrlError::NoHostName)),
            ProviderError::Config(_)
        ));
    }
}
