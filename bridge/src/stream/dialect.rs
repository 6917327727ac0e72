//! Which FreeSWITCH module (and build) is on the other end, read from the WebSocket handshake.
//!
//! mod_audio_fork asks for the `audio.drachtio.org` subprotocol. mod_audio_stream asks for
//! none; its libwsc builds (v1.0.3+) send `Origin:` and a `permessage-deflate` offer with
//! `client_max_window_bits=9`, its ixwebsocket builds (≤ v1.0.2) an `ixwebsocket` user agent
//! and reconnect on their own.

use http::HeaderMap;

pub const AUDIO_FORK_SUBPROTOCOL: &str = "audio.drachtio.org";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    AudioStream(StreamBuild),
    AudioFork,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamBuild {
    Libwsc,
    Ixwebsocket,
    Unknown,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::AudioStream(StreamBuild::Libwsc) => "mod_audio_stream/libwsc",
            Dialect::AudioStream(StreamBuild::Ixwebsocket) => "mod_audio_stream/ixwebsocket",
            Dialect::AudioStream(StreamBuild::Unknown) => "mod_audio_stream",
            Dialect::AudioFork => "mod_audio_fork",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialectError {
    #[error("unsupported WebSocket subprotocol {0:?} (mod_audio_fork uses audio.drachtio.org; mod_audio_stream none)")]
    Subprotocol(String),
    #[error("unknown dialect {0:?} (audio_stream or audio_fork)")]
    Named(String),
}

/// Detects the dialect; `forced` is the `?dialect=` query value, for setups behind proxies.
pub fn detect(headers: &HeaderMap, forced: Option<&str>) -> Result<Dialect, DialectError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let build = if header("user-agent")
        .to_ascii_lowercase()
        .contains("ixwebsocket")
    {
        StreamBuild::Ixwebsocket
    } else if !header("origin").is_empty()
        && header("sec-websocket-extensions").contains("client_max_window_bits=9")
    {
        StreamBuild::Libwsc
    } else {
        StreamBuild::Unknown
    };
    if let Some(name) = forced {
        return match name {
            "audio_stream" | "mod_audio_stream" => Ok(Dialect::AudioStream(build)),
            "audio_fork" | "mod_audio_fork" => Ok(Dialect::AudioFork),
            other => Err(DialectError::Named(other.chars().take(40).collect())),
        };
    }
    let protocols = header("sec-websocket-protocol");
    if protocols
        .split(',')
        .any(|p| p.trim() == AUDIO_FORK_SUBPROTOCOL)
    {
        return Ok(Dialect::AudioFork);
    }
    if !protocols.trim().is_empty() {
        return Err(DialectError::Subprotocol(
            protocols.chars().take(80).collect(),
        ));
    }
    Ok(Dialect::AudioStream(build))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn tells_the_modules_apart() {
        assert_eq!(
            detect(
                &headers(&[("sec-websocket-protocol", "audio.drachtio.org")]),
                None
            ),
            Ok(Dialect::AudioFork)
        );
        let libwsc = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("sec-websocket-extensions", "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=9"),
        ]);
        assert_eq!(
            detect(&libwsc, None),
            Ok(Dialect::AudioStream(StreamBuild::Libwsc))
        );
        let ix = headers(&[("user-agent", "ixwebsocket/11.4.5 linux")]);
        assert_eq!(
            detect(&ix, None),
            Ok(Dialect::AudioStream(StreamBuild::Ixwebsocket))
        );
        assert_eq!(
            detect(&HeaderMap::new(), None),
            Ok(Dialect::AudioStream(StreamBuild::Unknown))
        );
    }

    #[test]
    fn unknown_dialects_are_errors() {
        assert!(matches!(
            detect(&headers(&[("sec-websocket-protocol", "mqtt")]), None),
            Err(DialectError::Subprotocol(_))
        ));
        assert!(matches!(
            detect(&HeaderMap::new(), Some("asterisk")),
            Err(DialectError::Named(_))
        ));
        assert_eq!(
            detect(&HeaderMap::new(), Some("audio_fork")),
            Ok(Dialect::AudioFork)
        );
    }
}
