//! Opening a live stream: the listen URL with its query, `Authorization: Token`, and the
//! upgrade within the connect budget. Failed upgrades say only the HTTP status.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::config::{DeepgramConfig, KEY_ENV};
use crate::config::Secret;
use crate::providers::stt::{rest, SttOptions};
use crate::providers::ws_connect::Ws;
use crate::providers::ProviderError;

/// A socket Deepgram accepted, ready for audio.
pub async fn open(cfg: &DeepgramConfig, options: &SttOptions) -> Result<Ws, ProviderError> {
    let key = rest::api_key(&cfg.api_key, KEY_ENV, "providers.deepgram.api_key")?;
    let request = build_request(cfg, options, &key)?;
    let budget = std::time::Duration::from_millis(cfg.connect_timeout_ms);
    // No Nagle (a 20 ms frame leaves now); a small read buffer (results are small).
    let ws_config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
    match tokio::time::timeout(budget, connect).await {
        Err(_) => Err(ProviderError::Timeout),
        Ok(Err(e)) => Err(upgrade_error(e)),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// `{url}?model=…&language=…&encoding=linear16&sample_rate=…&channels=1&…`.
pub fn listen_url(cfg: &DeepgramConfig, options: &SttOptions) -> Result<String, ProviderError> {
    if !(cfg.url.starts_with("wss://") || cfg.url.starts_with("ws://")) {
        return Err(ProviderError::Config(format!(
            "url must start with wss:// or ws://, got {:?}",
            cfg.url
        )));
    }
    check_word("model", &cfg.model)?;
    check_word("language", &options.language)?;
    if !(8_000..=48_000).contains(&options.sample_rate) {
        return Err(ProviderError::Config(format!(
            "unsupported sample rate {}",
            options.sample_rate
        )));
    }
    if cfg.utterance_end_ms > 0 && !cfg.interim_results {
        return Err(ProviderError::Config(
            "utterance_end_ms needs interim_results = true".into(),
        ));
    }
    if cfg.keepalive_ms == 0 {
        return Err(ProviderError::Config(
            "keepalive_ms must be positive".into(),
        ));
    }
    let endpointing = match cfg.endpointing_ms {
        0 => "false".to_string(),
        ms => ms.to_string(),
    };
    let mut params = vec![
        ("model", cfg.model.clone()),
        ("language", options.language.clone()),
        ("encoding", "linear16".into()),
        ("sample_rate", options.sample_rate.to_string()),
        ("channels", "1".into()),
        ("interim_results", cfg.interim_results.to_string()),
        ("endpointing", endpointing),
        ("vad_events", cfg.vad_events.to_string()),
        ("smart_format", cfg.smart_format.to_string()),
    ];
    if cfg.utterance_end_ms > 0 {
        params.push(("utterance_end_ms", cfg.utterance_end_ms.to_string()));
    }
    Ok(with_query(&cfg.url, &params))
}

/// `url` with `params` appended (values already checked to need no escaping).
pub fn with_query(url: &str, params: &[(&str, String)]) -> String {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.join("&"))
}

/// Model and language names go into the query unescaped: letters, digits, `-_.` only.
pub fn check_word(what: &str, value: &str) -> Result<(), ProviderError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        return Ok(());
    }
    Err(ProviderError::Config(format!("invalid {what} {value:?}")))
}

fn build_request(
    cfg: &DeepgramConfig,
    options: &SttOptions,
    key: &Secret,
) -> Result<http::Request<()>, ProviderError> {
    let url = listen_url(cfg, options)?;
    let mut request = url
        .into_client_request()
        .map_err(|e| ProviderError::Config(format!("invalid url {:?}: {e}", cfg.url)))?;
    let auth = rest::auth_header(&format!("Token {}", key.expose()))?;
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, auth);
    Ok(request)
}

fn upgrade_error(e: WsError) -> ProviderError {
    match e {
        WsError::Http(response) => rest::status_error("Deepgram", response.status()),
        WsError::Url(UrlError::UnableToConnect(_)) | WsError::Io(_) => {
            ProviderError::Unavailable("cannot connect to Deepgram".into())
        }
        WsError::Url(e) => ProviderError::Config(format!("invalid url: {e}")),
        other => ProviderError::Unavailable(format!("Deepgram upgrade failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SttOptions {
        SttOptions {
            sample_rate: 16_000,
            language: "pt-BR".into(),
        }
    }

    #[test]
    fn the_query_says_how_to_listen() {
        let url = listen_url(&DeepgramConfig::default(), &options()).unwrap();
        assert_eq!(
            url,
            "wss://api.deepgram.com/v1/listen?model=nova-3&language=pt-BR&encoding=linear16\
             &sample_rate=16000&channels=1&interim_results=true&endpointing=300\
             &vad_events=true&smart_format=true&utterance_end_ms=1000"
        );
        let cfg = DeepgramConfig {
            endpointing_ms: 0,
            utterance_end_ms: 0,
            ..Default::default()
        };
        let url = listen_url(&cfg, &options()).unwrap();
        assert!(url.contains("endpointing=false"), "{url}");
        assert!(!url.contains("utterance_end_ms"), "{url}");
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let bad = [
            DeepgramConfig {
                url: "https://api.deepgram.com/v1/listen".into(),
                ..Default::default()
            },
            DeepgramConfig {
                model: "nova 3&x".into(),
                ..Default::default()
            },
            DeepgramConfig {
                interim_results: false,
                ..Default::default()
            },
            DeepgramConfig {
                keepalive_ms: 0,
                ..Default::default()
            },
        ];
        for cfg in bad {
            let err = listen_url(&cfg, &options()).unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{err}");
        }
        let odd = SttOptions {
            sample_rate: 1,
            language: "pt-BR".into(),
        };
        assert!(listen_url(&DeepgramConfig::default(), &odd).is_err());
        let no_language = SttOptions {
            language: String::new(),
            ..options()
        };
        assert!(listen_url(&DeepgramConfig::default(), &no_language).is_err());
    }

    #[test]
    fn the_key_goes_in_a_sensitive_token_header() {
        let cfg = DeepgramConfig::default();
        let req = build_request(&cfg, &options(), &Secret::new("dg-key")).unwrap();
        assert_eq!(req.headers()["authorization"], "Token dg-key");
        assert!(req.headers()["authorization"].is_sensitive());
        let err = build_request(&cfg, &options(), &Secret::new("dg\nsecret")).unwrap_err();
        assert!(matches!(&err, ProviderError::Config(m) if !m.contains("secret")));
    }

    #[test]
    fn upgrade_failures_say_only_the_status() {
        let response = http::Response::builder()
            .status(401)
            .body(Some(b"bad key dg-secret".to_vec()))
            .unwrap();
        let err = upgrade_error(WsError::Http(Box::new(response)));
        assert!(
            matches!(&err, ProviderError::Refused(m) if !m.contains("secret")),
            "{err}"
        );
        let response = http::Response::builder().status(503).body(None).unwrap();
        let err = upgrade_error(WsError::Http(Box::new(response)));
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
        let err = upgrade_error(WsError::Url(UrlError::UnableToConnect("x".into())));
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err}");
        let err = upgrade_error(WsError::Url(UrlError::NoHostName));
        assert!(matches!(err, ProviderError::Config(_)), "{err}");
    }
}
