//! Pre-recorded transcription (providers.md §4.2): one WAV in a `POST /v1/listen` with
//! `utterances=true`, the utterances' text joined.

use serde::Deserialize;

use super::config::{DeepgramConfig, KEY_ENV};
use super::connect::{check_word, with_query};
use crate::audio::wav;
use crate::providers::stt::{rest, Transcript};
use crate::providers::ProviderError;

const SERVICE: &str = "Deepgram pre-recorded";

/// The HTTP endpoint matching the live one (`wss://` → `https://`, `ws://` → `http://`).
pub fn http_url(live_url: &str) -> Result<String, ProviderError> {
    if let Some(rest) = live_url.strip_prefix("wss://") {
        return Ok(format!("https://{rest}"));
    }
    if let Some(rest) = live_url.strip_prefix("ws://") {
        return Ok(format!("http://{rest}"));
    }
    rest::require_http_url(live_url)?;
    Ok(live_url.to_string())
}

pub fn request_url(cfg: &DeepgramConfig, language: &str) -> Result<String, ProviderError> {
    check_word("model", &cfg.model)?;
    check_word("language", language)?;
    let params = [
        ("model", cfg.model.clone()),
        ("language", language.to_string()),
        ("utterances", "true".into()),
        ("smart_format", cfg.smart_format.to_string()),
        ("punctuate", "true".into()),
    ];
    Ok(with_query(&http_url(&cfg.url)?, &params))
}

pub async fn transcribe(
    http: &reqwest::Client,
    cfg: &DeepgramConfig,
    samples: &[i16],
    sample_rate: u32,
    language: &str,
) -> Result<Transcript, ProviderError> {
    let key = rest::api_key(&cfg.api_key, KEY_ENV, "providers.deepgram.api_key")?;
    let url = request_url(cfg, language)?;
    let auth = rest::auth_header(&format!("Token {}", key.expose()))?;
    let body = wav::encode(sample_rate, 1, samples);
    rest::within(cfg.request_timeout_ms, async {
        let response = http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "audio/wav")
            .body(body)
            .send()
            .await
            .map_err(|e| rest::transport_error(SERVICE, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(rest::status_error(SERVICE, status));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| rest::transport_error(SERVICE, e))?;
        parse_response(&bytes)
    })
    .await
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    metadata: Option<Metadata>,
    results: Results,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    duration: Option<f64>,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    channels: Vec<Channel>,
    #[serde(default)]
    utterances: Option<Vec<Utterance>>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
}

#[derive(Deserialize)]
struct Utterance {
    #[serde(default)]
    transcript: String,
}

/// The utterances joined by spaces; without utterances, the first channel's best text.
pub fn parse_response(body: &[u8]) -> Result<Transcript, ProviderError> {
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Protocol(format!("{SERVICE} answer unreadable: {e}")))?;
    let text = match response.results.utterances {
        Some(utterances) if !utterances.is_empty() => {
            let parts: Vec<&str> = utterances
                .iter()
                .map(|u| u.transcript.trim())
                .filter(|t| !t.is_empty())
                .collect();
            parts.join(" ")
        }
        _ => response
            .results
            .channels
            .first()
            .and_then(|c| c.alternatives.first())
            .map(|a| a.transcript.trim().to_string())
            .unwrap_or_default(),
    };
    Ok(Transcript {
        text,
        language: None,
        duration_s: response.metadata.and_then(|m| m.duration),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            http_url("wss://api.deepgram.com/v1/listen").unwrap(),
            "https://api.deepgram.com/v1/listen"
        );
        assert_eq!(
            http_url("ws://127.0.0.1:9/v1/listen").unwrap(),
            "http://127.0.0.1:9/v1/listen"
        );
        assert!(http_url("ftp://x").is_err());
        let url = request_url(&DeepgramConfig::default(), "pt-BR").unwrap();
        assert_eq!(
            url,
            "https://api.deepgram.com/v1/listen?model=nova-3&language=pt-BR&utterances=true\
             &smart_format=true&punctuate=true"
        );
        assert!(request_url(&DeepgramConfig::default(), "pt BR").is_err());
    }

    #[test]
    fn utterances_are_joined_and_channels_are_the_fallback() {
        let body = json!({"metadata": {"duration": 4.5, "request_id": "r"},
            "results": {"channels": [{"alternatives": [{"transcript": "a b c"}]}],
                "utterances": [{"transcript": "Olá, bom dia. ", "start": 0.1},
                    {"transcript": ""}, {"transcript": "Tudo bem?"}]}});
        let t = parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(t.text, "Olá, bom dia. Tudo bem?");
        assert_eq!(t.duration_s, Some(4.5));
        let body =
            json!({"results": {"channels": [{"alternatives": [{"transcript": " só isso "}]}]}});
        let t = parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!((t.text.as_str(), t.duration_s), ("só isso", None));
        let empty = json!({"results": {"channels": []}});
        assert_eq!(
            parse_response(empty.to_string().as_bytes()).unwrap().text,
            ""
        );
        let err = parse_response(b"{\"metadata\":{}}").unwrap_err();
        assert!(matches!(err, ProviderError::Protocol(_)), "{err}");
    }
}
