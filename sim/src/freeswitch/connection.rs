//! Opening the module's WebSocket the way each build does it (§2.1, §7): libwsc's Origin and
//! deflate offer, ixwebsocket's User-Agent, mod_audio_fork's subprotocol, and each build's
//! connect timeout.

use std::time::Duration;

use http::HeaderValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::call_report::ErrorKind;
use super::profile::ModuleProfile;

/// The module's socket.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// mod_audio_fork's default subprotocol (`MOD_AUDIO_FORK_SUBPROTOCOL_NAME`).
pub const FORK_SUBPROTOCOL: &str = "audio.drachtio.org";
/// What libwsc offers unless `STREAM_MESSAGE_DEFLATE` disables it.
pub const LIBWSC_DEFLATE_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=9";
/// ixwebsocket's default per-message-deflate offer.
pub const IXWS_DEFLATE_OFFER: &str =
    "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15";
/// ixwebsocket's User-Agent (version as shipped with mod_audio_stream v1.0.2).
pub const IXWS_USER_AGENT: &str = "ixwebsocket/11.4.5 linux ssl/OpenSSL 3.0.11 zlib 1.2.13";

/// Connects to `url` as `profile` would, with `extra_headers` (`STREAM_EXTRA_HEADERS`).
pub async fn open(
    url: &str,
    profile: &ModuleProfile,
    extra_headers: &[(String, String)],
) -> Result<WsStream, (ErrorKind, String)> {
    let mut request = url
        .into_client_request()
        .map_err(|e| (ErrorKind::InvalidUrl, format!("{url}: {e}")))?;
    let headers = request.headers_mut();
    let mut set = |name: &'static str, value: String| -> Result<(), (ErrorKind, String)> {
        let value = HeaderValue::from_str(&value)
            .map_err(|e| (ErrorKind::InvalidUrl, format!("header {name}: {e}")))?;
        headers.insert(name, value);
        Ok(())
    };
    match profile {
        ModuleProfile::AudioStreamLibwsc { offer_deflate, .. } => {
            if *offer_deflate {
                set("Sec-WebSocket-Extensions", LIBWSC_DEFLATE_OFFER.to_string())?;
            }
            set("Origin", format!("http://{}", host_port(url)))?;
        }
        ModuleProfile::AudioStreamIxws { .. } => {
            set("User-Agent", IXWS_USER_AGENT.to_string())?;
            set("Sec-WebSocket-Extensions", IXWS_DEFLATE_OFFER.to_string())?;
        }
        ModuleProfile::AudioFork => set("Sec-WebSocket-Protocol", FORK_SUBPROTOCOL.to_string())?,
    }
    for (name, value) in extra_headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| (ErrorKind::InvalidUrl, format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| (ErrorKind::InvalidUrl, format!("header {name}: {e}")))?;
        request.headers_mut().insert(name, value);
    }
    let timeout = profile.connect_timeout();
    match tokio::time::timeout(
        timeout,
        tokio_tungstenite::connect_async_with_config(request, Some(small_read_buffer()), true),
    )
    .await
    {
        Err(_) => Err((
            ErrorKind::ConnectTimeout,
            format!("no upgrade within {}", fmt_duration(timeout)),
        )),
        Ok(Err(e)) => Err((ErrorKind::ConnectFailed, describe(&e))),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// `host:port` as libwsc writes it in `Origin:http://<host>:<port>` (port defaults to 80/443).
pub fn host_port(url: &str) -> String {
    let (rest, default_port) = match url.split_once("://") {
        Some(("wss", rest)) => (rest, 443),
        Some((_, rest)) => (rest, 80),
        None => (url, 80),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    }
}

fn describe(e: &WsError) -> String {
    match e {
        WsError::Http(response) => format!("upgrade refused: HTTP {}", response.status()),
        other => other.to_string(),
    }
}

fn fmt_duration(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// tungstenite zero-fills its whole read buffer on every read (128 KiB by default): keep
/// it small so hundreds of simulated calls cost little.
pub(crate) fn small_read_buffer() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_uses_the_default_port() {
        assert_eq!(
            host_port("ws://127.0.0.1:8085/stream/a/b?x=1"),
            "127.0.0.1:8085"
        );
        assert_eq!(host_port("ws://bridge/stream"), "bridge:80");
        assert_eq!(host_port("wss://bridge?x"), "bridge:443");
    }

    #[tokio::test]
    async fn sends_each_builds_handshake_headers() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut requests = Vec::new();
            for _ in 0..2 {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap();
                requests.push(String::from_utf8_lossy(&buf[..n]).to_string());
                sock.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .unwrap();
            }
            requests
        });
        let url = format!("ws://{addr}/stream/d/u");
        let err = open(
            &url,
            &ModuleProfile::libwsc(),
            &[("X-Tenant".into(), "t1".into())],
        )
        .await
        .unwrap_err();
        assert_eq!(err.0, ErrorKind::ConnectFailed);
        assert!(err.1.contains("403"), "{}", err.1);
        open(&url, &ModuleProfile::AudioFork, &[])
            .await
            .unwrap_err();
        let requests = server.await.unwrap();
        let libwsc = requests[0].to_ascii_lowercase();
        assert!(libwsc.contains(&format!("origin: http://{addr}")));
        assert!(libwsc.contains("client_max_window_bits=9"));
        assert!(libwsc.contains("x-tenant: t1"));
        assert!(!libwsc.contains("sec-websocket-protocol"));
        assert!(requests[1]
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol: audio.drachtio.org"));
    }
}
