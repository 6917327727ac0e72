//! Opening a provider's WebSocket, the same for every realtime client: the URL and key
//! header checks, a socket tuned for live audio, one time budget for the whole set-up,
//! and failed upgrades turned into errors that never carry a secret.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::agent::AgentError;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs `set_up` (upgrade and handshake) within `budget_ms`, else `Timeout`.
pub async fn within<T>(
    budget_ms: u64,
    set_up: impl Future<Output = Result<T, AgentError>>,
) -> Result<T, AgentError> {
    tokio::time::timeout(Duration::from_millis(budget_ms), set_up)
        .await
        .map_err(|_| AgentError::Timeout)?
}

/// The socket `request` upgrades to.
pub async fn upgrade(request: http::Request<()>) -> Result<Ws, AgentError> {
    // No Nagle: a 20 ms audio frame must leave now, not wait for the last one's ACK.
    // A small read buffer: tungstenite zero-fills all of it on every read.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(upgrade_error)?;
    Ok(ws)
}

/// A `wss://` or `ws://` URL, else a `Config` error.
pub fn require_ws_url(url: &str) -> Result<(), AgentError> {
    if url.starts_with("wss://") || url.starts_with("ws://") {
        return Ok(());
    }
    Err(AgentError::Config(format!(
        "url must start with wss:// or ws://, got {url:?}"
    )))
}

/// A header value carrying a key, marked sensitive so it is never printed.
pub fn secret_header(value: &str) -> Result<HeaderValue, AgentError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        AgentError::Config("API key contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Refused upgrades report only the HTTP status: bodies (and URLs) can carry secrets.
fn upgrade_error(e: WsError) -> AgentError {
    match e {
        WsError::Http(response) => AgentError::Refused(format!("HTTP {}", response.status())),
        WsError::Url(UrlError::UnableToConnect(_)) => {
            AgentError::Refused("cannot connect to the endpoint".into())
        }
        WsError::Url(e) => AgentError::Config(format!("invalid url: {e}")),
        other => AgentError::Refused(format!("cannot connect: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_errors_keep_secrets_out() {
        let response = http::Response::builder()
            .status(401)
            .body(Some(b"bad key sk-secret".to_vec()))
            .unwrap();
        let err = upgrade_error(WsError::Http(Box::new(response)));
        assert!(matches!(&err, AgentError::Refused(m) if m == "HTTP 401 Unauthorized"));
        let url = "wss://x/c?token=secret".to_string();
        let err = upgrade_error(WsError::Url(UrlError::UnableToConnect(url)));
        assert!(matches!(&err, AgentError::Refused(m) if !m.contains("secret")));
        let err = upgrade_error(WsError::Url(UrlError::NoHostName));
        assert!(matches!(err, AgentError::Config(_)));
        let err = upgrade_error(WsError::ConnectionClosed);
        assert!(matches!(err, AgentError::Refused(_)));
    }

    #[test]
    fn urls_and_key_headers_are_checked() {
        assert!(require_ws_url("wss://api.example.com/x").is_ok());
        assert!(require_ws_url("ws://127.0.0.1:1/x").is_ok());
        assert!(matches!(
            require_ws_url("https://api.example.com"),
            Err(AgentError::Config(_))
        ));
        assert!(secret_header("Bearer sk-x").unwrap().is_sensitive());
        let err = secret_header("sk\nsecret").unwrap_err();
        assert!(matches!(&err, AgentError::Config(m) if !m.contains("secret")));
    }

    #[tokio::test]
    async fn set_up_past_its_budget_is_a_timeout() {
        let slow = within(1, std::future::pending::<Result<(), AgentError>>());
        assert!(matches!(slow.await, Err(AgentError::Timeout)));
        assert!(matches!(within(1000, async { Ok(7) }).await, Ok(7)));
    }
}
